package gen

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/xstream/xstream/lib/digest"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

func generate(t testing.TB, o Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, o); err != nil {
		t.Fatalf("Write(%+v): %v", o, err)
	}
	return b.Bytes()
}

// walk verifies s with the Walker and returns "layer:NAME" per item and
// the domain's digest.
func walk(t testing.TB, s []byte) (names []string, sum string) {
	t.Helper()
	wk, err := sniff.NewWalker(bytes.NewReader(s), &sniff.Options{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	dg := digest.New()
	defer dg.Close()
	for {
		it, err := wk.Next()
		if errors.Is(err, io.EOF) {
			sum, err := dg.Sum()
			if err != nil {
				t.Fatal(err)
			}
			return names, sum
		}
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		names = append(names, string(it.Layer)+":"+it.Name())
		if err := dg.Add(it); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifies(t *testing.T) {
	for _, typ := range []stream.DomainType{stream.DomainX86PV, stream.DomainX86HVM} {
		for _, format := range []string{FormatXL, FormatLibxl, FormatLibxc} {
			for _, order := range []stream.ByteOrder{binary.LittleEndian, binary.BigEndian} {
				for _, version := range []uint32{2, 3} {
					for _, ckpts := range []int{0, 2} {
						o := Options{Type: typ, Pages: 600, VCPUs: 3, Format: format, ByteOrder: order,
							Version: version, Checkpoints: ckpts, Batch: 100, Seed: 7}
						t.Run(fmt.Sprintf("%v/%s/%v/v%d/ckpt%d", typ, format, order, version, ckpts), func(t *testing.T) {
							walk(t, generate(t, o))
						})
					}
				}
			}
		}
	}
}

func TestRecordOrder(t *testing.T) {
	count := func(names []string) string {
		var out []string
		for i := 0; i < len(names); i++ {
			n, j := names[i], i
			for j+1 < len(names) && names[j+1] == n {
				j++
			}
			if j > i {
				n += fmt.Sprintf("×%d", j-i+1)
			}
			out = append(out, n)
			i = j
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Pages: 2048, VCPUs: 2},
			"xl:XL_HEADER libxl:LIBXL_HEADER libxl:LIBXC_CONTEXT libxc:LIBXC_HEADER libxc:X86_PV_INFO libxc:X86_CPUID_POLICY " +
				"libxc:X86_MSR_POLICY libxc:STATIC_DATA_END libxc:X86_PV_P2M_FRAMES libxc:PAGE_DATA×2 libxc:X86_TSC_INFO " +
				"libxc:SHARED_INFO libxc:X86_PV_VCPU_BASIC libxc:X86_PV_VCPU_EXTENDED libxc:X86_PV_VCPU_XSAVE " +
				"libxc:X86_PV_VCPU_BASIC libxc:X86_PV_VCPU_EXTENDED libxc:X86_PV_VCPU_XSAVE libxc:END libxl:END"},
		{Options{Pages: 64, Format: FormatLibxc, Version: 2},
			"libxc:LIBXC_HEADER libxc:X86_PV_INFO libxc:STATIC_DATA_END libxc:X86_PV_P2M_FRAMES libxc:PAGE_DATA libxc:X86_TSC_INFO " +
				"libxc:SHARED_INFO libxc:X86_PV_VCPU_BASIC libxc:X86_PV_VCPU_EXTENDED libxc:X86_PV_VCPU_XSAVE libxc:END"},
		{Options{Type: stream.DomainX86HVM, Pages: 64, Format: FormatLibxl, Checkpoints: 1},
			"libxl:LIBXL_HEADER libxl:LIBXC_CONTEXT libxc:LIBXC_HEADER libxc:X86_CPUID_POLICY libxc:X86_MSR_POLICY " +
				"libxc:STATIC_DATA_END libxc:PAGE_DATA libxc:X86_TSC_INFO libxc:HVM_PARAMS libxc:HVM_CONTEXT libxc:CHECKPOINT " +
				"libxl:EMULATOR_XENSTORE_DATA libxl:EMULATOR_CONTEXT libxl:CHECKPOINT_END " +
				"libxc:PAGE_DATA libxc:X86_TSC_INFO libxc:HVM_PARAMS libxc:HVM_CONTEXT libxc:END " +
				"libxl:EMULATOR_XENSTORE_DATA libxl:EMULATOR_CONTEXT libxl:END"},
		{Options{Type: stream.DomainX86HVM, Pages: 64, Format: FormatLibxc},
			"libxc:LIBXC_HEADER libxc:X86_CPUID_POLICY libxc:X86_MSR_POLICY libxc:STATIC_DATA_END libxc:PAGE_DATA " +
				"libxc:X86_TSC_INFO libxc:HVM_PARAMS libxc:HVM_CONTEXT libxc:END"},
	} {
		names, _ := walk(t, generate(t, tc.o))
		if got := count(names); got != tc.want {
			t.Errorf("%+v:\n got %s\nwant %s", tc.o, got, tc.want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	o := Options{Pages: 300, VCPUs: 2, Seed: 3, Checkpoints: 1}
	a, b := generate(t, o), generate(t, o)
	if !bytes.Equal(a, b) {
		t.Fatal("two streams of the same options differ")
	}
	o.Seed = 4
	if bytes.Equal(a, generate(t, o)) {
		t.Fatal("streams of different seeds are equal")
	}
}

// TestStable pins the octets of a few streams, so that a change of the
// generator's output, or a difference between architectures (the test
// also runs on 386 and on big-endian s390x), is seen. After an intended
// change, update the sums.
func TestStable(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Pages: 64, VCPUs: 2, Seed: 1}, "670afee57cbd2637"},
		{Options{Type: stream.DomainX86HVM, Pages: 200, Seed: 2, Format: FormatLibxl, Checkpoints: 1}, "5fd9977ed15bc209"},
		{Options{Pages: 64, Fill: FillRandom, ByteOrder: binary.BigEndian, Format: FormatLibxc}, "c634f1680c23458c"},
	} {
		sum := sha256.Sum256(generate(t, tc.o))
		if got := hex.EncodeToString(sum[:8]); got != tc.want {
			t.Errorf("%+v: sha256 starts %s, want %s", tc.o, got, tc.want)
		}
	}
}

// TestSameDomain checks that framing, batching and byte order do not
// change the domain: its digest stays the same.
func TestSameDomain(t *testing.T) {
	for _, typ := range []stream.DomainType{stream.DomainX86PV, stream.DomainX86HVM} {
		base := Options{Type: typ, Pages: 700, VCPUs: 2, Seed: 9, Format: FormatLibxl, Checkpoints: 1}
		_, want := walk(t, generate(t, base))
		variants := []Options{base, base, base, base}
		variants[0].Batch = 1
		variants[1].Batch = 333
		variants[2].ByteOrder = binary.BigEndian
		variants[3].Format = FormatXL
		if typ == stream.DomainX86PV {
			v := base
			v.Format = FormatLibxc // no device model, so the same domain
			variants = append(variants, v)
		}
		for _, v := range variants {
			if _, got := walk(t, generate(t, v)); got != want {
				t.Errorf("%+v: digest %s, want %s as for %+v", v, got, want, base)
			}
		}
		for _, v := range []Options{{Fill: FillZero}, {Seed: 10}, {Checkpoints: 2}} {
			o := base
			o.Fill, o.Checkpoints = v.Fill, max(v.Checkpoints, base.Checkpoints)
			if v.Seed != 0 {
				o.Seed = v.Seed
			}
			if _, got := walk(t, generate(t, o)); got == want {
				t.Errorf("%+v: same digest as %+v", o, base)
			}
		}
	}
}

func TestP2MFrames(t *testing.T) {
	for _, pages := range []int{20, 511, 512, 513, 1024, 1025, 262144} {
		d, err := New(Options{Pages: pages})
		if err != nil {
			t.Fatal(err)
		}
		p := d.P2MFrames()
		if p.StartPFN != 0 || p.EndPFN != uint32(pages-1) {
			t.Errorf("%d pages: pfns %#x-%#x", pages, p.StartPFN, p.EndPFN)
		}
		if want := uint64(pages-1)/512 + 1; uint64(len(p.Frames)) != want || p.FramesFor(8) != want {
			t.Errorf("%d pages: %d frames, want %d", pages, len(p.Frames), want)
		}
	}
}

// TestPageTypes checks the PV page-table pages: all four levels, some
// pinned, all at the end, and CR3 naming a pinned L4.
func TestPageTypes(t *testing.T) {
	d, err := New(Options{Pages: 4096, VCPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	types := map[stream.PageType]int{}
	firstTable := uint64(0)
	for pfn, pt := range d.PFNs(0) {
		types[pt]++
		if pt != stream.PageNotab && firstTable == 0 {
			firstTable = pfn
		}
		if pt == stream.PageNotab && firstTable != 0 {
			t.Fatalf("ordinary pfn %#x after the first page table %#x", pfn, firstTable)
		}
	}
	for _, pt := range []stream.PageType{stream.PageL1Tab, stream.PageL1Pin, stream.PageL2Tab, stream.PageL3Tab, stream.PageL4Pin} {
		if types[pt] == 0 {
			t.Errorf("no %v pages: %v", pt, types)
		}
	}
	ctx := d.vcpuBasic(0, 0)
	cr3 := binary.LittleEndian.Uint64(ctx[vgcCtrlReg+3*8:]) >> 12
	if d.pv.pageType(cr3) != stream.PageL4Pin {
		t.Errorf("CR3 names pfn %#x of type %v", cr3, d.pv.pageType(cr3))
	}
	if si := binary.LittleEndian.Uint64(ctx[vgcRDX:]); d.pv.pageType(si) != stream.PageNotab || si >= 4096 {
		t.Errorf("start info pfn %#x", si)
	}
	if len(ctx) != 0x1430 {
		t.Errorf("basic context of %#x octets", len(ctx))
	}
}

// TestRealisticMix checks the shares of the page classes.
func TestRealisticMix(t *testing.T) {
	d, err := New(Options{Pages: 1 << 15, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	var zero, text, repeat, n int
	seen := map[[32]byte]int{}
	p := make([]byte, pageSize)
	for pfn := range uint64(d.pv.sysStart) {
		d.Page(p, pfn, 0)
		n++
		switch {
		case bytes.Count(p, []byte{0}) == pageSize:
			zero++
		case isText(p):
			text++
		}
		seen[sha256.Sum256(p)]++
	}
	for _, c := range seen {
		if c > 1 {
			repeat += c
		}
	}
	repeat -= zero
	for _, c := range []struct {
		name     string
		got      int
		min, max int // percent
	}{
		{"zero", zero, 35, 45}, {"text", text, 20, 30}, {"repeated", repeat, 10, 20},
	} {
		if pct := 100 * c.got / n; pct < c.min || pct > c.max {
			t.Errorf("%s pages: %d%%, want %d-%d%%", c.name, pct, c.min, c.max)
		}
	}
}

func isText(p []byte) bool {
	end := bytes.IndexByte(p, 0)
	if end < 0 {
		end = len(p)
	}
	if end < 32 || bytes.Count(p[end:], []byte{0}) != len(p)-end {
		return false
	}
	for _, c := range p[:end] {
		if c != '\n' && (c < ' ' || c > '~') {
			return false
		}
	}
	return true
}

// TestBoundedMemory checks that generation allocates about one batch,
// however large the domain.
func TestBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 256 MiB")
	}
	alloc := func(pages int) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if err := Write(io.Discard, Options{Pages: pages}); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	small, large := alloc(1024), alloc(65536)
	t.Logf("allocated %d KiB for 4 MiB, %d KiB for 256 MiB", small>>10, large>>10)
	if large > 8<<20 || large > small+2<<20 {
		t.Errorf("allocated %d octets for a 256 MiB domain, %d for a 4 MiB one", large, small)
	}
}

func TestOptionErrors(t *testing.T) {
	for _, o := range []Options{
		{Type: 3}, {Pages: -1}, {Pages: MaxPages + 1}, {VCPUs: MaxVCPUs + 1}, {Fill: "sparse"},
		{Format: "qcow"}, {Batch: 1025}, {Version: 4}, {Checkpoints: -1},
		{Hole: &Hole{Start: 0, Len: 1}}, // PV
		{Type: stream.DomainX86HVM, Hole: &Hole{Start: 0xeffff, Len: 2}},
		{Pages: 8}, // too small for a PV guest's system pages
	} {
		if err := Write(io.Discard, o); err == nil {
			t.Errorf("Write(%+v) succeeded", o)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	for _, fill := range []Fill{FillRealistic, FillZero, FillRandom} {
		b.Run(string(fill), func(b *testing.B) {
			o := Options{Pages: 4096, Fill: fill}
			b.SetBytes(int64(len(generate(b, o))))
			for b.Loop() {
				if err := Write(io.Discard, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
