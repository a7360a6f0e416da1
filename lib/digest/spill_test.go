package digest_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/digest"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

// pvStream writes a PV libxc stream whose PAGE_DATA records carry the
// given pfn words, batch by batch; a nil batch stands for a VERIFY record.
// A page's content depends on its pfn and its batch, so a resent page
// differs from what it replaces.
func pvStream(t testing.TB, batches [][]uint64, order stream.ByteOrder) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := stream.NewWriter(&buf)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.WriteHeaders(stream.NewImageHeader(order), stream.DomainHeader{Type: stream.DomainX86PV, PageShift: 12, XenMajor: 4, XenMinor: 17}))
	must(w.Write(&stream.X86PVInfo{GuestWidth: 8, PTLevels: 4}))
	must(w.Write(stream.Signal(stream.RecStaticDataEnd)))
	must(w.Write(&stream.X86PVP2MFrames{StartPFN: 0, EndPFN: 0, Frames: []uint64{0}}))
	for i, b := range batches {
		if b == nil {
			must(w.Write(stream.Signal(stream.RecVerify)))
			continue
		}
		for len(b) > 0 {
			n := min(len(b), stream.MaxPageBatch)
			p := &stream.PageData{PFNs: b[:n]}
			for _, w := range b[:n] {
				if pfn, typ, _ := stream.SplitPFNWord(w); typ.HasData() {
					p.Data = append(p.Data, testutil.Page(pfn, byte(i))...)
				}
			}
			must(w.Write(p))
			b = b[n:]
		}
	}
	must(w.Write(&stream.X86TSCInfo{KHz: 2000000}))
	must(w.Write(&stream.Blob{T: stream.RecSharedInfo, Data: make([]byte, stream.PageSize)}))
	must(w.Write(&stream.X86PVVCPU{Kind: stream.RecX86PVVCPUBasic, VCPUID: 0, Context: make([]byte, 0x1430)}))
	must(w.Write(stream.Signal(stream.RecEnd)))
	return buf.Bytes()
}

func words(typ stream.PageType, pfns ...uint64) []uint64 {
	w := make([]uint64, len(pfns))
	for i, pfn := range pfns {
		w[i] = stream.PFNWord(pfn, typ)
	}
	return w
}

func span(lo, hi, step uint64) []uint64 {
	var s []uint64
	for p := lo; p < hi; p += step {
		s = append(s, p)
	}
	return s
}

// down is span's pfns in descending order.
func down(lo, hi, step uint64) []uint64 {
	s := span(lo, hi, step)
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
	return s
}

func cat(s ...[]uint64) []uint64 {
	var out []uint64
	for _, x := range s {
		out = append(out, x...)
	}
	return out
}

// spillStreams are streams whose pfn tables do not fit a cache of a few
// chunks: pfns in and out of order, resent, removed, scattered.
func spillStreams(t testing.TB) map[string][]byte {
	far := []uint64{1 << 40, 3, 1<<52 - 1, 64 * 4096, 64*8192 + 5, 1 << 30}
	return map[string][]byte{
		"pv 700, batch 1, rev": testutil.PV{Pages: 700, Batch: 1, Reverse: true}.Stream(t),
		"in order":             pvStream(t, [][]uint64{words(stream.PageNotab, span(0, 2000, 1)...)}, binary.LittleEndian),
		"resent": pvStream(t, [][]uint64{
			words(stream.PageNotab, span(0, 2000, 1)...),
			words(stream.PageL1Tab, span(5, 2000, 7)...),
			words(stream.PageNotab, down(0, 2000, 13)...),
			words(stream.PageL4Pin, span(3, 1500, 101)...),
		}, binary.LittleEndian),
		"xtab": pvStream(t, [][]uint64{
			words(stream.PageNotab, span(0, 2000, 1)...),
			words(stream.PageXTab, span(0, 2000, 3)...),
			words(stream.PageXTab, span(64, 128, 1)...),           // a whole chunk
			words(stream.PageXTab, span(1<<20, 1<<20+640, 64)...), // never seen
			words(stream.PageBroken, span(1, 2000, 9)...),
		}, binary.BigEndian),
		"scattered": pvStream(t, [][]uint64{
			words(stream.PageXAlloc, span(0, 64*3000, 64)...),
			words(stream.PageNotab, far...),
			words(stream.PageNotab, down(1, 64*3000, 64*17)...),
			cat(words(stream.PageXTab, far[:3]...), words(stream.PageL2Tab, far[3:]...)),
		}, binary.LittleEndian),
		"verify": pvStream(t, [][]uint64{
			words(stream.PageNotab, span(0, 1000, 1)...),
			nil,
			words(stream.PageNotab, span(0, 1000, 1)...),
			words(stream.PageXTab, span(0, 1000, 2)...),
		}, binary.LittleEndian),
	}
}

