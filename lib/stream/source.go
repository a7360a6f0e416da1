package stream

import (
	"bufio"
	"io"
)

// Source is a buffered reader that counts the octets consumed. Readers of
// stacked layers (xl header, libxl records, the libxc stream inside) share
// one Source, so each consumes exactly its own octets and every reported
// offset is absolute.
type Source struct {
	br  *bufio.Reader
	off int64
	tap func([]byte)
}

// SetTap makes every octet consumed from now on (read or discarded, not
// peeked) pass through tap as well, in order: a checksum of the stream
// as its readers consume it.
func (s *Source) SetTap(tap func([]byte)) { s.tap = tap }

// NewSource returns a Source reading from r whose first octet is at
// offset base. If r is already a *Source it is returned as it is.
func NewSource(r io.Reader, base int64) *Source {
	if s, ok := r.(*Source); ok {
		return s
	}
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 64<<10 {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Source{br: br, off: base}
}

// Offset returns the offset of the next octet to be read.
func (s *Source) Offset() int64 { return s.off }

// Read reads like io.Reader.
func (s *Source) Read(p []byte) (int, error) {
	n, err := s.br.Read(p)
	s.off += int64(n)
	if s.tap != nil {
		s.tap(p[:n])
	}
	return n, err
}

// ReadFull reads exactly len(b) octets; a short read is
// io.ErrUnexpectedEOF, and io.EOF only when nothing at all was read.
func (s *Source) ReadFull(b []byte) error {
	n, err := io.ReadFull(s.br, b)
	s.off += int64(n)
	if s.tap != nil {
		s.tap(b[:n])
	}
	return err
}

// Peek returns the next n octets without consuming them.
func (s *Source) Peek(n int) ([]byte, error) { return s.br.Peek(n) }

// Discard skips n octets.
func (s *Source) Discard(n int) (int, error) {
	if s.tap != nil {
		// The tap needs the octets: peek at them a buffer at a time.
		done := 0
		for done < n {
			b, err := s.br.Peek(min(n-done, s.br.Size()))
			s.tap(b)
			d, _ := s.br.Discard(len(b))
			s.off += int64(d)
			done += d
			if err != nil {
				return done, err
			}
		}
		return done, nil
	}
	d, err := s.br.Discard(n)
	s.off += int64(d)
	return d, err
}
