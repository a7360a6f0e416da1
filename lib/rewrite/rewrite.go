// Package rewrite writes the items of a walked stream back out through the
// layer writers (xl header, libxl, libxc). Rewriting a valid stream as it
// is gives the same octets; with Upgrade a version 2 libxc stream becomes
// version 3 (its implied STATIC_DATA_END is written out).
package rewrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/xstream/xstream/lib/integrity"
	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

// Options tune a Writer.
type Options struct {
	// Upgrade writes a version 2 libxc stream as version 3.
	Upgrade bool
	// Typed decodes every libxc record body and encodes it again rather
	// than copying it: a check that the typed model is lossless.
	Typed bool
	// Checksum writes new CHECKSUM records (lib/integrity) every
	// ChecksumInterval octets (integrity.DefaultInterval if 0), in place
	// of any the input has. Close must then be called at the end.
	Checksum         bool
	ChecksumInterval int64
}

// Writer writes items to w. Give it a buffered writer.
type Writer struct {
	w    io.Writer
	opts Options
	lx   *libxl.Writer
	lc   *stream.Writer
	buf  []byte
	ck   *integrity.Writer
	// dropSums leaves the input's CHECKSUM records out: they would not
	// match octets that change.
	dropSums bool
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer, opts *Options) *Writer {
	wr := &Writer{w: w}
	if opts != nil {
		wr.opts = *opts
	}
	if wr.opts.Checksum {
		wr.ck = integrity.NewWriter(w, wr.opts.ChecksumInterval)
		wr.w = wr.ck
		wr.dropSums = true
	}
	return wr
}

// Close writes what the CHECKSUM records need after the last item.
func (w *Writer) Close() error {
	if w.ck != nil {
		return w.ck.Close()
	}
	return nil
}

// Write writes one item.
func (w *Writer) Write(it *sniff.Item) error {
	switch it.Kind {
	case sniff.XLHeader:
		b, err := it.XL.AppendBinary(w.buf[:0])
		if err != nil {
			return err
		}
		_, err = w.w.Write(b)
		return err
	case sniff.LibxlHeader:
		lx, err := libxl.NewWriter(w.w, it.LibxlHdr)
		w.lx = lx
		return err
	case sniff.LibxlRecord:
		if w.lx == nil {
			return errors.New("rewrite: libxl record without a libxl header")
		}
		return w.lx.WriteRecord(it.Libxl.Type, it.Libxl.Body)
	case sniff.LibxcHeaders:
		ih := it.Image
		if w.opts.Upgrade {
			ih.Version = stream.Version3
		}
		if ih.Version != it.Image.Version {
			w.dropSums = true
		}
		w.lc = stream.NewWriter(w.w)
		if err := w.lc.WriteHeaders(ih, it.Domain); err != nil || w.ck == nil {
			return err
		}
		w.ck.SetOrder(ih.ByteOrder())
		return w.ck.Mark()
	case sniff.LibxcRecord:
		if w.lc == nil {
			return errors.New("rewrite: libxc record without libxc headers")
		}
		rec := it.Libxc
		if rec.Type == integrity.RecChecksum && w.dropSums {
			return nil
		}
		if w.ck != nil {
			var err error
			switch {
			case rec.Type == stream.RecEnd:
				err = w.ck.BeginTail()
			case w.ck.Due():
				err = w.ck.Mark()
			}
			if err != nil {
				return err
			}
		}
		if !w.opts.Typed || rec.Implied {
			return w.lc.Copy(rec)
		}
		b, err := stream.Decode(rec.Type, rec.Body, it.Order)
		if err != nil {
			return rec.Error(err)
		}
		w.buf = b.AppendBody(w.buf[:0], it.Order)
		return w.lc.WriteRecord(rec.Type, w.buf)
	case sniff.QemuTail:
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(it.Qemu)))
		for _, p := range [][]byte{[]byte(sniff.QemuSignature), n[:], it.Qemu} {
			if _, err := w.w.Write(p); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("rewrite: unknown item kind %d", it.Kind)
}

// Copy walks r and writes every item to w, returning the octets read.
func Copy(w io.Writer, r io.Reader, walk *sniff.Options, opts *Options) (int64, error) {
	wk, err := sniff.NewWalker(r, walk)
	if err != nil {
		return 0, err
	}
	rw := NewWriter(w, opts)
	for {
		it, err := wk.Next()
		if err == io.EOF {
			return wk.Offset(), rw.Close()
		}
		if err != nil {
			return wk.Offset(), err
		}
		if err := rw.Write(it); err != nil {
			return wk.Offset(), err
		}
	}
}
