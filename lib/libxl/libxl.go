// Package libxl reads and writes the libxl migration stream v2 (Xen's
// docs/specs/libxl-migration-stream.pandoc, revision 2), the layer that
// wraps a libxc stream with the toolstack's own records.
//
//	header (16 octets, always big-endian)
//	+-------------------------------------------------+
//	| ident "LibxlFmt"                                |
//	+-----------------------+-------------------------+
//	| version (2)           | options                 |
//	+-----------------------+-------------------------+
//	options bit 0: big-endian records, bit 1: legacy converted
//
//	record: type(4) body_length(4) body, zero padded to 8
//	        (in the byte order the header declares)
//
// A LIBXC_CONTEXT record has no body: the libxc stream follows it inline,
// up to its END record (or, in a checkpointed stream, its CHECKPOINT
// record, after which libxl records up to CHECKPOINT_END hand the stream
// back to libxc). The libxl END record closes the stream.
//
// Like package stream, this package checks every length against a limit
// before allocating and reports problems as *stream.FormatError.
package libxl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/xstream/xstream/lib/stream"
)

// Header layout and magic values.
const (
	HeaderSize        = 16
	Ident      uint64 = 0x4c6962786c466d74 // "LibxlFmt"
	Version    uint32 = 2

	OptionBigEndian uint32 = 1 << 0
	OptionLegacy    uint32 = 1 << 1
	optionsReserved uint32 = ^uint32(3)

	// MaxRecordLength caps a libxl record body. libxl itself has no
	// smaller cap than libxc's for emulator state; we use the same.
	MaxRecordLength = stream.MaxRecordLength
)

// RecordType is a libxl record type.
type RecordType uint32

// libxl record types.
const (
	RecEnd                  RecordType = 0
	RecLibxcContext         RecordType = 1
	RecEmulatorXenstoreData RecordType = 2
	RecEmulatorContext      RecordType = 3
	RecCheckpointEnd        RecordType = 4
	RecCheckpointState      RecordType = 5

	RecOptional RecordType = 1 << 31
)

var names = [...]string{"END", "LIBXC_CONTEXT", "EMULATOR_XENSTORE_DATA", "EMULATOR_CONTEXT", "CHECKPOINT_END", "CHECKPOINT_STATE"}

// Known reports whether t is a record type of the specification.
func (t RecordType) Known() bool { return uint64(t) < uint64(len(names)) }

// Optional reports whether bit 31 is set.
func (t RecordType) Optional() bool { return t&RecOptional != 0 }

func (t RecordType) String() string {
	if t.Known() {
		return names[t]
	}
	if t.Optional() {
		return fmt.Sprintf("OPTIONAL_0x%08x", uint32(t))
	}
	return fmt.Sprintf("UNKNOWN_0x%08x", uint32(t))
}

// Emulator ids of the emulator records' sub-header.
const (
	EmulatorUnknown      uint32 = 0
	EmulatorQemuTrad     uint32 = 1
	EmulatorQemuUpstream uint32 = 2
)

// EmulatorName names an emulator id.
func EmulatorName(id uint32) string {
	switch id {
	case EmulatorUnknown:
		return "unknown"
	case EmulatorQemuTrad:
		return "qemu-traditional"
	case EmulatorQemuUpstream:
		return "qemu-upstream"
	}
	return fmt.Sprintf("emulator %#x", id)
}

// Header is the libxl stream header.
type Header struct {
	Options uint32
}

// ByteOrder returns the byte order the header declares for records.
func (h Header) ByteOrder() stream.ByteOrder {
	if h.Options&OptionBigEndian != 0 {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// AppendBinary appends the 16-octet wire form of h.
func (h Header) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint64(b, Ident)
	b = binary.BigEndian.AppendUint32(b, Version)
	return binary.BigEndian.AppendUint32(b, h.Options), nil
}

// ParseHeader decodes a libxl header.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, io.ErrUnexpectedEOF
	}
	if id := binary.BigEndian.Uint64(b); id != Ident {
		return Header{}, stream.Corrupt("bad libxl ident %#016x, want %#016x (\"LibxlFmt\")", id, Ident)
	}
	if v := binary.BigEndian.Uint32(b[8:]); v != Version {
		return Header{}, stream.Unsupported("libxl stream version %d, this reader knows %d", v, Version)
	}
	return Header{Options: binary.BigEndian.Uint32(b[12:])}, nil
}

