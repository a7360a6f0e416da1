package sniff

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/xstream/xstream/lib/integrity"
	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

// Layer names the layer an Item belongs to.
type Layer string

// Layers of a stream.
const (
	LayerXL    Layer = "xl"
	LayerLibxl Layer = "libxl"
	LayerLibxc Layer = "libxc"
	LayerQemu  Layer = "qemu" // the legacy qemu tail after a bare libxc stream
)

// ItemKind tells what an Item carries.
type ItemKind int

// Item kinds.
const (
	XLHeader     ItemKind = iota // XL is set
	LibxlHeader                  // LibxlHdr is set
	LibxcHeaders                 // Image and Domain are set
	LibxlRecord                  // Libxl is set
	LibxcRecord                  // Libxc is set
	QemuTail                     // Qemu is set: the device model blob
)

// Item is one element of a stream, at any layer. Its slices alias the
// readers' buffers and are valid until the next call to Next.
type Item struct {
	Kind   ItemKind
	Layer  Layer
	Offset int64
	Size   int64 // octets on the wire, headers and padding included
	Index  int   // record ordinal within its layer; -1 for headers

	XL       *xl.Header
	LibxlHdr libxl.Header
	Image    stream.ImageHeader
	Domain   stream.DomainHeader
	Libxl    *libxl.Record
	Libxc    *stream.Record
	Qemu     []byte

	// Order is the byte order of the item's layer.
	Order stream.ByteOrder
}

// Name returns the item's type name: a record type or a header's name.
func (it *Item) Name() string {
	switch it.Kind {
	case XLHeader:
		return "XL_HEADER"
	case LibxlHeader:
		return "LIBXL_HEADER"
	case LibxcHeaders:
		return "LIBXC_HEADER"
	case LibxlRecord:
		return it.Libxl.Type.String()
	case LibxcRecord:
		return it.Libxc.Type.String()
	case QemuTail:
		return "QEMU_TAIL"
	}
	return "?"
}

// Length returns the body length of a record item, or the size of a header.
func (it *Item) Length() int {
	switch it.Kind {
	case LibxlRecord:
		return len(it.Libxl.Body)
	case LibxcRecord:
		return len(it.Libxc.Body) + it.Libxc.Skipped
	case QemuTail:
		return len(it.Qemu)
	}
	return int(it.Size)
}

// Error returns err, found in the item's content by a consumer (stats, a
// digest), as an error of the item, naming its layer, index, type and
// offset. An error that already names its place is returned as it is.
func (it *Item) Error(err error) error {
	var fe *stream.FormatError
	if err == nil || errors.As(err, &fe) {
		return err
	}
	return &stream.FormatError{Layer: string(it.Layer), Offset: it.Offset, Index: it.Index, Type: it.Name(), Err: err}
}

// QemuSignature starts the legacy qemu tail that Xen's converter keeps
// after a bare libxc stream (and legacy libxl wrote after libxc's).
const QemuSignature = "DeviceModelRecord0002"

// Options tune a Walker.
type Options struct {
	// Verify checks every record against the specifications and the
	// record-order rules (stream.Verifier plus the libxl rules); without
	// it the Walker checks only what it needs to go on.
	Verify bool
	// AllowTrailing accepts octets after the last END record instead of
	// failing.
	AllowTrailing bool
	// SkipPageData skips the pages of PAGE_DATA records (see
	// stream.Options): for consumers of the structure, not the memory.
	SkipPageData bool
	// NoChecksums is for input that must carry no CHECKSUM records (a
	// toolstack's own stream, or a file to be handed to xl as it is,
	// which does not take them): a CHECKSUM record fails the walk with
	// ErrChecksumRecord. (Without it, a stream whose first libxc record
	// is not a CHECKSUM record is not hashed past that record either.)
	NoChecksums bool
}

// ErrChecksumRecord is the error for a CHECKSUM record in a walk with
// Options.NoChecksums.
var ErrChecksumRecord = errors.New("a CHECKSUM record, which this input is not expected to carry")

// Walker reads every layer of an xl, libxl or libxc input as Items.
type Walker struct {
	src  *stream.Source
	info Info
	opts Options
	err  error

	state     walkState
	xlHdr     *xl.Header
	lx        *libxl.Reader
	lc        *stream.Reader
	lcv       *stream.Verifier
	item      Item
	order     stream.ByteOrder // of the libxl layer
	libxcSeen int              // LIBXC_CONTEXT records
	libxcDone bool             // libxc END seen
	inCkpt    bool             // libxc CHECKPOINT seen, waiting for CHECKPOINT_END
	ckpts     int
	sums      *integrity.Checker // CHECKSUM records, checked whenever present
	sumsKnown bool               // the first libxc record said whether there are any
}

