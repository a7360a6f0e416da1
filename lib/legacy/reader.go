package legacy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

// le is the byte order of everything in a legacy stream: it was written
// by x86 toolstacks in their native order, whatever host reads it now.
var le = binary.LittleEndian

// ConverterVersion is the xen_minor the domain header carries in an
// upgraded stream (the libxc spec: a converted stream has xen_major 0 and
// the converter's version as xen_minor). It is the version of Xen's
// converter, whose output ours matches octet for octet.
const ConverterVersion = 1

// Options tune a Reader. The zero value detects everything.
type Options struct {
	// Width is the saving toolstack's word size, 32 or 64; 0 detects it.
	Width int
	// Guest is the guest type; GuestAuto detects it.
	Guest Guest
	// XL says an xl save-file header is in front (Xen's converter's -x).
	// Without it the header is still recognised by its magic; with it, a
	// stream without one is refused.
	XL bool
	// Toolstack decodes libxl's toolstack chunk (qemu's physmap) into the
	// key/value pairs of a libxl EMULATOR_XENSTORE_DATA record, which
	// EmulatorXenstore returns; Xen's converter does this for libxl
	// output. Without it the chunk is skipped unread.
	Toolstack bool
	// ToolstackLenient, with Toolstack, skips toolstack data that is not
	// libxl's instead of failing: a stream saved by another toolstack
	// (xend) carries its own, which no libxl restorer can use either.
	ToolstackLenient bool
	// StreamPages makes Next return PAGE_DATA records without their
	// pages: the record's Body ends with the pfn words, and the DataLen
	// octets of page data that complete it are read from the Reader
	// itself (Read, or WriteTo, which can move them without copying),
	// before the next call to Next, which skips what is left. Memory then
	// holds no page data at all.
	StreamPages bool
}

// Layout is what Detect found (or was told) about a stream.
type Layout struct {
	Width int   // the saving toolstack's word size: 32 or 64
	Guest Guest // GuestPV or GuestHVM
	// WidthGiven and GuestGiven say the value came from Options rather
	// than from the stream.
	WidthGiven, GuestGiven bool
}

func (l Layout) String() string {
	return fmt.Sprintf("%d-bit toolstack, %v guest", l.Width, l.Guest)
}

type state int

const (
	stDetect     state = iota // nothing read yet
	stP2MSize                 // at the p2m size
	stExtInfo                 // PV: at the extended info
	stStaticEnd               // about to emit STATIC_DATA_END
	stP2MFrames               // PV: at the p2m frame list
	stChunks                  // in the body
	stPVTail                  // PV: at the unmapped pfn list
	stVCPU                    // PV: at a vCPU's contexts
	stSharedInfo              // PV: at the shared info page
	stHVMTail                 // HVM: at the magic pfns
	stHVMContext              // HVM: at the HVM context
	stEndRecord               // about to emit END
	stAfterEnd                // END emitted; Tail and End follow
	stDone                    // End called
)

// Reader reads a legacy stream and returns it as the records of a libxc
// stream version 3, as Xen's converter writes them.
//
// Detect (called by the first Headers or Next if not before) reads the
// xl header if there is one and settles the layout; Headers returns the
// image and domain headers of the upgraded stream; Next returns its
// records up to END. After END, Tail returns the qemu device-model tail
// of an HVM stream, if there is one, and End checks that nothing follows.
type Reader struct {
	src    *stream.Source
	opts   Options
	err    error // sticky
	state  state
	layout Layout
	xlHdr  *xl.Header
	probe  bool // a detection probe: skip page data, stop at the window

	ulong   int    // octets per unsigned long: 4 or 8
	p2mSize uint64 // pfns
	start   int64  // offset of the legacy stream (after any xl header)

	// PV, from the extended info and the body.
	guestWidth int // octets: 4 or 8
	levels     int
	basicLen   int
	extended   bool
	xsaveLen   int
	vcpus      []uint32 // online vCPUs, from VCPU_INFO
	vcpuInfo   bool
	vcpuNext   int // index into vcpus in the tail
	vcpuPart   int // 0 basic, 1 extended, 2 xsave

	chunk     int      // chunks read
	hvmParams []uint64 // index, value pairs from the body's chunks
	xenstore  []byte   // from the toolstack chunk, with Options.Toolstack

	index int // records returned
	rec   stream.Record
	buf   []byte   // body of small records
	page  []byte   // body of PAGE_DATA records
	raw   []byte   // pfn entries as read
	words []uint64 // pfn words, for the duplicate check

	tail *Tail

	// StreamPages: the page data of the last PAGE_DATA record.
	dataLeft, dataTotal int64
	dataPart            part
}

