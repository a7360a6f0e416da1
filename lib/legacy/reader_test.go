package legacy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/tests/legacygen"
)

// tiny builds small legacy streams part by part, so that a test can
// corrupt exactly one thing and know its offset.
type tiny struct {
	width  int // toolstack: 32 or 64
	hvm    bool
	p2m    []byte
	ext    []byte // PV
	frames []byte // PV
	chunks [][]byte
	tail   [][]byte
	after  []byte
}

func (s *tiny) ulong(v uint64) []byte {
	if s.width == 32 {
		return binary.LittleEndian.AppendUint32(nil, uint32(v))
	}
	return binary.LittleEndian.AppendUint64(nil, v)
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// newTiny returns a valid stream: 16 pfns, a 32-bit PV guest with one vCPU
// (or an HVM guest), one batch of two pages, VCPU_INFO, END and the tail.
func newTiny(width int, hvm bool) *tiny {
	s := &tiny{width: width, hvm: hvm}
	s.p2m = s.ulong(16)
	if !hvm {
		s.ext = cat(s.ulong(^uint64(0)), u32(8+vcpuContext32), []byte("vcpu"), u32(vcpuContext32), make([]byte, vcpuContext32))
		s.frames = s.ulong(0x1234)
	}
	s.chunks = [][]byte{
		s.batch([]uint64{0, 0x10000001}, 2),
		cat(u32(uint32(0xfffffffe)), u32(0), u64(1)), // VCPU_INFO: max id 0, vcpu0 online
		u32(0), // END
	}
	if hvm {
		s.tail = [][]byte{cat(u64(10), u64(11), u64(12)), hvmContext(16)}
	} else {
		s.tail = [][]byte{u32(0), make([]byte, vcpuContext32), make([]byte, sharedInfoSize)}
	}
	return s
}

func (s *tiny) batch(entries []uint64, pages int) []byte {
	b := u32(uint32(len(entries)))
	for _, e := range entries {
		b = append(b, s.ulong(e)...)
	}
	return append(b, make([]byte, pages*4096)...)
}

// hvmContext returns a length-prefixed HVM context with n octets of CPU
// record.
func hvmContext(n int) []byte {
	b := cat([]byte{1, 0, 0, 0}, u32(24), u32(hvmFileMagic), make([]byte, 20))
	b = cat(b, []byte{2, 0, 0, 0}, u32(uint32(n)), make([]byte, n), make([]byte, 8))
	return cat(u32(uint32(len(b))), b)
}

func (s *tiny) bytes() []byte {
	b := cat(s.p2m, s.ext, s.frames)
	for _, c := range s.chunks {
		b = append(b, c...)
	}
	for _, t := range s.tail {
		b = append(b, t...)
	}
	return append(b, s.after...)
}

// chunkAt returns the offset of chunk i.
func (s *tiny) chunkAt(i int) int64 {
	n := len(s.p2m) + len(s.ext) + len(s.frames)
	for _, c := range s.chunks[:i] {
		n += len(c)
	}
	return int64(n)
}

// tailAt returns the offset of tail part i.
func (s *tiny) tailAt(i int) int64 {
	n := s.chunkAt(len(s.chunks))
	for _, t := range s.tail[:i] {
		n += int64(len(t))
	}
	return n
}

// convert reads a whole stream and returns the records' types and the
// first error.
func convert(b []byte, opts *Options) ([]stream.RecordType, error) {
	r := NewReader(bytes.NewReader(b), opts)
	var types []stream.RecordType
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return types, err
		}
		types = append(types, rec.Type)
	}
	t, err := r.Tail()
	if err != nil {
		return types, err
	}
	if t != nil {
		if _, err := io.Copy(io.Discard, t); err != nil {
			return types, err
		}
	}
	return types, r.End()
}

func TestTinyValid(t *testing.T) {
	for _, w := range []int{32, 64} {
		for _, hvm := range []bool{false, true} {
			s := newTiny(w, hvm)
			types, err := convert(s.bytes(), nil)
			if err != nil {
				t.Fatalf("%d-bit hvm=%v: %v", w, hvm, err)
			}
			want := "[X86_PV_INFO STATIC_DATA_END X86_PV_P2M_FRAMES PAGE_DATA X86_PV_VCPU_BASIC SHARED_INFO END]"
			if hvm {
				want = "[STATIC_DATA_END PAGE_DATA HVM_PARAMS HVM_CONTEXT END]"
			}
			if got := fmt.Sprint(types); got != want {
				t.Fatalf("%d-bit hvm=%v: records %s, want %s", w, hvm, got, want)
			}
		}
	}
}

