package stream

import (
	"bufio"
	"errors"
	"io"
	"os"
)

// Source is a buffered reader that counts the octets consumed. Readers of
// stacked layers (xl header, libxl records, the libxc stream inside) share
// one Source, so each consumes exactly its own octets and every reported
// offset is absolute.
type Source struct {
	br      *bufio.Reader
	off     int64
	raw     io.Reader // beneath br, when the Source made br itself
	pre     []byte    // octets handed back by Unread, read before br
	tap     func([]byte)
	fwd     *Output    // see Forward
	fwdErr  error      // the first error writing to fwd
	file    *capReader // between br and raw when raw is an *os.File
	spliced int64      // octets Forward moved by splice(2)
}

// Forward makes every octet consumed from now on (as for SetTap) go on
// to o as well, in order, and Skip hand the octets it passes over to o
// rather than drop them: without passing them through user memory
// (splice(2)) where the Source reads an *os.File and o writes one, one
// of them a pipe and the other a pipe or a regular file. A walk over the
// stream that skips its pages is then a copy of the stream that reads
// only its headers. Closing an input pipe from another goroutine stops
// the copy. Unread cannot be used while forwarding. The first error
// writing to o is kept: ForwardErr returns it, and Skip fails with it.
// Forward(nil) stops forwarding. The caller flushes o.
func (s *Source) Forward(o *Output) { s.fwd, s.fwdErr = o, nil }

// ForwardErr returns the first error writing to the Forward output.
func (s *Source) ForwardErr() error { return s.fwdErr }

// Spliced returns how many of the octets forwarded went by splice(2),
// never through user memory.
func (s *Source) Spliced() int64 { return s.spliced }

// SetTap makes every octet consumed from now on (read, discarded, skipped
// or copied; not peeked) pass through tap as well, in order: a checksum
// of the stream as its readers consume it. With a tap, Skip and CopyN
// read the octets rather than seek or splice past them.
func (s *Source) SetTap(tap func([]byte)) { s.tap = tap }

// consumed counts and taps octets just consumed.
func (s *Source) consumed(b []byte) {
	s.off += int64(len(b))
	if s.tap != nil {
		s.tap(b)
	}
	if s.fwd != nil && s.fwdErr == nil && len(b) > 0 {
		_, s.fwdErr = s.fwd.Write(b)
	}
}

// Unread hands back b, the octets just consumed, to be read again. A
// reader that parsed a header to decide what to do uses it to pass the
// input on whole.
func (s *Source) Unread(b []byte) {
	if s.fwd != nil {
		// The octets went on to the Forward output already; read
		// again they would go twice.
		panic("stream: Unread while forwarding")
	}
	s.pre = append(append([]byte(nil), b...), s.pre...)
	s.off -= int64(len(b))
}

// fromPre consumes up to len(p) octets of the unread prefix into p.
func (s *Source) fromPre(p []byte) int {
	n := copy(p, s.pre)
	s.pre = s.pre[n:]
	s.consumed(p[:n])
	return n
}

// NewSource returns a Source reading from r whose first octet is at
// offset base. If r is already a *Source it is returned as it is.
func NewSource(r io.Reader, base int64) *Source {
	if s, ok := r.(*Source); ok {
		return s
	}
	if h, ok := r.(SourceHolder); ok {
		if s := h.Source(); s != nil {
			return s
		}
	}
	br, ok := r.(*bufio.Reader)
	if ok && br.Size() >= 64<<10 {
		return &Source{br: br, off: base}
	}
	src := &Source{off: base, raw: r}
	if f, ok := r.(*os.File); ok {
		src.file = &capReader{f: f, kind: kindOf(f)}
		r = src.file
	}
	src.br = bufio.NewReaderSize(r, 256<<10)
	return src
}

// capReader reads a file, the first read after a seek capped: after the
// pages of a PAGE_DATA record are seeked past, the buffer needs the next
// record's header and pfns (8 KiB for a batch of 1024), not the 256 KiB
// of pages after them that a full refill would read only to seek past
// them again.
type capReader struct {
	f    *os.File
	kind os.FileMode // kindOf(f)
	next int         // the cap of the next read, 0 for none
}

// afterSeek is the cap of the first read after a seek.
const afterSeek = 16 << 10

func (c *capReader) Read(p []byte) (int, error) {
	if c.next > 0 && len(p) > c.next {
		p = p[:c.next]
	}
	c.next = 0
	return c.f.Read(p)
}