// NewReader returns a Reader of the legacy stream in r. If r is a
// *stream.Source (from sniff.Detect), the Reader reads through it.
func NewReader(r io.Reader, opts *Options) *Reader {
	rd := &Reader{src: stream.NewSource(r, 0)}
	if opts != nil {
		rd.opts = *opts
	}
	return rd
}

// Offset returns the offset of the next octet the Reader will consume.
func (r *Reader) Offset() int64 { return r.src.Offset() }

// XL returns the xl save-file header in front of the stream, or nil.
// It is valid after Detect.
func (r *Reader) XL() *xl.Header { return r.xlHdr }

// GuestWidth returns a PV guest's word size in octets (4 or 8) once the
// extended info has been read; 0 before that and for HVM guests.
func (r *Reader) GuestWidth() int { return r.guestWidth }

// P2MSize returns the p2m size (the number of pfns), valid after Headers.
func (r *Reader) P2MSize() uint64 { return r.p2mSize }

// EmulatorXenstore returns the EMULATOR_XENSTORE_DATA content decoded from
// libxl's toolstack chunk (with Options.Toolstack): NUL-terminated keys
// and values, or nil. It is complete after END.
func (r *Reader) EmulatorXenstore() []byte { return r.xenstore }

// Headers returns the image and domain headers of the upgraded stream,
// reading as far as the p2m size.
func (r *Reader) Headers() (stream.ImageHeader, stream.DomainHeader, error) {
	ih := stream.NewImageHeader(binary.LittleEndian)
	dh := stream.DomainHeader{Type: stream.DomainX86PV, PageShift: stream.PageShift, XenMinor: ConverterVersion}
	if err := r.ready(); err != nil {
		return ih, dh, err
	}
	if r.layout.Guest == GuestHVM {
		dh.Type = stream.DomainX86HVM
	}
	return ih, dh, nil
}

// ready runs detection and reads the p2m size, once.
func (r *Reader) ready() error {
	if r.err != nil {
		return r.err
	}
	if r.state == stDetect {
		if _, err := r.Detect(); err != nil {
			return err
		}
	}
	if r.state == stP2MSize {
		if err := r.readP2MSize(); err != nil {
			r.err = err
			return err
		}
	}
	return nil
}

// Next returns the next record of the upgraded stream; io.EOF after END.
// The record's Offset is that of the legacy part it comes from, its Index
// its ordinal in the upgraded stream. Its Body aliases the Reader's
// buffers until the next call. Errors are sticky.
func (r *Reader) Next() (*stream.Record, error) {
	if err := r.ready(); err != nil {
		return nil, err
	}
	if r.dataLeft > 0 {
		if err := r.skip(r.dataLeft); err != nil {
			var tr truncated
			if errors.As(err, &tr) {
				r.dataLeft -= tr.have
			}
			return nil, r.dataErr(err)
		}
		r.dataLeft = 0
	}
	for {
		if r.state >= stAfterEnd {
			return nil, io.EOF
		}
		rec, err := r.step()
		if err != nil {
			r.err = err
			return nil, err
		}
		if rec != nil {
			rec.Index = r.index
			r.index++
			return rec, nil
		}
	}
}

// record sets up the Reader's record for returning.
func (r *Reader) record(t stream.RecordType, off int64, body []byte) *stream.Record {
	r.rec = stream.Record{Type: t, Body: body, Offset: off}
	return &r.rec
}

// small returns the Reader's small-record buffer with length n.
func (r *Reader) small(n int) []byte {
	if cap(r.buf) < n {
		r.buf = make([]byte, n, max(n, 8<<10))
	}
	return r.buf[:n]
}

