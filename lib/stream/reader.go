package stream

import (
	"errors"
	"io"
)

// Record is one record as read from a stream. Body and Padding alias the
// Reader's buffer and are valid only until the next call to Next.
type Record struct {
	Type    RecordType
	Body    []byte // body_length octets
	Padding []byte // the 0 to 7 padding octets as found on the wire
	Offset  int64  // byte offset of the record header
	Index   int    // ordinal of the record in the stream, from 0

	// Skipped counts the octets at the end of the body that the Reader
	// skipped rather than read (page data, with Options.SkipPageData);
	// Body then holds only what came before them.
	Skipped int

	// Implied is set on the STATIC_DATA_END record a Reader infers for a
	// version 2 stream. It is not on the wire: a Writer of a version 2
	// stream drops it, one of a version 3 stream writes it.
	Implied bool
}

// WireSize is the number of octets the record occupies in the stream.
func (r *Record) WireSize() int64 {
	if r.Implied {
		return 0
	}
	return RecordHeaderSize + int64(len(r.Body)+r.Skipped) + int64(len(r.Padding))
}

// Errorf wraps err with the record's position.
func (r *Record) Error(err error) *FormatError {
	return &FormatError{Layer: "libxc", Offset: r.Offset, Index: r.Index, Type: r.Type.String(), Err: err}
}

// Options tune a Reader. The zero value is the default.
type Options struct {
	// BaseOffset is the offset of the stream's first octet, for a stream
	// that is embedded in another and not read through a shared Source.
	BaseOffset int64
	// MaxRecordLength overrides the record length limit (MaxRecordLength
	// when 0). It can only be lowered.
	MaxRecordLength int
	// SkipPageData reads only the header and pfn words of PAGE_DATA
	// records and skips their pages (seeking a file, or splicing a pipe
	// into /dev/null): for tools that look at the structure, not the
	// memory. Record.Skipped says how much was skipped.
	SkipPageData bool
}

// Reader reads the records of a libxc stream.
//
// If the source is a *Source shared with an outer layer (libxl), the
// Reader consumes exactly the octets of the libxc stream and no more, so
// that the outer layer can go on reading after the END record.
type Reader struct {
	r      *Source
	opts   Options
	err    error // sticky
	ihdr   ImageHeader
	dhdr   DomainHeader
	order  ByteOrder
	gotHdr bool
	index  int
	done   bool // END returned

	staticEnd bool    // STATIC_DATA_END seen or implied
	pending   *Record // record held back behind an implied STATIC_DATA_END
	rec       Record
	buf       []byte
	pad       [8]byte
	hbuf      [ImageHeaderSize]byte
}

// NewReader returns a Reader of the libxc stream in r.
func NewReader(r io.Reader, opts *Options) *Reader {
	rd := &Reader{}
	if opts != nil {
		rd.opts = *opts
	}
	rd.r = NewSource(r, rd.opts.BaseOffset)
	if rd.opts.MaxRecordLength <= 0 || rd.opts.MaxRecordLength > MaxRecordLength {
		rd.opts.MaxRecordLength = MaxRecordLength
	}
	return rd
}

// Offset returns the absolute offset of the next octet the Reader will
// consume.
func (r *Reader) Offset() int64 { return r.r.Offset() }

// Headers reads, if not done yet, and returns the image and domain headers.
func (r *Reader) Headers() (ImageHeader, DomainHeader, error) {
	if !r.gotHdr && r.err == nil {
		r.err = r.readHeaders()
	}
	return r.ihdr, r.dhdr, r.err
}

// ByteOrder returns the byte order of the records; valid after Headers.
func (r *Reader) ByteOrder() ByteOrder { return r.order }

func (r *Reader) readHeaders() error {
	base := r.Offset()
	herr := func(name string, off int64, err error) error {
		return &FormatError{Layer: "libxc", Offset: off, Index: -1, Type: name, Err: err}
	}
	if err := r.readFull(r.hbuf[:ImageHeaderSize]); err != nil {
		return herr("image header", base, err)
	}
	ih, err := parseImageHeader(r.hbuf[:])
	if err != nil {
		return herr("image header", base, err)
	}
	r.ihdr, r.order = ih, ih.ByteOrder()
	if err := r.readFull(r.hbuf[:DomainHeaderSize]); err != nil {
		return herr("domain header", base+ImageHeaderSize, err)
	}
	dh, err := parseDomainHeader(r.hbuf[:DomainHeaderSize], r.order)
	if err != nil {
		return herr("domain header", base+ImageHeaderSize, err)
	}
	r.dhdr = dh
	r.gotHdr = true
	return nil
}