// feed returns a Digester given every item of the stream in, walked
// with opts; the caller closes it.
func feed(t *testing.T, in []byte, opts *sniff.Options) *digest.Digester {
	t.Helper()
	wk, err := sniff.NewWalker(bytes.NewReader(in), opts)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.New()
	for {
		it, err := wk.Next()
		if err == io.EOF {
			return d
		}
		if err == nil {
			err = d.Add(it)
		}
		if err != nil {
			d.Close()
			t.Fatal(err)
		}
	}
}

// TestSpill: with a cache of one or two chunks, every stream gives the
// digest and page count it gives with the normal cache.
func TestSpill(t *testing.T) {
	type result struct {
		sum   string
		pages int
	}
	run := func(in []byte) result {
		d := feed(t, in, &sniff.Options{Verify: true})
		defer d.Close()
		s, err := d.Sum()
		if err != nil {
			t.Fatal(err)
		}
		return result{s, d.Pages()}
	}
	seen := map[string]string{}
	for name, in := range spillStreams(t) {
		want := run(in)
		if other, dup := seen[want.sum]; dup {
			t.Errorf("%s: same digest as %s", name, other)
		}
		seen[want.sum] = name
		for _, n := range []int{1, 2} {
			restore := digest.SetCacheChunks(n)
			if got := run(in); got != want {
				t.Errorf("%s, cache of %d chunks: %s, %d pages; want %s, %d pages", name, n, got.sum, got.pages, want.sum, want.pages)
			}
			restore()
		}
	}
}

// scattered is the hostile stream: one XALLOC pfn in each of n chunks.
func scattered(t testing.TB, n int) []byte {
	return pvStream(t, [][]uint64{words(stream.PageXAlloc, span(0, 64*uint64(n), 64)...)}, binary.LittleEndian)
}

// TestScatteredMemory: the hostile stream that fills the pfn table to its
// cap (a 2 MiB stream with one pfn in each of 2^18 chunks) is digested in
// bounded memory, to the digest the unbounded table gave, and one chunk
// more is refused.
func TestScatteredMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 2^18 chunks to a temporary file")
	}
	in := scattered(t, digest.MaxChunks)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d := feed(t, in, nil)
	defer d.Close()
	sum, err := d.Sum()
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	const limit = 40 << 20
	if grew := after.TotalAlloc - before.TotalAlloc; grew > limit {
		t.Errorf("digesting allocated %d MiB, want under %d", grew>>20, limit>>20)
	}
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > limit {
		t.Errorf("heap in use grew by %d MiB, want under %d", grew>>20, limit>>20)
	}
	t.Logf("allocated %.1f MiB, heap in use %+.1f MiB", float64(after.TotalAlloc-before.TotalAlloc)/(1<<20),
		(float64(after.HeapInuse)-float64(before.HeapInuse))/(1<<20))
	// Computed by the in-memory table this replaced (commit 328a9c6).
	if want := "xsd1:5fd1379833b46a459aa2aa3a088a9d51b263dd7491de9168984f159d61ef16e6"; sum != want {
		t.Errorf("digest %s, want %s", sum, want)
	}
	if d.Pages() != digest.MaxChunks {
		t.Errorf("Pages() = %d, want %d", d.Pages(), digest.MaxChunks)
	}
	if err := d.Page(digest.MaxChunks*64, stream.PageXAlloc, nil); !errors.Is(err, digest.ErrTooLarge) || !errors.Is(err, stream.ErrLimit) {
		t.Errorf("one chunk more: error %v, want ErrTooLarge, a stream over a limit", err)
	}
	// Chunks already in the table still take pages.
	if err := d.Page(1, stream.PageXAlloc, nil); err != nil {
		t.Errorf("a pfn of a known chunk: %v", err)
	}
}