// readFull reads len(b) octets; a short read is a truncation.
func (r *Reader) readFull(b []byte) error {
	n, err := io.ReadFull(r.src, b)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return truncated{have: int64(n), want: int64(len(b))}
	}
	return err
}

// skip discards n octets; a short stream is a truncation.
func (r *Reader) skip(n int64) error {
	for done := int64(0); done < n; {
		step := int(min(n-done, 1<<30))
		d, err := r.src.Discard(step)
		done += int64(d)
		if err != nil {
			if err == io.EOF {
				return truncated{have: done, want: n}
			}
			return err
		}
	}
	return nil
}

// ulongAt decodes the toolstack's unsigned long at b.
func (r *Reader) ulongAt(b []byte) uint64 {
	if r.ulong == 4 {
		return uint64(le.Uint32(b))
	}
	return le.Uint64(b)
}

func (r *Reader) readP2MSize() error {
	p := part{off: r.src.Offset(), index: -1, name: "p2m size"}
	b := r.small(r.ulong)
	if err := r.readFull(b); err != nil {
		return p.errorf(err)
	}
	n := r.ulongAt(b)
	switch {
	case n == 0:
		return p.errorf(stream.Corrupt("p2m size is 0"))
	case n > MaxP2MSize:
		err := stream.OverLimit("p2m size %#x exceeds the limit of %#x pfns", n, MaxP2MSize)
		if r.ulong == 8 && n>>32 != 0 && n&0xffffffff != 0 && n&0xffffffff <= MaxP2MSize {
			err = withHint(err, "p2m size looks like a 32-bit stream read as 64-bit; try -w 32")
		}
		return p.errorf(err)
	}
	r.p2mSize = n
	if r.layout.Guest == GuestPV {
		r.state = stExtInfo
	} else {
		r.state = stStaticEnd
	}
	return nil
}

// step reads one part of the stream and returns the record it yields, if
// any.
func (r *Reader) step() (*stream.Record, error) {
	switch r.state {
	case stExtInfo:
		return r.extendedInfo()
	case stStaticEnd:
		off := r.src.Offset()
		if r.layout.Guest == GuestPV {
			r.state = stP2MFrames
		} else {
			r.state = stChunks
		}
		return r.record(stream.RecStaticDataEnd, off, nil), nil
	case stP2MFrames:
		return r.p2mFrames()
	case stChunks:
		return r.nextChunk()
	case stPVTail:
		return nil, r.unmappedPFNs()
	case stVCPU:
		return r.vcpuContext()
	case stSharedInfo:
		p := part{off: r.src.Offset(), index: -1, name: "shared info"}
		b := r.small(sharedInfoSize)
		if err := r.readFull(b); err != nil {
			return nil, p.errorf(err)
		}
		r.state = stEndRecord
		return r.record(stream.RecSharedInfo, p.off, b), nil
	case stHVMTail:
		return r.magicPFNs()
	case stHVMContext:
		return r.hvmContext()
	case stEndRecord:
		r.state = stAfterEnd
		return r.record(stream.RecEnd, r.src.Offset(), nil), nil
	}
	return nil, fmt.Errorf("legacy: internal error: step in state %d", r.state)
}