type walkState int

const (
	stStart walkState = iota
	stLibxlHeader
	stLibxl
	stLibxcHeaders
	stLibxc
	stAfterLibxc // bare libxc: after END, maybe a qemu tail
	stTrailing
	stDone
)

// ErrNotStream is returned for input that is not an xl, libxl or libxc
// stream (legacy, compressed or unknown input).
var ErrNotStream = errors.New("not a migration stream v2/v3")

// NewWalker detects the input's format and returns a Walker over it.
func NewWalker(r io.Reader, opts *Options) (*Walker, error) {
	info, src, err := Detect(r)
	if err != nil {
		return nil, err
	}
	w := &Walker{src: src, info: info}
	if opts != nil {
		w.opts = *opts
	}
	w.sums = integrity.NewChecker(src.Offset())
	if !w.opts.NoChecksums {
		src.SetTap(w.sums.Tap)
	}
	switch info.Kind {
	case XL, Libxl, Libxc:
	case Empty:
		return nil, &stream.FormatError{Offset: 0, Index: -1, Type: "input", Err: fmt.Errorf("empty input: %w", io.ErrUnexpectedEOF)}
	default:
		return nil, &stream.FormatError{Offset: 0, Index: -1, Type: "input", Err: fmt.Errorf("%w: looks like %v input", ErrNotStream, info.Kind)}
	}
	return w, nil
}

// Info returns what detection found.
func (w *Walker) Info() Info { return w.info }

// Offset returns the offset of the next octet to be read.
func (w *Walker) Offset() int64 { return w.src.Offset() }

// Checksums returns the CHECKSUM records verified so far and the octets
// they cover.
func (w *Walker) Checksums() (records int, octets int64) { return w.sums.Verified() }

// Config returns the xl header's config, if the input has one.
func (w *Walker) Config() []byte {
	if w.xlHdr == nil {
		return nil
	}
	return w.xlHdr.Config
}

// Next returns the next item, or io.EOF at the end of a complete stream.
func (w *Walker) Next() (*Item, error) {
	if w.err != nil {
		return nil, w.err
	}
	it, err := w.next()
	if ferr := w.src.ForwardErr(); ferr != nil {
		// Writing the copy failed: that, not what the reader made of
		// it, is the error.
		err = ferr
	}
	if err != nil {
		w.err = err
		return nil, err
	}
	return it, nil
}

// Forward makes the walk a copy: every octet of the input goes on to o
// as the walk passes it, the pages of PAGE_DATA records that
// Options.SkipPageData passes over included, which go straight from
// file to file where the kernel can move them (stream.Source.Forward).
// It must be called before the first Next. A failed write to o ends the
// walk with that error. The caller flushes o at the end.
func (w *Walker) Forward(o *stream.Output) error {
	if w.src.Offset() != 0 || w.state != stStart {
		return errors.New("sniff: Forward after the walk began")
	}
	w.src.Forward(o)
	return nil
}

// Spliced returns how many of the octets forwarded went by splice(2).
func (w *Walker) Spliced() int64 { return w.src.Spliced() }

