// Package gen makes synthetic domains and their migration streams: the
// same options and seed always give the same octets, on every
// architecture. Tests, the demo and the benchmark use it, and
// xstream-gen puts it on the command line.
//
// A stream is written in xl, libxl or bare libxc framing, with the
// records of Xen 4.17's saver (Xen 4.13's for a version 2 stream) in the
// order of the specification's examples, which is Xen's except that Xen
// writes HVM_CONTEXT before HVM_PARAMS:
//
//	PV:  X86_PV_INFO, X86_CPUID_POLICY, X86_MSR_POLICY, STATIC_DATA_END,
//	     X86_PV_P2M_FRAMES, PAGE_DATA..., X86_TSC_INFO, SHARED_INFO,
//	     per vCPU X86_PV_VCPU_BASIC, _EXTENDED, _XSAVE; END
//	HVM: X86_CPUID_POLICY, X86_MSR_POLICY, STATIC_DATA_END, PAGE_DATA...,
//	     X86_TSC_INFO, HVM_PARAMS, HVM_CONTEXT; END; and in libxl framing
//	     EMULATOR_XENSTORE_DATA and EMULATOR_CONTEXT (qemu-upstream)
//
// A version 2 stream has no CPU policies and no STATIC_DATA_END. With
// checkpoints, each checkpoint ends with a libxc CHECKPOINT record (and,
// in libxl framing, the emulator records and CHECKPOINT_END), and the
// next one resends the pages dirtied since, then the vCPU and platform
// records again.
//
// Memory use is bounded by one PAGE_DATA batch (about 4 MiB at the
// default 1024 pages) whatever the size of the domain. The content of a
// page is a function of the seed, its pfn and the checkpoint round only,
// so streams that differ in framing, batch size or byte order carry the
// same domain and have the same content digest (lib/digest); for an HVM
// guest that holds between libxl and xl framing, as a bare libxc stream
// lacks the device model's records.
//
// The records are plausible rather than exact: sizes, field offsets and
// values follow Xen's structures where the stream format or Xen's
// restorer checks them (the 64-bit vCPU context is 0x1430 octets, CR3
// names a pinned L4 page table, the GDT frames and start info are plain
// pages, p2m frames cover every pfn), and elsewhere they only look the
// part. Nothing here is a bootable guest.
package gen

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

const pageSize = stream.PageSize

// Formats: how the libxc stream is framed.
const (
	FormatXL    = "xl"    // xl save-file header, then libxl
	FormatLibxl = "libxl" // libxl v2 stream around the libxc stream
	FormatLibxc = "libxc" // the bare libxc stream
)

// Options describe the domain and the stream. The zero value is a valid
// 64 MiB single-vCPU PV domain with realistic memory, in an xl save file.
type Options struct {
	// Type is stream.DomainX86PV (the default) or stream.DomainX86HVM.
	Type stream.DomainType
	// Pages is the guest's memory in 4 KiB pages (default 16384,
	// 64 MiB). An HVM guest also has the 8 special pages Xen's domain
	// builder adds below 4 GiB.
	Pages int
	// VCPUs is the number of vCPUs (default 1, at most MaxVCPUs).
	VCPUs int
	// Fill is the content of ordinary pages (default FillRealistic).
	Fill Fill
	// Seed makes a different domain of the same shape.
	Seed int64
	// Format is FormatXL (the default), FormatLibxl or FormatLibxc.
	Format string
	// ByteOrder is the byte order of the stream (default little-endian).
	// x86 guest memory and opaque context blobs are little-endian
	// whatever the stream's byte order.
	ByteOrder stream.ByteOrder
	// Batch is the number of pfns per PAGE_DATA record (default and
	// maximum 1024).
	Batch int
	// Version is the libxc image version, 3 (the default) or 2.
	Version uint32
	// Checkpoints is the number of checkpoints before the final round.
	Checkpoints int
	// Hole is a range of pfns an HVM guest has no memory at, sent as
	// XTAB entries. Nil means the legacy VGA hole, pfns 0xa0-0xbf,
	// when the guest's memory reaches it; a zero Len means no hole.
	Hole *Hole
	// Name is the domain's name in the xl config (default "gen-pv" or
	// "gen-hvm").
	Name string
	// NoXenstoreData leaves out an HVM guest's EMULATOR_XENSTORE_DATA
	// record, which only the libxl and xl formats can carry.
	NoXenstoreData bool
}

// Hole is a range of pfns without memory.
type Hole struct{ Start, Len uint64 }

// Limits of Options.
const (
	MaxVCPUs = 128
	MaxPages = 1 << 28 // 1 TiB
)