// extendedInfo reads the PV extended-info blocks and returns X86_PV_INFO.
//
//	unsigned long  marker (all ones)
//	uint32         total octets of the blocks that follow
//	blocks:        char id[4], uint32 size, size octets
func (r *Reader) extendedInfo() (*stream.Record, error) {
	p := part{off: r.src.Offset(), index: -1, name: "extended info"}
	b := r.small(r.ulong + 4)
	if err := r.readFull(b); err != nil {
		return nil, p.errorf(err)
	}
	if m := r.ulongAt(b); m != 1<<(8*r.ulong)-1 {
		return nil, p.errorf(stream.Corrupt("extended-info marker is %#x, want all ones (a PV stream without extended info is not supported)", m))
	}
	total := int64(le.Uint32(b[r.ulong:]))
	if total > MaxExtendedInfo {
		return nil, p.errorf(stream.OverLimit("extended info of %d octets exceeds the limit of %d", total, MaxExtendedInfo))
	}
	for done := int64(0); done < total; {
		bp := part{off: r.src.Offset(), index: -1, name: "extended-info block"}
		if total-done < 8 {
			return nil, bp.errorf(stream.Corrupt("%d octets left of the extended info, too few for a block header", total-done))
		}
		h := r.small(8)
		if err := r.readFull(h); err != nil {
			return nil, bp.errorf(err)
		}
		id, size := string(h[:4]), int64(le.Uint32(h[4:]))
		done += 8
		known := id == "vcpu" || id == "extv" || id == "xcnt"
		if known {
			bp.name = fmt.Sprintf("extended-info block %q", id)
		}
		if size > total-done {
			return nil, bp.errorf(stream.Corrupt("block % x of %d octets overruns the extended info (%d octets left)", h[:4], size, total-done))
		}
		done += size
		switch id {
		case "vcpu":
			if r.basicLen != 0 {
				return nil, bp.errorf(stream.Corrupt("second \"vcpu\" block"))
			}
			switch size {
			case vcpuContext32:
				r.guestWidth, r.levels = 4, 3
			case vcpuContext64:
				r.guestWidth, r.levels = 8, 4
			default:
				return nil, bp.errorf(stream.Corrupt("vCPU context of %#x octets: a 32-bit guest's is %#x, a 64-bit guest's %#x", size, vcpuContext32, vcpuContext64))
			}
			r.basicLen = int(size)
			if err := r.skip(size); err != nil {
				return nil, bp.errorf(err)
			}
		case "extv":
			r.extended = true
			if err := r.skip(size); err != nil {
				return nil, bp.errorf(err)
			}
		case "xcnt":
			if size < 4 {
				return nil, bp.errorf(stream.Corrupt("block of %d octets, too short for the XSAVE size", size))
			}
			x := r.small(4)
			if err := r.readFull(x); err != nil {
				return nil, bp.errorf(err)
			}
			n := int64(le.Uint32(x))
			if n != 0 && (n < xsaveHeader || n > MaxXSave+xsaveHeader) {
				return nil, bp.errorf(stream.Corrupt("XSAVE size %d, want 0 or %d to %d", n, xsaveHeader, MaxXSave+xsaveHeader))
			}
			r.xsaveLen = int(n)
			if err := r.skip(size - 4); err != nil {
				return nil, bp.errorf(err)
			}
		default:
			return nil, bp.errorf(stream.Corrupt("unknown extended-info block % x", h[:4]))
		}
	}
	if r.basicLen == 0 {
		return nil, p.errorf(stream.Corrupt("no \"vcpu\" block: the guest's width is unknown"))
	}
	r.state = stStaticEnd
	body := (&stream.X86PVInfo{GuestWidth: uint8(r.guestWidth), PTLevels: uint8(r.levels)}).AppendBody(r.small(0), le)
	return r.record(stream.RecX86PVInfo, p.off, body), nil
}

// p2mFrames reads the PV p2m frame list: one unsigned long per frame of
// the guest's p2m, which holds 4096/guest-width entries.
func (r *Reader) p2mFrames() (*stream.Record, error) {
	p := part{off: r.src.Offset(), index: -1, name: "p2m frame list"}
	fpp := uint64(stream.PageSize / r.guestWidth)
	frames := int((r.p2mSize-1)/fpp + 1) // ≤ 2^19 under MaxP2MSize
	body := (&stream.X86PVP2MFrames{StartPFN: 0, EndPFN: uint32(r.p2mSize - 1)}).AppendBody(nil, le)
	if cap(r.page) < 8+8*frames {
		r.page = make([]byte, 0, 8+8*frames)
	}
	body = append(r.page[:0], body...)
	var in [4096]byte
	for left := frames; left > 0; {
		n := min(left, len(in)/r.ulong)
		b := in[:n*r.ulong]
		if err := r.readFull(b); err != nil {
			return nil, p.errorf(err)
		}
		for i := 0; i < len(b); i += r.ulong {
			body = le.AppendUint64(body, r.ulongAt(b[i:]))
		}
		left -= n
	}
	r.state = stChunks
	return r.record(stream.RecX86PVP2MFrames, p.off, body), nil
}