func (w *Walker) next() (*Item, error) {
	it := &w.item
	*it = Item{Offset: w.src.Offset(), Index: -1}
	switch w.state {
	case stStart:
		switch w.info.Kind {
		case XL:
			h, err := xl.Read(w.src, 0)
			if err != nil {
				return nil, err
			}
			w.xlHdr = h
			it.Kind, it.Layer, it.XL, it.Order = XLHeader, LayerXL, h, h.Order
			it.Size = w.src.Offset()
			if h.StreamV2() {
				w.state = stLibxlHeader
			} else {
				b, _ := w.src.Peek(PeekSize)
				if k := Identify(b).Kind; k != Libxc {
					return nil, &stream.FormatError{Layer: "xl", Offset: w.src.Offset(), Index: -1, Type: "payload",
						Err: fmt.Errorf("%w: the xl header announces a libxc stream, but what follows looks like %v input", ErrNotStream, k)}
				}
				w.state = stLibxcHeaders
			}
			return it, nil
		case Libxl:
			w.state = stLibxlHeader
		default:
			w.state = stLibxcHeaders
		}
		return w.next()

	case stLibxlHeader:
		w.lx = libxl.NewReader(w.src, 0)
		h, err := w.lx.Header()
		if err != nil {
			return nil, err
		}
		if w.opts.Verify {
			if bad := h.Options &^ (libxl.OptionBigEndian | libxl.OptionLegacy); bad != 0 {
				return nil, &stream.FormatError{Layer: "libxl", Offset: it.Offset, Index: -1, Type: "header",
					Err: stream.Corrupt("reserved bits set in options: %#x", bad)}
			}
		}
		w.order = h.ByteOrder()
		it.Kind, it.Layer, it.LibxlHdr, it.Order = LibxlHeader, LayerLibxl, h, w.order
		it.Size = libxl.HeaderSize
		w.state = stLibxl
		return it, nil

	case stLibxl:
		rec, err := w.lx.Next()
		if err == io.EOF {
			w.state = stTrailing
			return w.next()
		}
		if err != nil {
			return nil, err
		}
		it.Kind, it.Layer, it.Libxl, it.Order, it.Index = LibxlRecord, LayerLibxl, rec, w.order, rec.Index
		it.Size = 8 + int64(len(rec.Body)+len(rec.Padding))
		if err := w.libxlRecord(rec); err != nil {
			return nil, rec.Error(err)
		}
		return it, nil

	case stLibxcHeaders:
		w.lc = stream.NewReader(w.src, &stream.Options{SkipPageData: w.opts.SkipPageData})
		ih, dh, err := w.lc.Headers()
		if err != nil {
			return nil, err
		}
		if w.opts.Verify {
			if w.lcv, err = stream.NewVerifier(ih, dh); err != nil {
				var fe *stream.FormatError
				if errors.As(err, &fe) {
					fe.Offset += it.Offset
				}
				return nil, err
			}
		}
		it.Kind, it.Layer, it.Image, it.Domain, it.Order = LibxcHeaders, LayerLibxc, ih, dh, ih.ByteOrder()
		it.Size = stream.ImageHeaderSize + stream.DomainHeaderSize
		w.state = stLibxc
		return it, nil

	case stLibxc:
		rec, err := w.lc.Next()
		if err != nil {
			return nil, err
		}
		it.Kind, it.Layer, it.Libxc, it.Order, it.Index = LibxcRecord, LayerLibxc, rec, w.lc.ByteOrder(), rec.Index
		// The record's own offset: the Reader has read further when it
		// hands back a record held behind an implied STATIC_DATA_END.
		it.Offset, it.Size = rec.Offset, rec.WireSize()
		if w.lcv != nil {
			if err := w.lcv.Record(rec); err != nil {
				return nil, err
			}
		}
		if !w.sumsKnown && !rec.Implied {
			// A checksummed stream's first libxc record is a CHECKSUM
			// record (docs/FORMAT.md §4.1). Any other means the stream
			// has none: nothing needs to see every octet any longer,
			// so page data can be skipped without being read.
			w.sumsKnown = true
			if rec.Type != integrity.RecChecksum {
				w.sums.Absent()
				w.src.SetTap(nil)
			}
		}
		switch rec.Type {
		case integrity.RecChecksum:
			if w.opts.NoChecksums {
				return nil, rec.Error(ErrChecksumRecord)
			}
			if err := w.sums.Record(rec, w.lc.ByteOrder()); err != nil {
				return nil, rec.Error(err)
			}
		case stream.RecEnd:
			w.libxcDone = true
			if w.lx != nil {
				w.state = stLibxl
			} else {
				w.state = stAfterLibxc
			}
		case stream.RecCheckpoint:
			if w.lx != nil {
				w.inCkpt = true
				w.state = stLibxl
			}
		}
		return it, nil

	case stAfterLibxc:
		b, _ := w.src.Peek(len(QemuSignature) + 4)
		if len(b) >= len(QemuSignature) && string(b[:len(QemuSignature)]) == QemuSignature {
			return w.qemuTail(it)
		}
		w.state = stTrailing
		return w.next()

	case stTrailing:
		w.state = stDone
		if !w.opts.AllowTrailing {
			b, err := w.src.Peek(1)
			if len(b) > 0 {
				n := w.countTrailing()
				return nil, &stream.FormatError{Offset: it.Offset, Index: -1, Type: "end of stream",
					Err: stream.Corrupt("%s octets of trailing data after the last END record", n)}
			}
			if err != nil && err != io.EOF {
				// A decompressor's last word (its last checksum)
				// comes after the stream's last octet.
				return nil, err
			}
		}
		if !w.opts.NoChecksums {
			if err := w.sums.End(w.src.Offset()); err != nil {
				return nil, err
			}
		}
		return nil, io.EOF
	}
	return nil, io.EOF
}