// TestBadInput corrupts one thing per case and checks the exact error:
// the sentinel, where (offset, chunk), the words, and the hint.
func TestBadInput(t *testing.T) {
	type want struct {
		err   error // sentinel
		off   int64
		index int
		typ   string
		text  string
		hint  string
	}
	for _, tc := range []struct {
		name  string
		width int
		hvm   bool
		opts  Options
		edit  func(s *tiny) want
	}{
		{"absurd p2m size (32-bit read as 64-bit)", 32, false, Options{Width: 64}, func(s *tiny) want {
			return want{stream.ErrLimit, 0, -1, "p2m size", "p2m size 0xffffffff00000010 exceeds", "try -w 32"}
		}},
		{"p2m size 0", 64, true, Options{}, func(s *tiny) want {
			s.p2m = s.ulong(0)
			return want{stream.ErrCorrupt, 0, -1, "p2m size", "p2m size is 0", ""}
		}},
		{"batch over the limit", 64, false, Options{}, func(s *tiny) want {
			s.chunks[0] = u32(1025)
			return want{stream.ErrLimit, s.chunkAt(0), 0, "PAGE_BATCH", "page batch of 1025 pages exceeds MAX_BATCH (1024)", ""}
		}},
		{"vCPU context of the wrong size", 32, false, Options{}, func(s *tiny) want {
			s.ext = cat(s.ulong(^uint64(0)), u32(8+0x1000), []byte("vcpu"), u32(0x1000), make([]byte, 0x1000))
			return want{stream.ErrCorrupt, 12, -1, `extended-info block "vcpu"`, "vCPU context of 0x1000 octets: a 32-bit guest's is 0xaf0, a 64-bit guest's 0x1430", ""}
		}},
		{"unknown extended-info block", 64, false, Options{Width: 64}, func(s *tiny) want {
			s.ext = cat(s.ext[:12], []byte("vcpX"), s.ext[16:])
			return want{stream.ErrCorrupt, 20, -1, "extended-info block", "unknown extended-info block 76 63 70 58", ""}
		}},
		{"block overruns the extended info", 32, false, Options{Width: 32}, func(s *tiny) want {
			s.ext = cat(s.ext[:4], u32(8+vcpuContext32-1), s.ext[8:])
			return want{stream.ErrCorrupt, 12, -1, `extended-info block "vcpu"`, "block 76 63 70 75 of 2800 octets overruns the extended info (2799 octets left)", ""}
		}},
		{"reserved page type", 32, false, Options{}, func(s *tiny) want {
			s.chunks[0] = s.batch([]uint64{0x50000003}, 1)
			return want{stream.ErrCorrupt, s.chunkAt(0), 0, "PAGE_BATCH", "pfn entry 0 (0x50000003) has the reserved page type 0x5", ""}
		}},
		{"pfn beyond the p2m", 64, true, Options{}, func(s *tiny) want {
			s.chunks[0] = s.batch([]uint64{0, 16}, 2)
			return want{stream.ErrCorrupt, s.chunkAt(0), 0, "PAGE_BATCH", "pfn 0x10 is beyond the p2m size 0x10", ""}
		}},
		{"upper half of a 64-bit entry", 64, true, Options{Width: 64}, func(s *tiny) want {
			s.chunks[0] = s.batch([]uint64{1 << 32}, 1)
			return want{stream.ErrCorrupt, s.chunkAt(0), 0, "PAGE_BATCH", "bits 32-63 are set", ""}
		}},
		{"duplicate pfn", 32, true, Options{}, func(s *tiny) want {
			s.chunks[0] = s.batch([]uint64{3, 3}, 2)
			return want{stream.ErrCorrupt, s.chunkAt(0), 0, "PAGE_BATCH", "pfn 0x3 appears twice in the batch", ""}
		}},
		{"unknown chunk", 64, false, Options{Width: 64}, func(s *tiny) want {
			s.chunks = append([][]byte{u32(uint32(0xffffffeb))}, s.chunks...)
			return want{stream.ErrCorrupt, s.chunkAt(0), 0, "UNKNOWN_-21", "unknown chunk type -21", ""}
		}},
		{"tmem", 32, false, Options{Width: 32}, func(s *tiny) want {
			s.chunks = append([][]byte{s.chunks[0], u32(uint32(0xfffffffb))}, s.chunks[1:]...)
			return want{stream.ErrUnsupported, s.chunkAt(1), 1, "TMEM", "TMEM chunk: tmem and Remus compression are not supported", ""}
		}},
		{"HVM parameter in a PV stream", 64, false, Options{Width: 64, Guest: GuestPV}, func(s *tiny) want {
			s.chunks = append([][]byte{cat(u32(uint32(0xfffffffd)), u32(0), u64(5))}, s.chunks...)
			return want{stream.ErrCorrupt, s.chunkAt(0), 0, "HVM_IDENT_PT", "HVM parameter chunk in a PV stream", ""}
		}},
		{"vCPU id over the limit", 32, true, Options{}, func(s *tiny) want {
			s.chunks[1] = cat(u32(uint32(0xfffffffe)), u32(5000))
			return want{stream.ErrCorrupt, s.chunkAt(1), 1, "VCPU_INFO", "maximum vCPU id 5000, want 0 to 4095", ""}
		}},
		{"vCPU beyond the maximum id", 32, false, Options{}, func(s *tiny) want {
			s.chunks[1] = cat(u32(uint32(0xfffffffe)), u32(1), u64(5))
			return want{stream.ErrCorrupt, s.chunkAt(1), 1, "VCPU_INFO", "vCPU 2 is online but the maximum id is 1", ""}
		}},
		{"no VCPU_INFO", 64, false, Options{}, func(s *tiny) want {
			s.chunks = [][]byte{s.chunks[0], s.chunks[2]}
			return want{stream.ErrCorrupt, s.tailAt(0), -1, "unmapped pfn list", "no VCPU_INFO chunk", ""}
		}},
		{"too many unmapped pfns", 32, false, Options{}, func(s *tiny) want {
			s.tail[0] = u32(17)
			return want{stream.ErrCorrupt, s.tailAt(0), -1, "unmapped pfn list", "17 unmapped pfns, more than the p2m size 0x10", ""}
		}},
		{"HVM context without Xen's header", 64, true, Options{}, func(s *tiny) want {
			s.tail[1] = cat(u32(32), make([]byte, 32))
			return want{stream.ErrCorrupt, s.tailAt(1), -1, "HVM context", "does not start with Xen's save header", ""}
		}},
		{"HVM context over the limit", 32, true, Options{Width: 32}, func(s *tiny) want {
			s.tail[1] = u32(MaxHVMContext + 1)
			return want{stream.ErrLimit, s.tailAt(1), -1, "HVM context", "exceeds the limit", ""}
		}},
		{"toolstack over the limit", 64, true, Options{}, func(s *tiny) want {
			s.chunks = append([][]byte{cat(u32(uint32(0xffffffee)), u32(MaxToolstack+1))}, s.chunks...)
			return want{stream.ErrLimit, s.chunkAt(0), 0, "TOOLSTACK", "toolstack data of 16777217 octets exceeds", ""}
		}},
		{"garbage after a PV stream", 32, false, Options{}, func(s *tiny) want {
			s.after = []byte("garbage")
			return want{stream.ErrCorrupt, s.tailAt(3), -1, "end of stream", "7 octets of trailing data", ""}
		}},
		{"garbage after an HVM stream", 64, true, Options{}, func(s *tiny) want {
			s.after = []byte("no qemu signature here")
			return want{stream.ErrCorrupt, s.tailAt(2), -1, "end of stream", "22 octets of trailing data", ""}
		}},
		{"garbage after the qemu tail", 64, true, Options{}, func(s *tiny) want {
			s.after = cat([]byte(QemuSignature), u32(3), []byte("abc"), []byte("x"))
			return want{stream.ErrCorrupt, s.tailAt(2) + 28, -1, "end of stream", "1 octets of trailing data", ""}
		}},
		{"qemu tail over the limit", 32, true, Options{}, func(s *tiny) want {
			s.after = cat([]byte(QemuSignature), u32(MaxQemuTail+1))
			return want{stream.ErrLimit, s.tailAt(2), -1, "qemu tail", "exceeds the limit", ""}
		}},
		{"truncated qemu tail", 32, true, Options{}, func(s *tiny) want {
			s.after = cat([]byte(QemuSignature), u32(100), make([]byte, 99))
			return want{io.ErrUnexpectedEOF, s.tailAt(2), -1, "qemu tail", "99 of 100 octets", ""}
		}},
		{"truncated page data", 64, false, Options{Width: 64}, func(s *tiny) want {
			s.chunks = [][]byte{s.chunks[0][:len(s.chunks[0])-1]}
			s.tail = nil
			return want{io.ErrUnexpectedEOF, s.chunkAt(0), 0, "PAGE_BATCH", "stream truncated: 8191 of 8192 octets present", ""}
		}},
		{"truncated shared info", 32, false, Options{Width: 32}, func(s *tiny) want {
			s.tail[2] = s.tail[2][:100]
			return want{io.ErrUnexpectedEOF, s.tailAt(2), -1, "shared info", "100 of 4096 octets", ""}
		}},
		{"-g pv on an HVM stream", 64, true, Options{Guest: GuestPV}, func(s *tiny) want {
			return want{stream.ErrCorrupt, 8, -1, "extended info", "extended-info marker is 0x2,", "reads as a 64-bit HVM stream: try -w 64 -g hvm"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTiny(tc.width, tc.hvm)
			w := tc.edit(s)
			_, err := convert(s.bytes(), &tc.opts)
			if err == nil {
				t.Fatal("no error")
			}
			var fe *stream.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%v: not a *stream.FormatError", err)
			}
			if !errors.Is(err, w.err) || fe.Layer != "legacy" || fe.Offset != w.off || fe.Index != w.index || fe.Type != w.typ || !strings.Contains(err.Error(), w.text) {
				t.Fatalf("got  %v (layer %q, offset %d, index %d, type %q)\nwant %v at offset %d, index %d, type %q, containing %q",
					err, fe.Layer, fe.Offset, fe.Index, fe.Type, w.err, w.off, w.index, w.typ, w.text)
			}
			var h interface{ Hint() string }
			if w.hint != "" && (!errors.As(err, &h) || !strings.Contains(h.Hint(), w.hint)) {
				t.Fatalf("%v: want a hint containing %q", err, w.hint)
			}
			t.Log(err)
		})
	}
}