// nextChunk reads chunks of the body until one yields a record.
func (r *Reader) nextChunk() (*stream.Record, error) {
	for {
		p := part{off: r.src.Offset(), index: r.chunk, name: "chunk"}
		var mb [4]byte
		if err := r.readFull(mb[:]); err != nil {
			return nil, p.errorf(err)
		}
		r.chunk++
		m := int32(le.Uint32(mb[:]))
		p.name = chunkName(m)
		rec, err := r.chunkBody(m, p)
		if err != nil {
			var fe *stream.FormatError
			if errors.As(err, &fe) {
				return nil, err
			}
			return nil, p.errorf(err)
		}
		if rec != nil || r.state != stChunks {
			return rec, nil
		}
	}
}

// chunkBody reads the rest of a chunk whose marker was m.
func (r *Reader) chunkBody(m int32, p part) (*stream.Record, error) {
	pv := r.layout.Guest == GuestPV
	switch {
	case m > 0:
		return r.pageBatch(int(m), p)
	case m == chunkEnd:
		if pv {
			r.state = stPVTail
			return nil, nil
		}
		r.state = stHVMTail
		if len(r.hvmParams) == 0 {
			return nil, nil
		}
		return r.record(stream.RecHVMParams, p.off, r.appendParams(r.small(0), r.hvmParams)), nil
	case m == chunkEnableVerifyMode, m == chunkLastCheckpoint:
		return nil, nil // markers only
	case m == chunkVCPUInfo:
		return nil, r.vcpuInfoChunk()
	case m == chunkTSCInfo:
		b := r.small(tscChunkSize)
		if err := r.readFull(b); err != nil {
			return nil, err
		}
		tsc := stream.X86TSCInfo{Mode: le.Uint32(b), Nsec: le.Uint64(b[4:]), KHz: le.Uint32(b[12:]), Incarnation: le.Uint32(b[16:])}
		return r.record(stream.RecX86TSCInfo, p.off, tsc.AppendBody(b[:0], le)), nil
	case m == chunkToolstack:
		return nil, r.toolstackChunk()
	case m == chunkTmem, m == chunkTmemExtra, m == chunkCompressedData, m == chunkEnableCompression:
		return nil, stream.Unsupported("%s chunk: tmem and Remus compression are not supported (nor by Xen's converter)", chunkName(m))
	}
	if idx, ok := hvmParamChunks[m]; ok {
		if pv {
			return nil, stream.Corrupt("HVM parameter chunk in a PV stream")
		}
		b := r.small(hvmParamChunkSize)
		if err := r.readFull(b); err != nil {
			return nil, err
		}
		r.hvmParams = append(r.hvmParams, idx, le.Uint64(b[4:]))
		return nil, nil
	}
	return nil, stream.Corrupt("unknown chunk type %d", m)
}