// Layout constants of an HVM guest (Xen's xg_dom_x86.c and libxl).
const (
	hvmMMIOStart    = 0xf0000  // pfn of the MMIO hole below 4 GiB
	hvmSpecialStart = 0xfeff8  // X86_HVM_END_SPECIAL_REGION - 8 special pages
	hvmSpecialPages = 8        // paging, access, sharing, bufioreq, xenstore, ioreq, ident PT, console
	hvmHighStart    = 0x100000 // pfn of 4 GiB, where RAM above the hole goes
	vgaHoleStart    = 0xa0
	vgaHoleLen      = 0x20
)

// withDefaults checks o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Type == 0 {
		o.Type = stream.DomainX86PV
	}
	if o.Type != stream.DomainX86PV && o.Type != stream.DomainX86HVM {
		return o, fmt.Errorf("gen: domain type %v: want x86 PV or x86 HVM", o.Type)
	}
	if o.Pages == 0 {
		o.Pages = 16384
	}
	if o.Pages < 1 || o.Pages > MaxPages {
		return o, fmt.Errorf("gen: %d pages: want 1 to %d", o.Pages, MaxPages)
	}
	if o.VCPUs == 0 {
		o.VCPUs = 1
	}
	if o.VCPUs < 1 || o.VCPUs > MaxVCPUs {
		return o, fmt.Errorf("gen: %d vCPUs: want 1 to %d", o.VCPUs, MaxVCPUs)
	}
	if o.Fill == "" {
		o.Fill = FillRealistic
	}
	if o.Format == "" {
		o.Format = FormatXL
	}
	switch o.Format {
	case FormatXL, FormatLibxl, FormatLibxc:
	default:
		return o, fmt.Errorf("gen: unknown format %q (want xl, libxl or libxc)", o.Format)
	}
	if o.ByteOrder == nil {
		o.ByteOrder = binary.LittleEndian
	}
	if o.Batch == 0 {
		o.Batch = stream.MaxPageBatch
	}
	if o.Batch < 1 || o.Batch > stream.MaxPageBatch {
		return o, fmt.Errorf("gen: batch of %d pages: want 1 to %d", o.Batch, stream.MaxPageBatch)
	}
	if o.Version == 0 {
		o.Version = stream.Version3
	}
	if o.Version != stream.Version2 && o.Version != stream.Version3 {
		return o, fmt.Errorf("gen: image version %d: want 2 or 3", o.Version)
	}
	if o.Checkpoints < 0 {
		return o, fmt.Errorf("gen: %d checkpoints", o.Checkpoints)
	}
	if o.Hole != nil {
		if o.Type != stream.DomainX86HVM && o.Hole.Len != 0 {
			return o, fmt.Errorf("gen: a hole is for HVM guests")
		}
		if o.Hole.Len != 0 && (o.Hole.Start+o.Hole.Len > hvmMMIOStart || o.Hole.Start+o.Hole.Len < o.Hole.Start) {
			return o, fmt.Errorf("gen: hole %#x+%#x reaches the MMIO hole at pfn %#x", o.Hole.Start, o.Hole.Len, hvmMMIOStart)
		}
	}
	if o.Name == "" {
		o.Name = "gen-pv"
		if o.Type == stream.DomainX86HVM {
			o.Name = "gen-hvm"
		}
	}
	return o, nil
}

// Domain is a synthetic domain: its memory layout, page contents and
// records.
type Domain struct {
	opts Options
	fill *filler
	pv   pvLayout
	hvm  []segment // HVM: the pfns in stream order
}

// New checks opts and returns the domain they describe.
func New(opts Options) (*Domain, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	f, err := newFiller(o.Fill, o.Seed)
	if err != nil {
		return nil, err
	}
	d := &Domain{opts: o, fill: f}
	if o.Type == stream.DomainX86PV {
		d.pv, err = newPVLayout(uint64(o.Pages), o.VCPUs)
		if err != nil {
			return nil, err
		}
	} else {
		d.hvm = hvmSegments(uint64(o.Pages), o.Hole)
	}
	return d, nil
}

// Options returns the options with their defaults filled in.
func (d *Domain) Options() Options { return d.opts }

// Write writes the stream described by opts to w.
func Write(w io.Writer, opts Options) error {
	d, err := New(opts)
	if err != nil {
		return err
	}
	return d.Write(w)
}

// Headers returns the libxc image and domain headers.
func (d *Domain) Headers() (stream.ImageHeader, stream.DomainHeader) {
	ih := stream.NewImageHeader(d.opts.ByteOrder)
	ih.Version = d.opts.Version
	dh := stream.DomainHeader{Type: d.opts.Type, PageShift: stream.PageShift, XenMajor: 4, XenMinor: 17}
	if d.opts.Version == stream.Version2 {
		dh.XenMinor = 13 // the last release to write version 2
	}
	return ih, dh
}

// Write writes the domain's stream to w, buffered; it flushes before
// returning.
func (d *Domain) Write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if err := d.write(bw); err != nil {
		return err
	}
	return bw.Flush()
}