// Record is one libxl record. Body aliases the Reader's buffer until the
// next call to Next.
type Record struct {
	Type    RecordType
	Body    []byte
	Padding []byte
	Offset  int64
	Index   int
}

// Error wraps err with the record's position.
func (r *Record) Error(err error) *stream.FormatError {
	return &stream.FormatError{Layer: "libxl", Offset: r.Offset, Index: r.Index, Type: r.Type.String(), Err: err}
}

// Emulator decodes the emulator sub-header of EMULATOR_XENSTORE_DATA and
// EMULATOR_CONTEXT records.
func (r *Record) Emulator(order stream.ByteOrder) (id, index uint32, data []byte, err error) {
	if len(r.Body) < 8 {
		return 0, 0, nil, stream.Corrupt("%v length %d is shorter than its 8-octet emulator header", r.Type, len(r.Body))
	}
	return order.Uint32(r.Body), order.Uint32(r.Body[4:]), r.Body[8:], nil
}

// XenstorePairs splits EMULATOR_XENSTORE_DATA's data into key/value pairs.
func XenstorePairs(data []byte) ([][2]string, error) {
	if len(data) == 0 {
		return nil, nil
	}
	if data[len(data)-1] != 0 {
		return nil, stream.Corrupt("xenstore data is not NUL terminated")
	}
	parts := bytes.Split(data[:len(data)-1], []byte{0})
	if len(parts)%2 != 0 {
		return nil, stream.Corrupt("xenstore data has %d strings, want key/value pairs", len(parts))
	}
	kv := make([][2]string, 0, len(parts)/2)
	for i := 0; i < len(parts); i += 2 {
		kv = append(kv, [2]string{string(parts[i]), string(parts[i+1])})
	}
	return kv, nil
}

// Reader reads a libxl stream. When Next returns a LIBXC_CONTEXT record
// the caller must read the libxc stream that follows with Libxc before
// calling Next again; likewise after that libxc stream's CHECKPOINT.
type Reader struct {
	r     *stream.Source
	hdr   Header
	order stream.ByteOrder
	got   bool
	index int
	err   error
	done  bool
	buf   []byte
	rec   Record
}

// NewReader returns a Reader of the libxl stream in r. baseOffset is the
// offset of the stream's first octet (the size of an xl header in front,
// say) unless r is a *stream.Source, which keeps its own offset; through
// a shared Source the Reader consumes no more than the libxl stream.
func NewReader(r io.Reader, baseOffset int64) *Reader {
	return &Reader{r: stream.NewSource(r, baseOffset)}
}

// Offset returns the absolute offset of the next octet to be read.
func (r *Reader) Offset() int64 { return r.r.Offset() }

// Header reads, if not done yet, and returns the stream header.
func (r *Reader) Header() (Header, error) {
	if r.got || r.err != nil {
		return r.hdr, r.err
	}
	var b [HeaderSize]byte
	off := r.Offset()
	err := r.r.ReadFull(b[:])
	if err == nil {
		r.hdr, err = ParseHeader(b[:])
	} else if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		r.err = &stream.FormatError{Layer: "libxl", Offset: off, Index: -1, Type: "header", Err: err}
		return r.hdr, r.err
	}
	r.order = r.hdr.ByteOrder()
	r.got = true
	return r.hdr, nil
}

// ByteOrder returns the records' byte order; valid after Header.
func (r *Reader) ByteOrder() stream.ByteOrder { return r.order }

// Libxc returns a reader of the libxc stream that follows a LIBXC_CONTEXT
// record, sharing this Reader's source and offsets. Use it only until its
// END (or CHECKPOINT) record, then go back to Next.
func (r *Reader) Libxc(opts *stream.Options) *stream.Reader {
	return stream.NewReader(r.r, opts)
}