func (r *Reader) appendParams(b []byte, kv []uint64) []byte {
	params := stream.HVMParams{Params: make([]stream.HVMParam, 0, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		params.Params = append(params.Params, stream.HVMParam{Index: kv[i], Value: kv[i+1]})
	}
	return params.AppendBody(b, le)
}

// pageBatch reads a batch of n pages: n pfn entries (unsigned longs, the
// type in bits 28-31 and the pfn in bits 0-27), then a page of data for
// each entry whose type has data. It returns the PAGE_DATA record, or nil
// when the batch held only unmappable pfns.
func (r *Reader) pageBatch(n int, p part) (*stream.Record, error) {
	if n > MaxBatch {
		return nil, stream.OverLimit("page batch of %d pages exceeds MAX_BATCH (%d)", n, MaxBatch)
	}
	if cap(r.raw) < MaxBatch*8 {
		r.raw = make([]byte, MaxBatch*8)
		r.words = make([]uint64, 0, MaxBatch)
	}
	raw := r.raw[:n*r.ulong]
	if err := r.readFull(raw); err != nil {
		return nil, err
	}
	words := r.words[:0]
	data := 0
	for i := 0; i < n; i++ {
		x := r.ulongAt(raw[i*r.ulong:])
		if x == pfnBareXTAB {
			continue // an unmappable pfn, as the saver marked it: dropped
		}
		if x>>32 != 0 {
			return nil, stream.Corrupt("pfn entry %d is %#x: bits 32-63 are set", i, x)
		}
		t, pfn := x&pfnTypeMask, x&pfnMask
		if pt := stream.PageType(t >> 28); !pt.Valid() {
			return nil, stream.Corrupt("pfn entry %d (%#x) has the reserved page type %#x", i, x, t>>28)
		}
		if pfn >= r.p2mSize {
			return nil, stream.Corrupt("pfn entry %d (%#x): pfn %#x is beyond the p2m size %#x", i, x, pfn, r.p2mSize)
		}
		if t < pfnTypeNoData {
			data++
		}
		words = append(words, t<<32|pfn)
	}
	if len(words) == 0 {
		return nil, nil // Xen's converter would write a PAGE_DATA with count 0, which Xen's restorer refuses
	}
	hdr := 8 + 8*len(words)
	size := hdr + data*stream.PageSize
	streamed := r.probe || r.opts.StreamPages
	if streamed {
		size = hdr
	}
	if cap(r.page) < size {
		r.page = make([]byte, size)
	}
	body := r.page[:size]
	le.PutUint32(body, uint32(len(words)))
	le.PutUint32(body[4:], 0)
	for i, w := range words {
		le.PutUint64(body[8+8*i:], w)
	}
	// Xen's converter refuses a batch that names the same pfn entry twice.
	slices.Sort(words)
	for i := 1; i < len(words); i++ {
		if words[i] == words[i-1] {
			return nil, stream.Corrupt("pfn %#x appears twice in the batch", words[i]&stream.PFNMask)
		}
	}
	switch {
	case r.probe:
		if err := r.skip(int64(data) * stream.PageSize); err != nil {
			return nil, err
		}
	case streamed:
		r.dataLeft, r.dataTotal, r.dataPart = int64(data)*stream.PageSize, int64(data)*stream.PageSize, p
	default:
		if err := r.readFull(body[hdr:]); err != nil {
			return nil, err
		}
	}
	return r.record(stream.RecPageData, p.off, body), nil
}

// DataLen returns, with Options.StreamPages, how many octets of page data
// of the last PAGE_DATA record are still to be read.
func (r *Reader) DataLen() int64 { return r.dataLeft }

// Read reads the page data of the last PAGE_DATA record, with
// Options.StreamPages; io.EOF at its end.
func (r *Reader) Read(p []byte) (int, error) {
	if r.dataLeft == 0 {
		return 0, io.EOF
	}
	if r.err != nil {
		return 0, r.err
	}
	if int64(len(p)) > r.dataLeft {
		p = p[:r.dataLeft]
	}
	n, err := r.src.Read(p)
	r.dataLeft -= int64(n)
	if err == io.EOF && r.dataLeft > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		return n, r.dataErr(err)
	}
	return n, nil
}

// WriteTo writes the rest of the last PAGE_DATA record's page data to w,
// with Options.StreamPages. If w is a *stream.Output over a file and the
// input is a file, one of them a pipe, the octets move with splice(2)
// instead of passing through memory.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.src.CopyN(w, r.dataLeft)
	r.dataLeft -= n
	return n, r.dataErr(err)
}

// dataErr makes an error in the page data sticky, and places a
// truncation at its batch. Other errors (a closed output, a failing disk)
// are not the stream's fault and pass as they are.
func (r *Reader) dataErr(err error) error {
	if err == nil {
		return nil
	}
	var fe *stream.FormatError
	if errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &fe) {
		err = r.dataPart.errorf(truncated{have: r.dataTotal - r.dataLeft, want: r.dataTotal})
	}
	r.err = err
	return err
}

