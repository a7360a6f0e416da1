package xen

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/xstream/xstream/lib/integrity"
	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

// xlWriter writes the items of a walked stream as `xl restore` reads
// them. Whatever the input's framing, the output is
//
//	xl header (STREAMV2, the config) ─ libxl v2 ─ LIBXC_CONTEXT ─ libxc ─ libxl records ─ END
//
// and every layer little-endian, as Xen's readers accept no other order.
// The records are the input's, in the input's order, with these changes:
//
//   - a bare libxc stream gets the libxl layer around it, and a legacy
//     qemu tail after it becomes an EMULATOR_CONTEXT record;
//   - a checkpointed stream is flattened: libxc CHECKPOINT and libxl
//     CHECKPOINT_END are dropped (xl restore reads a plain stream, and
//     later pages and records replace earlier ones in Xen's restorer as
//     they do in the stream's meaning), and the emulator records sent
//     inside a checkpoint follow the libxc stream's END, the last of each
//     kind only;
//   - optional libxl records are dropped: libxl refuses every record type
//     it does not know (libxc skips optional records, so those stay);
//   - our CHECKSUM records are dropped: they were checked on the way in,
//     and they cover the input's octets, not the re-framed stream's.
type xlWriter struct {
	w   *bufio.Writer
	cfg Config
	buf []byte

	headerDone bool
	xlOptional uint32 // the input xl header's optional flags and data
	xlExtra    []byte
	lx         *libxl.Writer
	framed     bool // the input had no libxl layer: we frame it
	lc         *stream.Writer
	hvm        bool // the libxc domain header says x86 HVM
	inCkpt     bool
	deferred   []emulatorRecord
	end        bool // the input's libxl END came: Close writes it
}

type emulatorRecord struct {
	t         libxl.RecordType
	id, index uint32
	data      []byte
}

var le = binary.LittleEndian

func newXLWriter(w *bufio.Writer, cfg Config) *xlWriter {
	return &xlWriter{w: w, cfg: cfg}
}

// header writes the xl header, once.
func (x *xlWriter) header() error {
	if x.headerDone {
		return nil
	}
	x.headerDone = true
	if len(x.cfg.Data) == 0 {
		return ErrNeedConfig
	}
	h := xl.Header{Order: le, MandatoryFlags: xl.FlagStreamV2, OptionalFlags: x.xlOptional,
		Config: x.cfg.Data, Extra: x.xlExtra}
	if x.cfg.JSON {
		h.MandatoryFlags |= xl.FlagJSON
	}
	b, err := h.AppendBinary(x.buf[:0])
	if err != nil {
		return err
	}
	_, err = x.w.Write(b)
	return err
}

// Write writes one item.
func (x *xlWriter) Write(it *sniff.Item) error {
	switch it.Kind {
	case sniff.XLHeader:
		x.xlOptional, x.xlExtra = it.XL.OptionalFlags, it.XL.Extra
		return x.header()

	case sniff.LibxlHeader:
		if err := x.header(); err != nil {
			return err
		}
		lx, err := libxl.NewWriter(x.w, libxl.Header{Options: it.LibxlHdr.Options &^ libxl.OptionBigEndian})
		x.lx = lx
		return err

	case sniff.LibxcHeaders:
		if err := x.header(); err != nil {
			return err
		}
		if x.lx == nil {
			lx, err := libxl.NewWriter(x.w, libxl.Header{})
			if err != nil {
				return err
			}
			x.lx, x.framed = lx, true
			if err := lx.WriteRecord(libxl.RecLibxcContext); err != nil {
				return err
			}
		}
		if x.lc != nil {
			return errors.New("xen: a second libxc stream")
		}
		ih := it.Image
		ih.Options &^= stream.OptionBigEndian
		x.lc = stream.NewWriter(x.w)
		x.hvm = it.Domain.Type == stream.DomainX86HVM
		return x.lc.WriteHeaders(ih, it.Domain)

	case sniff.LibxcRecord:
		rec := it.Libxc
		switch {
		case rec.Type == stream.RecCheckpoint:
			x.inCkpt = true
			return nil
		case rec.Type == integrity.RecChecksum:
			// Checked on the way in; they cover the input's octets,
			// which the re-framing changes, and Xen skips them.
			return nil
		case it.Order == le || rec.Implied:
			if err := x.lc.Copy(rec); err != nil {
				return err
			}
		default:
			b, err := stream.Decode(rec.Type, rec.Body, it.Order)
			if err != nil {
				return rec.Error(err)
			}
			x.buf = b.AppendBody(x.buf[:0], le)
			if err := x.lc.WriteRecord(rec.Type, x.buf); err != nil {
				return err
			}
		}
		if rec.Type == stream.RecEnd {
			x.inCkpt = false
			for _, d := range x.deferred {
				if err := x.lx.WriteEmulator(d.t, d.id, d.index, d.data); err != nil {
					return err
				}
			}
			x.deferred = nil
		}
		return nil

	case sniff.LibxlRecord:
		rec := it.Libxl
		switch rec.Type {
		case libxl.RecLibxcContext:
			return x.lx.WriteRecord(rec.Type)
		case libxl.RecEnd:
			// Held back until Close: xl, given END, finishes the
			// domain and may start it.
			x.end = true
			return nil
		case libxl.RecCheckpointEnd:
			x.inCkpt = false
			return nil
		case libxl.RecEmulatorXenstoreData, libxl.RecEmulatorContext:
			id, index, data, err := rec.Emulator(it.Order)
			if err != nil {
				return rec.Error(err)
			}
			if x.inCkpt {
				x.keep(emulatorRecord{rec.Type, id, index, append([]byte(nil), data...)})
				return nil
			}
			return x.lx.WriteEmulator(rec.Type, id, index, data)
		}
		return nil // optional records, which libxl would refuse

	case sniff.QemuTail:
		// Only an HVM guest has a device model to take it; libxl
		// refuses emulator records for PV and PVH guests.
		if !x.hvm || x.cfg.Type() == "pv" || x.cfg.Type() == "pvh" {
			return nil
		}
		return x.lx.WriteEmulator(libxl.RecEmulatorContext, x.cfg.Emulator(), 0, it.Qemu)
	}
	return fmt.Errorf("xen: unknown item kind %d", it.Kind)
}

// keep defers an emulator record, replacing one of the same kind.
func (x *xlWriter) keep(r emulatorRecord) {
	for i, d := range x.deferred {
		if d.t == r.t && d.id == r.id && d.index == r.index {
			x.deferred[i] = r
			return
		}
	}
	x.deferred = append(x.deferred, r)
}

// Close ends the stream with the libxl END record: the input's, held
// back, or ours around a bare libxc stream. Call it only once the whole
// input has checked out, to its end.
func (x *xlWriter) Close() error {
	if x.framed || x.end {
		if err := x.lx.WriteRecord(libxl.RecEnd); err != nil {
			return err
		}
	}
	return x.w.Flush()
}
