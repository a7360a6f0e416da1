package integrity

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/xstream/xstream/lib/stream"
)

// Writer passes a stream's octets on to w, hashing them, and writes
// CHECKSUM records into it when asked. The caller knows the stream's
// structure: it calls Mark only between two libxc records, BeginTail just
// before the libxc END record, and Close after the last octet. Between
// BeginTail and Close the octets are held in memory (at most MaxTail).
type Writer struct {
	w        io.Writer
	order    stream.ByteOrder
	interval int64
	off      int64 // octets written to w
	start    int64 // first octet of the range being hashed
	crc      uint32
	tailing  bool
	tail     []byte
	records  int
	err      error
	buf      []byte
}

// NewWriter returns a Writer to w that makes a CHECKSUM record due every
// interval octets (DefaultInterval if 0).
func NewWriter(w io.Writer, interval int64) *Writer {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Writer{w: w, interval: interval}
}

// SetOrder sets the byte order of the libxc stream the records go into.
func (w *Writer) SetOrder(o stream.ByteOrder) { w.order = o }

// Write passes p on.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.tailing {
		if len(w.tail)+len(p) > MaxTail {
			w.err = fmt.Errorf("integrity: over %d octets after the libxc END record", MaxTail)
			return 0, w.err
		}
		w.tail = append(w.tail, p...)
		return len(p), nil
	}
	w.crc = crc32.Update(w.crc, castagnoli, p)
	n, err := w.w.Write(p)
	w.off += int64(n)
	if err != nil {
		w.err = err
	}
	return n, err
}

// Offset returns the octets of the outer stream so far.
func (w *Writer) Offset() int64 { return w.off + int64(len(w.tail)) }

// Records returns the CHECKSUM records written.
func (w *Writer) Records() int { return w.records }

// Due reports whether a CHECKSUM record is due: Interval octets have
// passed since the last one.
func (w *Writer) Due() bool { return !w.tailing && w.off-w.start >= w.interval }

// Mark writes a CHECKSUM record covering the octets since the last one.
// It must be called between two libxc records.
func (w *Writer) Mark() error {
	if w.err != nil {
		return w.err
	}
	if w.tailing {
		return errors.New("integrity: Mark after BeginTail")
	}
	return w.record(Checksum{Algorithm: AlgCRC32C, Start: uint64(w.start), Length: uint64(w.off - w.start), Value: uint64(w.crc)})
}

func (w *Writer) record(c Checksum) error {
	if w.order == nil {
		return errors.New("integrity: the libxc byte order is not set")
	}
	w.buf = c.AppendRecord(w.buf[:0], w.order)
	n, err := w.w.Write(w.buf)
	w.off += int64(n)
	if err != nil {
		w.err = err
		return err
	}
	w.records++
	w.start, w.crc = w.off, 0
	return nil
}

// BeginTail writes a CHECKSUM record and holds what follows, the libxc
// END record and the outer layers' last records, until Close. It must be
// called just before the libxc END record.
func (w *Writer) BeginTail() error {
	if err := w.Mark(); err != nil {
		return err
	}
	w.tailing = true
	return nil
}

// Close writes the TAIL CHECKSUM record and the octets held after it. It
// does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if !w.tailing {
		if w.records > 0 {
			return errors.New("integrity: stream ended before its libxc END record")
		}
		return nil
	}
	w.tailing = false
	tail := w.tail
	w.tail = nil
	c := Checksum{Algorithm: AlgCRC32C, Flags: FlagTail, Start: uint64(w.off + WireSize), Length: uint64(len(tail)),
		Value: uint64(crc32.Checksum(tail, castagnoli))}
	if err := w.record(c); err != nil {
		return err
	}
	n, err := w.w.Write(tail)
	w.off += int64(n)
	if err != nil {
		w.err = err
	}
	w.start = w.off
	return err
}