// readFull reads len(b) octets, turning a short read into
// io.ErrUnexpectedEOF.
func (r *Reader) readFull(b []byte) error {
	err := r.r.ReadFull(b)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Next returns the next record. After the END record it returns io.EOF.
// A stream that ends before its END record yields an error wrapping
// io.ErrUnexpectedEOF. Errors are sticky.
func (r *Reader) Next() (*Record, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.gotHdr {
		if _, _, err := r.Headers(); err != nil {
			return nil, err
		}
	}
	if r.pending != nil {
		rec := r.pending
		r.pending = nil
		return rec, nil
	}
	if r.done {
		return nil, io.EOF
	}
	rec, err := r.readRecord()
	if err != nil {
		r.err = err
		return nil, err
	}
	switch rec.Type {
	case RecEnd:
		r.done = true
	case RecStaticDataEnd:
		r.staticEnd = true
	case RecPageData, RecX86PVP2MFrames:
		// Version 2 compatibility (spec "v3 compat with v2", and
		// xg_sr_restore.c): infer STATIC_DATA_END where the first
		// memory content begins.
		if r.ihdr.Version < Version3 && !r.staticEnd {
			r.staticEnd = true
			r.pending = rec
			return &Record{Type: RecStaticDataEnd, Offset: rec.Offset, Index: rec.Index, Implied: true}, nil
		}
	}
	return rec, nil
}

func (r *Reader) readRecord() (*Record, error) {
	rec := &r.rec
	*rec = Record{Offset: r.Offset(), Index: r.index}
	var h [RecordHeaderSize]byte
	if err := r.readFull(h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) && r.Offset() == rec.Offset {
			err = eofBeforeEnd{}
		}
		return nil, &FormatError{Layer: "libxc", Offset: rec.Offset, Index: rec.Index, Type: "record header", Err: err}
	}
	rec.Type = RecordType(r.order.Uint32(h[0:]))
	length := r.order.Uint32(h[4:])
	if uint64(length) > uint64(r.opts.MaxRecordLength) {
		return nil, rec.Error(overLimit("body length %d exceeds the limit of %d", length, r.opts.MaxRecordLength))
	}
	padded := int(length+7) &^ 7
	if rec.Type == RecPageData && r.opts.SkipPageData && length >= 8 {
		return r.readSkipping(rec, int(length))
	}
	b, err := readGrowing(r.r, r.buf, padded)
	r.buf = b[:0]
	if err != nil {
		return nil, rec.Error(truncated{want: padded, err: err})
	}
	rec.Body = b[:length]
	rec.Padding = b[length:]
	r.index++
	return rec, nil
}

// readSkipping reads a PAGE_DATA record's header and pfn words and skips
// its pages. A count that does not fit the length falls back to reading
// the body whole, for the decoder to report.
func (r *Reader) readSkipping(rec *Record, length int) (*Record, error) {
	padded := (length + 7) &^ 7
	const most = 8 + 8*MaxPageBatch
	if cap(r.buf) < most {
		r.buf = make([]byte, most)
	}
	head := r.buf[:8]
	if err := r.readFull(head); err != nil {
		return nil, rec.Error(truncated{want: padded, err: err})
	}
	var body []byte
	var n int
	// In 64 bits: 8 times a 32-bit count overflows a 32-bit int.
	if c := uint64(r.order.Uint32(head)); c <= MaxPageBatch && 8+8*c <= uint64(length) {
		n = 8 + 8*int(c)
		body = r.buf[:n]
		if err := r.readFull(body[8:]); err != nil {
			return nil, rec.Error(truncated{want: padded, err: err})
		}
		if err := r.r.Skip(int64(length - n)); err != nil {
			return nil, rec.Error(truncated{want: padded, err: err})
		}
	} else { // not a valid batch: read it all and let Decode say why
		rest, err := readGrowing(r.r, nil, length-8)
		if err != nil {
			return nil, rec.Error(truncated{want: padded, err: err})
		}
		n, body = length, append(append([]byte(nil), head...), rest...)
	}
	if err := r.readFull(r.pad[:padded-length]); err != nil {
		return nil, rec.Error(truncated{want: padded, err: err})
	}
	rec.Body, rec.Skipped, rec.Padding = body, length-n, r.pad[:padded-length]
	r.index++
	return rec, nil
}

// eofBeforeEnd is the error for a stream that stops cleanly between
// records but before END.
type eofBeforeEnd struct{}

func (eofBeforeEnd) Error() string { return "stream ends before its END record" }
func (eofBeforeEnd) Unwrap() error { return io.ErrUnexpectedEOF }

type truncated struct {
	want int
	err  error
}

func (t truncated) Error() string {
	if errors.Is(t.err, io.ErrUnexpectedEOF) {
		return "stream truncated inside the record body"
	}
	return t.err.Error()
}
func (t truncated) Unwrap() error { return t.err }

// growStep is the first step of a record buffer that must grow; it then
// doubles. A header that claims a long body costs memory only as the
// body's octets actually arrive.
const growStep = 1 << 20

// ReadBody reads n octets from src into buf (reusing its capacity),
// growing the buffer step by step as data arrives rather than trusting n
// up front. A short read is io.ErrUnexpectedEOF.
func ReadBody(src *Source, buf []byte, n int) ([]byte, error) { return readGrowing(src, buf, n) }

func readGrowing(src *Source, buf []byte, n int) ([]byte, error) {
	if cap(buf) >= n {
		b := buf[:n]
		err := src.ReadFull(b)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return b, err
	}
	b := buf[:0]
	for len(b) < n {
		if cap(b) == len(b) {
			nb := make([]byte, len(b), min(n, max(2*cap(b), growStep)))
			copy(nb, b)
			b = nb
		}
		step := min(n-len(b), cap(b)-len(b))
		if err := src.ReadFull(b[len(b) : len(b)+step]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return b, err
		}
		b = b[:len(b)+step]
	}
	return b, nil
}