// countTrailing reports how much data follows the end, up to a bound.
func (w *Walker) countTrailing() string {
	const max = 1 << 20
	n, _ := io.CopyN(io.Discard, w.src, max)
	if n == max {
		return fmt.Sprintf("at least %d", n)
	}
	return fmt.Sprint(n)
}

func (w *Walker) qemuTail(it *Item) (*Item, error) {
	var h [len(QemuSignature) + 4]byte
	if err := w.src.ReadFull(h[:]); err != nil {
		return nil, &stream.FormatError{Layer: "qemu", Offset: it.Offset, Index: -1, Type: "QEMU_TAIL", Err: io.ErrUnexpectedEOF}
	}
	// The size is a native uint32 of the saving (x86) host.
	n := binary.LittleEndian.Uint32(h[len(QemuSignature):])
	if n > stream.MaxRecordLength {
		return nil, &stream.FormatError{Layer: "qemu", Offset: it.Offset, Index: -1, Type: "QEMU_TAIL",
			Err: stream.OverLimit("qemu tail of %d octets exceeds the limit of %d", n, stream.MaxRecordLength)}
	}
	data := make([]byte, n)
	if err := w.src.ReadFull(data); err != nil {
		return nil, &stream.FormatError{Layer: "qemu", Offset: it.Offset, Index: -1, Type: "QEMU_TAIL",
			Err: fmt.Errorf("qemu tail truncated: %w", io.ErrUnexpectedEOF)}
	}
	it.Kind, it.Layer, it.Qemu, it.Size = QemuTail, LayerQemu, data, int64(len(h))+int64(n)
	w.state = stTrailing
	return it, nil
}

// libxlRecord moves the state machine on at a libxl record and, when
// verifying, checks it.
func (w *Walker) libxlRecord(rec *libxl.Record) error {
	if w.opts.Verify {
		for _, b := range rec.Padding {
			if b != 0 {
				return stream.Corrupt("padding contains non-zero octets: % x", rec.Padding)
			}
		}
	}
	switch rec.Type {
	case libxl.RecLibxcContext:
		if len(rec.Body) != 0 {
			return stream.Corrupt("LIBXC_CONTEXT with non-zero length %d", len(rec.Body))
		}
		if w.libxcSeen > 0 {
			return stream.Corrupt("second LIBXC_CONTEXT record")
		}
		w.libxcSeen++
		w.state = stLibxcHeaders
	case libxl.RecEnd:
		if len(rec.Body) != 0 {
			return stream.Corrupt("END record with non-zero length %d", len(rec.Body))
		}
		if w.inCkpt {
			return stream.Corrupt("END inside a checkpoint (a libxc CHECKPOINT awaits its CHECKPOINT_END)")
		}
		if w.libxcSeen == 0 {
			return stream.Corrupt("END before any LIBXC_CONTEXT")
		}
		if !w.libxcDone {
			return stream.Corrupt("END before the libxc stream's END")
		}
	case libxl.RecCheckpointEnd:
		if len(rec.Body) != 0 {
			return stream.Corrupt("CHECKPOINT_END with non-zero length %d", len(rec.Body))
		}
		if !w.inCkpt {
			return stream.Corrupt("CHECKPOINT_END without a preceding libxc CHECKPOINT")
		}
		w.inCkpt = false
		w.ckpts++
		w.state = stLibxc // libxc goes on with the next checkpoint
	case libxl.RecEmulatorXenstoreData, libxl.RecEmulatorContext:
		id, _, data, err := rec.Emulator(w.order)
		if err != nil {
			return err
		}
		if w.opts.Verify {
			if id > libxl.EmulatorQemuUpstream {
				return stream.Corrupt("unknown emulator id %#x", id)
			}
			if rec.Type == libxl.RecEmulatorXenstoreData {
				if _, err := libxl.XenstorePairs(data); err != nil {
					return err
				}
			}
			if w.libxcSeen > 0 && !w.libxcDone && !w.inCkpt {
				return stream.Corrupt("%v inside the libxc stream", rec.Type)
			}
		}
	case libxl.RecCheckpointState:
		if len(rec.Body) == 0 {
			return stream.Corrupt("CHECKPOINT_STATE with zero length")
		}
		if w.opts.Verify {
			return stream.Corrupt("CHECKPOINT_STATE belongs to COLO's back channel, not to a saved stream")
		}
	default:
		if !rec.Type.Optional() {
			return stream.Unsupported("unknown mandatory libxl record type %#x", uint32(rec.Type))
		}
	}
	return nil
}