// vcpuInfoChunk reads the maximum vCPU id (int32) and the bitmap of online
// vCPUs (uint64 words).
func (r *Reader) vcpuInfoChunk() error {
	b := r.small(4)
	if err := r.readFull(b); err != nil {
		return err
	}
	maxID := int32(le.Uint32(b))
	if maxID < 0 || maxID > MaxVCPUID {
		return stream.Corrupt("maximum vCPU id %d, want 0 to %d", maxID, MaxVCPUID)
	}
	words := int(maxID)/64 + 1
	b = r.small(8 * words)
	if err := r.readFull(b); err != nil {
		return err
	}
	r.vcpus = r.vcpus[:0]
	for w := 0; w < words; w++ {
		bits := le.Uint64(b[8*w:])
		for i := 0; bits != 0; i++ {
			if bits&1 != 0 {
				id := uint32(64*w + i)
				if id > uint32(maxID) {
					return stream.Corrupt("vCPU %d is online but the maximum id is %d", id, maxID)
				}
				r.vcpus = append(r.vcpus, id)
			}
			bits >>= 1
		}
	}
	if len(r.vcpus) == 0 && r.layout.Guest == GuestPV {
		return stream.Corrupt("no vCPU is online")
	}
	r.vcpuInfo = true
	return nil
}

// toolstackChunk reads a toolstack chunk: uint32 size and the data.
func (r *Reader) toolstackChunk() error {
	b := r.small(4)
	if err := r.readFull(b); err != nil {
		return err
	}
	n := le.Uint32(b)
	if n > MaxToolstack {
		return stream.OverLimit("toolstack data of %d octets exceeds the limit of %d", n, MaxToolstack)
	}
	if !r.opts.Toolstack || n == 0 {
		return r.skip(int64(n))
	}
	b = r.small(int(n))
	if err := r.readFull(b); err != nil {
		return err
	}
	kv, err := physmapXenstore(r.xenstore, b, r.layout.Width)
	if err != nil {
		if r.opts.ToolstackLenient {
			return nil
		}
		return err
	}
	r.xenstore = kv
	return nil
}

// unmappedPFNs reads the start of the PV tail, the list of pfns the saver
// did not map: uint32 count, count unsigned longs. They carry nothing a
// restorer needs, and are skipped.
func (r *Reader) unmappedPFNs() error {
	p := part{off: r.src.Offset(), index: -1, name: "unmapped pfn list"}
	b := r.small(4)
	if err := r.readFull(b); err != nil {
		return p.errorf(err)
	}
	n := uint64(le.Uint32(b))
	if n > r.p2mSize {
		return p.errorf(stream.Corrupt("%d unmapped pfns, more than the p2m size %#x", n, r.p2mSize))
	}
	if err := r.skip(int64(n) * int64(r.ulong)); err != nil {
		return p.errorf(err)
	}
	if !r.vcpuInfo {
		return p.errorf(stream.Corrupt("no VCPU_INFO chunk came before the tail: which vCPU contexts follow is unknown"))
	}
	r.state, r.vcpuNext, r.vcpuPart = stVCPU, 0, 0
	return nil
}