// SourceHolder is a reader that may pass a Source on unchanged: NewSource
// then uses that Source, and its buffer and file, directly.
type SourceHolder interface {
	Source() *Source
}

// Offset returns the offset of the next octet to be read.
func (s *Source) Offset() int64 { return s.off }

// Read reads like io.Reader.
func (s *Source) Read(p []byte) (int, error) {
	if len(s.pre) > 0 {
		return s.fromPre(p), nil
	}
	n, err := s.br.Read(p)
	s.consumed(p[:n])
	return n, err
}

// ReadFull reads exactly len(b) octets; a short read is
// io.ErrUnexpectedEOF, and io.EOF only when nothing at all was read.
func (s *Source) ReadFull(b []byte) error {
	k := 0
	if len(s.pre) > 0 {
		if k = s.fromPre(b); k == len(b) {
			return nil
		}
	}
	n, err := io.ReadFull(s.br, b[k:])
	if err == io.EOF && k > 0 {
		err = io.ErrUnexpectedEOF
	}
	s.consumed(b[k : k+n])
	return err
}

// Peek returns the next n octets without consuming them.
func (s *Source) Peek(n int) ([]byte, error) {
	if len(s.pre) == 0 {
		return s.br.Peek(n)
	}
	if n <= len(s.pre) {
		return s.pre[:n], nil
	}
	b, err := s.br.Peek(n - len(s.pre))
	return append(append([]byte(nil), s.pre...), b...), err
}