func (d *Domain) write(bw *bufio.Writer) error {
	o := d.opts
	var lx *libxl.Writer
	if o.Format == FormatXL {
		h := d.XLHeader()
		b, err := h.AppendBinary(nil)
		if err != nil {
			return err
		}
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	if o.Format == FormatXL || o.Format == FormatLibxl {
		var h libxl.Header
		if o.ByteOrder == binary.BigEndian {
			h.Options |= libxl.OptionBigEndian
		}
		var err error
		if lx, err = libxl.NewWriter(bw, h); err != nil {
			return err
		}
		if err := lx.WriteRecord(libxl.RecLibxcContext); err != nil {
			return err
		}
	}

	sw := stream.NewWriter(bw)
	if err := sw.WriteHeaders(d.Headers()); err != nil {
		return err
	}
	for _, b := range d.StaticRecords() {
		if err := sw.Write(b); err != nil {
			return err
		}
	}
	if o.Version >= stream.Version3 {
		if err := sw.WriteRecord(stream.RecStaticDataEnd); err != nil {
			return err
		}
	}
	if p2m := d.P2MFrames(); p2m != nil {
		if err := sw.Write(p2m); err != nil {
			return err
		}
	}
	pw := newPageWriter(sw, o.Batch)
	for round := 0; round <= o.Checkpoints; round++ {
		if err := pw.writeRound(d, round); err != nil {
			return err
		}
		for _, b := range d.StateRecords(round) {
			if err := sw.Write(b); err != nil {
				return err
			}
		}
		if round == o.Checkpoints {
			break
		}
		if err := sw.WriteRecord(stream.RecCheckpoint); err != nil {
			return err
		}
		if lx != nil {
			if err := d.writeEmulator(lx, round); err != nil {
				return err
			}
			if err := lx.WriteRecord(libxl.RecCheckpointEnd); err != nil {
				return err
			}
		}
	}
	if err := sw.WriteRecord(stream.RecEnd); err != nil {
		return err
	}
	if lx != nil {
		if err := d.writeEmulator(lx, o.Checkpoints); err != nil {
			return err
		}
		return lx.WriteRecord(libxl.RecEnd)
	}
	return nil
}

// writeEmulator writes the device model's records of an HVM guest.
func (d *Domain) writeEmulator(lx *libxl.Writer, round int) error {
	if d.opts.Type != stream.DomainX86HVM {
		return nil
	}
	xs, ctx := d.Emulator(round)
	if !d.opts.NoXenstoreData {
		if err := lx.WriteEmulator(libxl.RecEmulatorXenstoreData, libxl.EmulatorQemuUpstream, 0, xs); err != nil {
			return err
		}
	}
	return lx.WriteEmulator(libxl.RecEmulatorContext, libxl.EmulatorQemuUpstream, 0, ctx)
}

// XLHeader returns the xl save-file header: JSON config, libxl stream.
func (d *Domain) XLHeader() *xl.Header {
	return &xl.Header{
		Order:          d.opts.ByteOrder,
		MandatoryFlags: xl.FlagJSON | xl.FlagStreamV2,
		Config:         d.Config(),
	}
}

// pageWriter writes PAGE_DATA records, one batch at a time, from one
// reused buffer.
type pageWriter struct {
	sw    *stream.Writer
	order stream.ByteOrder
	batch int
	hdr   [8]byte
	pfns  []byte // pfn words
	data  []byte // page contents
	n     int    // pfns in the batch
}

func newPageWriter(sw *stream.Writer, batch int) *pageWriter {
	return &pageWriter{
		sw:    sw,
		order: sw.ByteOrder(),
		batch: batch,
		pfns:  make([]byte, 0, 8*batch),
		data:  make([]byte, 0, pageSize*batch),
	}
}

func (pw *pageWriter) writeRound(d *Domain, round int) error {
	for pfn, t := range d.PFNs(round) {
		pw.pfns = pw.order.AppendUint64(pw.pfns, stream.PFNWord(pfn, t))
		if t.HasData() {
			n := len(pw.data)
			pw.data = pw.data[:n+pageSize]
			d.Page(pw.data[n:], pfn, round)
		}
		if pw.n++; pw.n == pw.batch {
			if err := pw.flush(); err != nil {
				return err
			}
		}
	}
	return pw.flush()
}

func (pw *pageWriter) flush() error {
	if pw.n == 0 {
		return nil
	}
	pw.order.PutUint32(pw.hdr[0:], uint32(pw.n))
	pw.order.PutUint32(pw.hdr[4:], 0)
	err := pw.sw.WriteRecord(stream.RecPageData, pw.hdr[:], pw.pfns, pw.data)
	pw.pfns, pw.data, pw.n = pw.pfns[:0], pw.data[:0], 0
	return err
}