// vcpuContext reads one context of the current vCPU: the basic context
// (the guest's vcpu_guest_context), then the 128-octet extended context
// if the extended info had an "extv" block, then the XSAVE area (a mask,
// a size and the area) if it had an "xcnt" block.
func (r *Reader) vcpuContext() (*stream.Record, error) {
	if r.vcpuNext >= len(r.vcpus) {
		r.state = stSharedInfo
		return nil, nil
	}
	id := r.vcpus[r.vcpuNext]
	p := part{off: r.src.Offset(), index: -1}
	var t stream.RecordType
	var n int
	switch r.vcpuPart {
	case 0:
		p.name, t, n = fmt.Sprintf("vcpu%d basic context", id), stream.RecX86PVVCPUBasic, r.basicLen
	case 1:
		p.name, t, n = fmt.Sprintf("vcpu%d extended context", id), stream.RecX86PVVCPUExtended, vcpuExtended
	case 2:
		p.name, t = fmt.Sprintf("vcpu%d XSAVE area", id), stream.RecX86PVVCPUXSave
		var h [xsaveHeader]byte
		if err := r.readFull(h[:]); err != nil {
			return nil, p.errorf(err)
		}
		if size := le.Uint64(h[8:]); size != uint64(r.xsaveLen-xsaveHeader) {
			return nil, p.errorf(stream.Corrupt("XSAVE area of %d octets, the extended info said %d", size, r.xsaveLen-xsaveHeader))
		}
		n = r.xsaveLen - xsaveHeader
	}
	b := r.small(8 + n)
	le.PutUint32(b, id)
	le.PutUint32(b[4:], 0)
	if err := r.readFull(b[8:]); err != nil {
		return nil, p.errorf(err)
	}
	r.vcpuPart++
	if r.vcpuPart == 1 && !r.extended {
		r.vcpuPart++
	}
	if r.vcpuPart == 2 && r.xsaveLen == 0 {
		r.vcpuPart++
	}
	if r.vcpuPart > 2 {
		r.vcpuNext, r.vcpuPart = r.vcpuNext+1, 0
	}
	return r.record(t, p.off, b), nil
}

// magicPFNs reads the start of the HVM tail: the ioreq, buffered ioreq and
// xenstore pfns (three uint64).
func (r *Reader) magicPFNs() (*stream.Record, error) {
	p := part{off: r.src.Offset(), index: -1, name: "HVM magic pfns"}
	var b [24]byte
	if err := r.readFull(b[:]); err != nil {
		return nil, p.errorf(err)
	}
	kv := []uint64{
		hvmParamIoreqPFN, le.Uint64(b[0:]),
		hvmParamBufioreqPFN, le.Uint64(b[8:]),
		hvmParamStorePFN, le.Uint64(b[16:]),
	}
	r.state = stHVMContext
	return r.record(stream.RecHVMParams, p.off, r.appendParams(r.small(0), kv)), nil
}

// hvmContext reads the HVM context: uint32 size and Xen's HVM save
// records.
func (r *Reader) hvmContext() (*stream.Record, error) {
	p := part{off: r.src.Offset(), index: -1, name: "HVM context"}
	var h [4]byte
	if err := r.readFull(h[:]); err != nil {
		return nil, p.errorf(err)
	}
	n := le.Uint32(h[:])
	if n > MaxHVMContext {
		return nil, p.errorf(stream.OverLimit("HVM context of %d octets exceeds the limit of %d", n, MaxHVMContext))
	}
	b := r.small(int(n))
	if err := r.readFull(b); err != nil {
		return nil, p.errorf(err)
	}
	if err := checkHVMContext(b); err != nil {
		return nil, p.errorf(err)
	}
	r.state = stEndRecord
	return r.record(stream.RecHVMContext, p.off, b), nil
}

// checkHVMContext checks the framing of Xen's HVM save records: a header
// record with Xen's magic first, records that exactly fill the blob, and
// the END record last.
func checkHVMContext(b []byte) error {
	if len(b) < hvmDescSize+hvmHeaderLength {
		return stream.Corrupt("HVM context of %d octets is too short for Xen's save header", len(b))
	}
	if code, length, magic := le.Uint16(b), le.Uint32(b[4:]), le.Uint32(b[8:]); code != hvmCodeHeader || length != hvmHeaderLength || magic != hvmFileMagic {
		return stream.Corrupt("HVM context does not start with Xen's save header (type %d, length %d, magic %#x)", code, length, magic)
	}
	for off := 0; ; {
		if len(b)-off < hvmDescSize {
			return stream.Corrupt("HVM context: save record at +%#x overruns the blob", off)
		}
		code, length := le.Uint16(b[off:]), le.Uint32(b[off+4:])
		if uint64(length) > uint64(len(b)-off-hvmDescSize) {
			return stream.Corrupt("HVM context: save record type %d at +%#x of %d octets overruns the blob", code, off, length)
		}
		off += hvmDescSize + int(length)
		if code == hvmCodeEnd {
			if off != len(b) {
				return stream.Corrupt("HVM context: %d octets after the END save record", len(b)-off)
			}
			return nil
		}
	}
}