// Discard skips n octets.
func (s *Source) Discard(n int) (int, error) {
	k := min(n, len(s.pre))
	s.consumed(s.pre[:k])
	s.pre = s.pre[k:]
	done := k
	for done < n {
		// A buffer at a time, so that a tap sees the octets.
		b, err := s.br.Peek(min(n-done, s.br.Size()))
		s.consumed(b)
		d, _ := s.br.Discard(len(b))
		done += d
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// Buffered returns the number of octets read ahead and held in memory.
func (s *Source) Buffered() int { return len(s.pre) + s.br.Buffered() }

// CopyN copies n octets to w: those already buffered from memory, the
// rest, where both ends allow it, without passing through user memory
// (splice(2), when w is an *Output over an *os.File, the Source reads an
// *os.File, and one of them is a pipe). Fewer than n octets in the input
// is io.ErrUnexpectedEOF. n < 0 copies to the end of the input.
func (s *Source) CopyN(w io.Writer, n int64) (int64, error) {
	done := int64(0)
	if len(s.pre) > 0 {
		k := len(s.pre)
		if n >= 0 {
			k = int(min(int64(k), n))
		}
		m, err := w.Write(s.pre[:k])
		s.consumed(s.pre[:m])
		s.pre = s.pre[m:]
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
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
		s.consumed(p[:k])
		s.br.Discard(k)
		done += int64(k)
		if err != nil {
			return done, err
		}
	}
	if done == n {
		return done, nil
	}
	if o, ok := w.(*Output); ok && s.tap == nil && s.fwd == nil && s.file != nil && o.file != nil &&
		(s.file.kind == os.ModeNamedPipe || o.kind == os.ModeNamedPipe) {
		if err := o.Flush(); err != nil {
			return done, err
		}
		left := n - done
		if n < 0 {
			left = -1
		}
		k, handled, err := splice(o.file, s.file.f, left)
		s.off += k
		done += k
		if handled {
			if err == nil && n >= 0 && done < n {
				err = io.ErrUnexpectedEOF
			}
			return done, err
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

// kindOf returns the type bits of f's mode, learnt once where a Source
// or an Output is made (a file's type does not change): 0 for a regular
// file, os.ModeNamedPipe for a pipe; os.ModeIrregular when f cannot be
// examined.
func kindOf(f *os.File) os.FileMode {
	fi, err := f.Stat()
	if err != nil {
		return os.ModeIrregular
	}
	return fi.Mode().Type()
}

// Output is a buffered writer that lets Source.CopyN hand long runs of
// octets straight to the file beneath it.
type Output struct {
	*bufio.Writer
	file *os.File    // the writer beneath, when it is a file
	kind os.FileMode // kindOf(file)
}

// NewOutput returns an Output writing to w with a buffer of size octets.
func NewOutput(w io.Writer, size int) *Output {
	o := &Output{Writer: bufio.NewWriterSize(w, size)}
	if f, ok := w.(*os.File); ok {
		o.file, o.kind = f, kindOf(f)
	}
	return o
}

// SpliceFrom writes up to n octets of the regular file f from offset off
// on, after what is buffered, without passing them through user memory
// when the Output's file is a pipe (splice(2)). It returns how many it
// moved: fewer than n when f ends first, and none when the octets cannot
// move that way; the caller writes the rest itself.
func (o *Output) SpliceFrom(f *os.File, off, n int64) (int64, error) {
	if o.file == nil || o.kind != os.ModeNamedPipe {
		return 0, nil
	}
	if err := o.Flush(); err != nil {
		return 0, err
	}
	moved, _, err := spliceAt(o.file, f, off, n)
	return moved, err
}

// forwardRaw moves the next n octets, none of them buffered, to the
// Forward output: by splice(2) where the files allow it and nothing taps
// the octets, else through the buffer (consumed forwards them).
func (s *Source) forwardRaw(n int64) error {
	o := s.fwd
	inPipe := s.file != nil && s.file.kind == os.ModeNamedPipe
	outPipe := o.file != nil && o.kind == os.ModeNamedPipe
	if s.file != nil && o.file != nil && s.tap == nil && (inPipe || outPipe) {
		// The spliced octets come after what the buffer holds.
		if err := o.Flush(); err != nil {
			s.fwdErr = err
			return err
		}
		var (
			k             int64
			handled       bool
			inErr, outErr error
		)
		switch {
		case inPipe && (outPipe || o.kind == 0):
			// Waits through the poller: closing in stops it.
			k, handled, inErr, outErr = spliceFromPipe(o.file, s.file.f, n)
		case !inPipe:
			k, handled, outErr = splice(o.file, s.file.f, n)
		}
		s.off += k
		s.spliced += k
		n -= k
		switch {
		case outErr != nil:
			// A write can fail (EPIPE, ENOSPC): the output's
			// error, not the stream's.
			s.fwdErr = outErr
			return outErr
		case inErr != nil:
			return inErr
		case handled && n > 0:
			return io.ErrUnexpectedEOF
		case handled:
			return nil
		}
	}
	return s.discardN(n)
}

// discardN consumes n octets through the buffer: what Skip does when
// nothing faster can. Fewer than n octets is io.ErrUnexpectedEOF; a
// failed Forward write ends it too.
func (s *Source) discardN(n int64) error {
	for n > 0 {
		d, err := s.Discard(int(min(n, 1<<30)))
		n -= int64(d)
		if err == nil {
			err = s.fwdErr
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// Skip consumes n octets without keeping them (with Forward, hands them
// on): those buffered from memory, the rest by seeking a regular file,
// by splicing a pipe into /dev/null (the kernel drops the pages; nothing
// is copied), or else by reading into a scratch buffer. Fewer than n
// octets is io.ErrUnexpectedEOF.
func (s *Source) Skip(n int64) error {
	k := min(n, int64(len(s.pre)))
	s.consumed(s.pre[:k])
	s.pre = s.pre[k:]
	n -= k
	b := min(int64(s.br.Buffered()), n)
	if _, err := s.Discard(int(b)); err != nil {
		return err
	}
	n -= b
	if n == 0 || s.fwdErr != nil {
		return s.fwdErr
	}
	if s.fwd != nil {
		return s.forwardRaw(n)
	}
	if s.file != nil && s.tap == nil {
		f := s.file.f
		if s.file.kind == 0 { // a regular file
			cur, err1 := f.Seek(0, io.SeekCurrent)
			end, err2 := f.Seek(0, io.SeekEnd)
			if err1 == nil && err2 == nil {
				to := min(cur+n, end)
				if _, err := f.Seek(to, io.SeekStart); err == nil {
					s.file.next = afterSeek
					s.off += to - cur
					if to-cur < n {
						return io.ErrUnexpectedEOF
					}
					return nil
				}
			}
			return errors.Join(err1, err2, errors.New("stream: cannot seek the input"))
		}
		if s.file.kind == os.ModeNamedPipe {
			moved, handled, err := discardPipe(f, n)
			s.off += moved
			if handled {
				if err == nil && moved < n {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
			n -= moved
		}
	}
	return s.discardN(n)
}
