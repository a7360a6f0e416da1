package stream

import (
	"errors"
	"fmt"
	"io"
)

// Writer writes a libxc stream. It writes straight to the io.Writer it is
// given, a few small writes per record: give it a bufio.Writer (shared
// with the outer layers, if any) for speed.
type Writer struct {
	w       io.Writer
	order   ByteOrder
	version uint32
	off     int64
	err     error
	started bool
	ended   bool
	hdr     [RecordHeaderSize]byte
}

var zeroPad [8]byte

// ErrWriterClosed is returned when records are written after END.
var ErrWriterClosed = errors.New("stream: write after END record")

// NewWriter returns a Writer that writes the two headers and then records
// to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteHeaders writes the image and domain headers; it must come first.
func (w *Writer) WriteHeaders(ih ImageHeader, dh DomainHeader) error {
	if w.err != nil {
		return w.err
	}
	if w.started {
		return errors.New("stream: headers written twice")
	}
	if ih.Version != Version2 && ih.Version != Version3 {
		return fmt.Errorf("stream: cannot write image version %d", ih.Version)
	}
	w.started = true
	w.order = ih.ByteOrder()
	w.version = ih.Version
	b := make([]byte, 0, ImageHeaderSize+DomainHeaderSize)
	b, _ = ih.AppendBinary(b)
	b = dh.appendBinary(b, w.order)
	return w.write(b)
}

// ByteOrder returns the byte order of the records being written.
func (w *Writer) ByteOrder() ByteOrder { return w.order }

// Offset returns the number of octets written so far.
func (w *Writer) Offset() int64 { return w.off }

func (w *Writer) write(b []byte) error {
	n, err := w.w.Write(b)
	w.off += int64(n)
	if err != nil {
		w.err = err
	}
	return err
}

// WriteRecord writes a record whose body is the concatenation of parts,
// followed by zero padding to a multiple of 8 octets.
func (w *Writer) WriteRecord(t RecordType, parts ...[]byte) error {
	if w.err != nil {
		return w.err
	}
	if !w.started {
		return errors.New("stream: record written before the headers")
	}
	if w.ended {
		return ErrWriterClosed
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > MaxRecordLength {
		return fmt.Errorf("stream: %v body of %d octets exceeds the limit of %d", t, n, MaxRecordLength)
	}
	w.order.PutUint32(w.hdr[0:], uint32(t))
	w.order.PutUint32(w.hdr[4:], uint32(n))
	if err := w.write(w.hdr[:]); err != nil {
		return err
	}
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		if err := w.write(p); err != nil {
			return err
		}
	}
	if pad := -n & 7; pad != 0 {
		if err := w.write(zeroPad[:pad]); err != nil {
			return err
		}
	}
	if t == RecEnd {
		w.ended = true
	}
	return nil
}

// Copy writes a record read by a Reader. An implied STATIC_DATA_END is
// written only to a version 3 stream; padding is always written as zeros.
func (w *Writer) Copy(rec *Record) error {
	if rec.Implied && w.version < Version3 {
		return nil
	}
	if rec.Skipped > 0 {
		return fmt.Errorf("stream: cannot copy %v record %d: its page data was skipped", rec.Type, rec.Index)
	}
	return w.WriteRecord(rec.Type, rec.Body)
}

// Write encodes and writes a typed record body.
func (w *Writer) Write(b Body) error {
	return w.WriteRecord(b.Type(), b.AppendBody(nil, w.order))
}

// WriteRecordFrom writes a record whose body is head followed by n octets
// from r, which must supply exactly n. A large body (page data) thus
// streams through: if r is an io.WriterTo (a legacy.Reader's page data,
// which copies with Source.CopyN) it writes straight to the Writer's
// io.Writer, so that the octets can move without a copy through memory.
func (w *Writer) WriteRecordFrom(t RecordType, head []byte, n int64, r io.Reader) error {
	if w.err != nil {
		return w.err
	}
	if !w.started {
		return errors.New("stream: record written before the headers")
	}
	if w.ended {
		return ErrWriterClosed
	}
	total := int64(len(head)) + n
	if n < 0 || total > MaxRecordLength {
		return fmt.Errorf("stream: %v body of %d octets exceeds the limit of %d", t, total, MaxRecordLength)
	}
	w.order.PutUint32(w.hdr[0:], uint32(t))
	w.order.PutUint32(w.hdr[4:], uint32(total))
	if err := w.write(w.hdr[:]); err != nil {
		return err
	}
	if len(head) > 0 {
		if err := w.write(head); err != nil {
			return err
		}
	}
	var k int64
	var err error
	if wt, ok := r.(io.WriterTo); ok {
		k, err = wt.WriteTo(w.w)
	} else {
		k, err = io.CopyN(w.w, r, n)
	}
	w.off += k
	if err == nil && k != n {
		err = fmt.Errorf("stream: %v body: %d of %d octets: %w", t, k, n, io.ErrUnexpectedEOF)
	}
	if err != nil {
		w.err = err
		return err
	}
	if pad := -total & 7; pad != 0 {
		if err := w.write(zeroPad[:pad]); err != nil {
			return err
		}
	}
	if t == RecEnd {
		w.ended = true
	}
	return nil
}