// Next returns the next libxl record, or io.EOF after END.
func (r *Reader) Next() (*Record, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.got {
		if _, err := r.Header(); err != nil {
			return nil, err
		}
	}
	if r.done {
		return nil, io.EOF
	}
	rec := &r.rec
	*rec = Record{Offset: r.Offset(), Index: r.index}
	var h [8]byte
	err := r.r.ReadFull(h[:])
	if err != nil {
		if err == io.EOF {
			err = errEOFBeforeEnd
		}
		r.err = &stream.FormatError{Layer: "libxl", Offset: rec.Offset, Index: rec.Index, Type: "record header", Err: err}
		return nil, r.err
	}
	rec.Type = RecordType(r.order.Uint32(h[:]))
	length := r.order.Uint32(h[4:])
	if length > MaxRecordLength {
		r.err = rec.Error(stream.OverLimit("body length %d exceeds the limit of %d", length, MaxRecordLength))
		return nil, r.err
	}
	padded := int(length+7) &^ 7
	b, err := stream.ReadBody(r.r, r.buf, padded)
	r.buf = b[:0]
	if err != nil {
		r.err = rec.Error(fmt.Errorf("stream truncated inside the record body: %w", err))
		return nil, r.err
	}
	rec.Body, rec.Padding = b[:length], b[length:]
	r.index++
	if rec.Type == RecEnd {
		r.done = true
	}
	return rec, nil
}

var errEOFBeforeEnd = fmt.Errorf("stream ends before its END record: %w", io.ErrUnexpectedEOF)

// Writer writes a libxl stream to w (give it a bufio.Writer).
type Writer struct {
	w     io.Writer
	order stream.ByteOrder
	err   error
	hdr   [8]byte
}

// NewWriter writes the header and returns a Writer for the records.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	b, _ := h.AppendBinary(nil)
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	return &Writer{w: w, order: h.ByteOrder()}, nil
}

var zeroPad [8]byte

// WriteRecord writes a record with the body made of parts and padding.
// After LIBXC_CONTEXT the caller writes the libxc stream to the same
// io.Writer.
func (w *Writer) WriteRecord(t RecordType, parts ...[]byte) error {
	if w.err != nil {
		return w.err
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > MaxRecordLength {
		return errors.New("libxl: record body over the length limit")
	}
	w.order.PutUint32(w.hdr[:], uint32(t))
	w.order.PutUint32(w.hdr[4:], uint32(n))
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		w.err = err
		return err
	}
	for _, p := range parts {
		if _, err := w.w.Write(p); err != nil {
			w.err = err
			return err
		}
	}
	if pad := -n & 7; pad != 0 {
		if _, err := w.w.Write(zeroPad[:pad]); err != nil {
			w.err = err
			return err
		}
	}
	return nil
}

// WriteEmulator writes an EMULATOR_XENSTORE_DATA or EMULATOR_CONTEXT
// record.
func (w *Writer) WriteEmulator(t RecordType, id, index uint32, data []byte) error {
	var h [8]byte
	w.order.PutUint32(h[:], id)
	w.order.PutUint32(h[4:], index)
	return w.WriteRecord(t, h[:], data)
}

// WriteRecordFrom writes a record whose body is head followed by n octets
// copied from r, so that a large body (a device model's state) streams
// through without being held in memory. Fewer than n octets in r is
// io.ErrUnexpectedEOF.
func (w *Writer) WriteRecordFrom(t RecordType, head []byte, n int64, r io.Reader) error {
	if w.err != nil {
		return w.err
	}
	total := int64(len(head)) + n
	if n < 0 || total > MaxRecordLength {
		return errors.New("libxl: record body over the length limit")
	}
	w.order.PutUint32(w.hdr[:], uint32(t))
	w.order.PutUint32(w.hdr[4:], uint32(total))
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		w.err = err
		return err
	}
	if _, err := w.w.Write(head); err != nil {
		w.err = err
		return err
	}
	if c, err := io.CopyN(w.w, r, n); err != nil {
		if err == io.EOF && c < n {
			err = io.ErrUnexpectedEOF
		}
		w.err = err
		return err
	}
	if pad := -total & 7; pad != 0 {
		if _, err := w.w.Write(zeroPad[:pad]); err != nil {
			w.err = err
			return err
		}
	}
	return nil
}
