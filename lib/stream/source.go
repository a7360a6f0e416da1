package stream

import (
	"bufio"
	"io"
	"os"
)

// Source is a buffered reader that counts the octets consumed. Readers of
// stacked layers (xl header, libxl records, the libxc stream inside) share
// one Source, so each consumes exactly its own octets and every reported
// offset is absolute.
type Source struct {
	br  *bufio.Reader
	off int64
	raw io.Reader // beneath br, when the Source made br itself
}

// NewSource returns a Source reading from r whose first octet is at
// offset base. If r is already a *Source it is returned as it is.
func NewSource(r io.Reader, base int64) *Source {
	if s, ok := r.(*Source); ok {
		return s
	}
	br, ok := r.(*bufio.Reader)
	if ok && br.Size() >= 64<<10 {
		return &Source{br: br, off: base}
	}
	return &Source{br: bufio.NewReaderSize(r, 256<<10), off: base, raw: r}
}

// Offset returns the offset of the next octet to be read.
func (s *Source) Offset() int64 { return s.off }

// Read reads like io.Reader.
func (s *Source) Read(p []byte) (int, error) {
	n, err := s.br.Read(p)
	s.off += int64(n)
	return n, err
}

// ReadFull reads exactly len(b) octets; a short read is
// io.ErrUnexpectedEOF, and io.EOF only when nothing at all was read.
func (s *Source) ReadFull(b []byte) error {
	n, err := io.ReadFull(s.br, b)
	s.off += int64(n)
	return err
}

// Peek returns the next n octets without consuming them.
func (s *Source) Peek(n int) ([]byte, error) { return s.br.Peek(n) }

// Discard skips n octets.
func (s *Source) Discard(n int) (int, error) {
	d, err := s.br.Discard(n)
	s.off += int64(d)
	return d, err
}

// Buffered returns the number of octets read ahead and held in memory.
func (s *Source) Buffered() int { return s.br.Buffered() }

// CopyN copies n octets to w: those already buffered from memory, the
// rest, where both ends allow it, without passing through user memory
// (splice(2), when w is an *Output over an *os.File, the Source reads an
// *os.File, and one of them is a pipe). Fewer than n octets in the input
// is io.ErrUnexpectedEOF. n < 0 copies to the end of the input.
func (s *Source) CopyN(w io.Writer, n int64) (int64, error) {
	done := int64(0)
	for done < n || n < 0 {
		b := s.br.Buffered()
		if b == 0 {
			break
		}
		if n >= 0 {
			b = int(min(int64(b), n-done))
		}
		p, _ := s.br.Peek(b)
		k, err := w.Write(p)
		s.br.Discard(k)
		s.off += int64(k)
		done += int64(k)
		if err != nil {
			return done, err
		}
	}
	if done == n {
		return done, nil
	}
	if o, ok := w.(*Output); ok {
		if in, ok := s.raw.(*os.File); ok {
			if out, ok := o.raw.(*os.File); ok && (isPipe(in) || isPipe(out)) {
				if err := o.Flush(); err != nil {
					return done, err
				}
				left := n - done
				if n < 0 {
					left = -1
				}
				k, handled, err := splice(out, in, left)
				s.off += k
				done += k
				if handled {
					if err == nil && n >= 0 && done < n {
						err = io.ErrUnexpectedEOF
					}
					return done, err
				}
			}
		}
	}
	var r io.Reader = s
	if n >= 0 {
		r = io.LimitReader(s, n-done)
	}
	k, err := io.Copy(w, r) // an Output reads into its own buffer
	done += k
	if err == nil && n >= 0 && done < n {
		err = io.ErrUnexpectedEOF
	}
	return done, err
}

func isPipe(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeNamedPipe != 0
}

// Output is a buffered writer that lets Source.CopyN hand long runs of
// octets straight to the file beneath it.
type Output struct {
	*bufio.Writer
	raw io.Writer
}

// NewOutput returns an Output writing to w with a buffer of size octets.
func NewOutput(w io.Writer, size int) *Output {
	return &Output{Writer: bufio.NewWriterSize(w, size), raw: w}
}