// TestTruncation cuts streams at many offsets: every cut is an error
// wrapping io.ErrUnexpectedEOF, never a success, a panic or a hang, except
// a cut exactly where an HVM stream's qemu tail starts (a stream without
// a tail is complete).
func TestTruncation(t *testing.T) {
	for _, c := range []legacygen.Config{
		{Width: 32, Pages: 40, Batch: 16, Extended: true, XSave: 0x240, VCPUs: []int{0, 1}, Unmapped: 3, XL: true, Seed: 1},
		{Width: 64, PVGuestBits: 32, Pages: 30, Batch: 8, Special: true, BareXTab: 1, Seed: 2},
		{Width: 64, HVM: true, Pages: 20, Batch: 8, HVMParams: true, QemuTail: 100, OpaqueTS: 10, Seed: 3},
		{Width: 32, HVM: true, Pages: 20, Batch: 8, Toolstack: []legacygen.Physmap{{Phys: 1, Start: 2, Size: 3, Name: "rom"}}, QemuTail: 50, Seed: 4},
	} {
		var buf bytes.Buffer
		if err := legacygen.Write(&buf, c); err != nil {
			t.Fatal(err)
		}
		full := buf.Bytes()
		opts := &Options{Toolstack: c.Toolstack != nil}
		if _, err := convert(full, opts); err != nil {
			t.Fatalf("%+v: the whole stream: %v", c, err)
		}
		tailAt := -1
		if c.QemuTail > 0 {
			tailAt = bytes.LastIndex(full, []byte(QemuSignature))
		}
		// Every offset through the headers and first chunks and through
		// the end (tail structures); a sample in between.
		var cuts []int
		for cut := 0; cut < len(full); {
			cuts = append(cuts, cut)
			switch {
			case cut < 1500, cut > len(full)-400, cut >= tailAt-30 && cut <= tailAt+30:
				cut++
			default:
				cut += 251
			}
		}
		for _, cut := range cuts {
			_, err := convert(full[:cut], opts)
			if cut == tailAt {
				if err != nil {
					t.Fatalf("cut before the qemu tail: %v", err)
				}
				continue
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%d-bit hvm=%v cut at %d of %d: %v", c.Width, c.HVM, cut, len(full), err)
			}
		}
	}
}

// TestOverridesAgree: the layout given as options, when right, reads the
// stream as detection does.
func TestOverridesAgree(t *testing.T) {
	for _, w := range []int{32, 64} {
		for _, hvm := range []bool{false, true} {
			b := newTiny(w, hvm).bytes()
			g := GuestPV
			if hvm {
				g = GuestHVM
			}
			for _, o := range []Options{{Width: w}, {Guest: g}, {Width: w, Guest: g}} {
				r := NewReader(bytes.NewReader(b), &o)
				l, err := r.Detect()
				if err != nil || l.Width != w || l.Guest != g || l.WidthGiven != (o.Width != 0) || l.GuestGiven != (o.Guest != GuestAuto) {
					t.Fatalf("%+v: %+v, %v", o, l, err)
				}
			}
		}
	}
}

// TestUndetermined: a stream that reads as two layouts for longer than
// the detection window must make Detect ask, not guess; -w settles it.
func TestUndetermined(t *testing.T) {
	b := legacygen.Ambiguous(2 * ProbeWindow)
	_, err := NewReader(bytes.NewReader(b), nil).Detect()
	if !errors.Is(err, ErrUndetermined) {
		t.Fatalf("Detect: %v, want ErrUndetermined", err)
	}
	t.Log(err)
	for _, w := range []int{32, 64} {
		l, err := NewReader(bytes.NewReader(b), &Options{Width: w}).Detect()
		if err != nil || l.Width != w || l.Guest != GuestHVM {
			t.Fatalf("-w %d: %v, %v", w, l, err)
		}
	}
}
