// Package testutil helps tests find the shared corpus and build small
// streams.
package testutil

import (
	"bytes"
	"encoding/binary"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

// RepoRoot returns the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// Corpus returns the path of ../shared/corpus/SUB beside the repository.
// A missing corpus fails the test: it is part of the project's test data.
func Corpus(t testing.TB, sub string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "..", "shared", "corpus", sub)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("reference corpus missing (it must sit at ../shared/corpus beside the checkout): %v", err)
	}
	return p
}

// CorpusFiles returns the corpus files in sub whose names end in suffix.
func CorpusFiles(t testing.TB, sub, suffix string) []string {
	t.Helper()
	dir := Corpus(t, sub)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatalf("no *%s files in %s", suffix, dir)
	}
	return out
}

var realCache sync.Map

// XenReal returns the decompressed contents of every save file in the
// xen-real corpus, by file name.
func XenReal(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, p := range CorpusFiles(t, "xen-real", ".zst") {
		if b, ok := realCache.Load(p); ok {
			out[filepath.Base(p)] = b.([]byte)
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(d); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		d.Close()
		f.Close()
		realCache.Store(p, buf.Bytes())
		out[filepath.Base(p)] = buf.Bytes()
	}
	return out
}

// FlipStride is the step of the every-bit-flip tests: 1 (every bit) on
// the machine's own architecture, a sample of the bits on the others,
// which run emulated (s390x under qemu) or as the same code on a
// narrower word (386).
func FlipStride() int {
	if runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64" {
		return 1
	}
	return 11
}

// Page returns a deterministic page of content for pfn.
func Page(pfn uint64, seed byte) []byte {
	p := make([]byte, stream.PageSize)
	if (pfn+uint64(seed))%3 == 0 {
		return p // a zero page
	}
	for i := 0; i < len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], pfn*0x9E3779B97F4A7C15+uint64(i)+uint64(seed))
	}
	return p
}

// PV describes a tiny PV domain for tests.
type PV struct {
	Pages   int              // guest pfns 0..Pages-1, all with data
	Batch   int              // pfns per PAGE_DATA record
	Order   stream.ByteOrder // record byte order
	Version uint32           // 2 or 3
	Seed    byte
	Reverse bool // send the batches in reverse pfn order
}

// Stream writes the PV domain as a libxc stream.
func (pv PV) Stream(t testing.TB) []byte {
	t.Helper()
	if pv.Order == nil {
		pv.Order = binary.LittleEndian
	}
	if pv.Version == 0 {
		pv.Version = stream.Version3
	}
	if pv.Batch == 0 {
		pv.Batch = 1024
	}
	var buf bytes.Buffer
	w := stream.NewWriter(&buf)
	ih := stream.NewImageHeader(pv.Order)
	ih.Version = pv.Version
	must(t, w.WriteHeaders(ih, stream.DomainHeader{Type: stream.DomainX86PV, PageShift: 12, XenMajor: 4, XenMinor: 17}))
	must(t, w.Write(&stream.X86PVInfo{GuestWidth: 8, PTLevels: 4}))
	if pv.Version >= 3 {
		must(t, w.Write(stream.Signal(stream.RecStaticDataEnd)))
	}
	end := uint32(pv.Pages - 1)
	frames := make([]uint64, end/512+1)
	for i := range frames {
		frames[i] = uint64(i)
	}
	must(t, w.Write(&stream.X86PVP2MFrames{StartPFN: 0, EndPFN: end, Frames: frames}))
	var batches [][2]int
	for lo := 0; lo < pv.Pages; lo += pv.Batch {
		batches = append(batches, [2]int{lo, min(lo+pv.Batch, pv.Pages)})
	}
	if pv.Reverse {
		for i, j := 0, len(batches)-1; i < j; i, j = i+1, j-1 {
			batches[i], batches[j] = batches[j], batches[i]
		}
	}
	for _, b := range batches {
		p := &stream.PageData{}
		for pfn := b[0]; pfn < b[1]; pfn++ {
			p.PFNs = append(p.PFNs, stream.PFNWord(uint64(pfn), stream.PageNotab))
			p.Data = append(p.Data, Page(uint64(pfn), pv.Seed)...)
		}
		must(t, w.Write(p))
	}
	must(t, w.Write(&stream.X86TSCInfo{Mode: 0, KHz: 2000000, Nsec: 12345, Incarnation: 1}))
	must(t, w.Write(&stream.Blob{T: stream.RecSharedInfo, Data: make([]byte, stream.PageSize)}))
	ctx := make([]byte, 0x1430)
	ctx[0] = pv.Seed
	must(t, w.Write(&stream.X86PVVCPU{Kind: stream.RecX86PVVCPUBasic, VCPUID: 0, Context: ctx}))
	must(t, w.Write(stream.Signal(stream.RecEnd)))
	return buf.Bytes()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Framed wraps a libxc stream in libxl framing (with an EMULATOR_CONTEXT
// record when emu is not nil) and, if xlConfig is not nil, an xl header.
func Framed(t testing.TB, libxc []byte, emu []byte, xlConfig []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if xlConfig != nil {
		h := xl.Header{Order: binary.LittleEndian, MandatoryFlags: xl.FlagStreamV2 | xl.FlagJSON, Config: xlConfig}
		b, err := h.AppendBinary(nil)
		must(t, err)
		buf.Write(b)
	}
	w, err := libxl.NewWriter(&buf, libxl.Header{})
	must(t, err)
	must(t, w.WriteRecord(libxl.RecLibxcContext))
	buf.Write(libxc)
	if emu != nil {
		must(t, w.WriteEmulator(libxl.RecEmulatorContext, libxl.EmulatorQemuUpstream, 0, emu))
	}
	must(t, w.WriteRecord(libxl.RecEnd))
	return buf.Bytes()
}

var update = flag.Bool("update", false, "rewrite golden and seed files")

// Update reports whether the tests run with -update.
func Update() bool { return *update }

// Golden compares got with the file at path, or writes it under -update.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		must(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what the test generates (%d vs %d octets); run with -update if the change is intended", path, len(got), len(want))
	}
}

// Pipe returns the write end of a pipe and a function that closes it and
// returns everything written to it, read on the other end all along.
func Pipe(t testing.TB) (*os.File, func() []byte) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(pr)
		pr.Close()
		got <- b
	}()
	return pw, func() []byte {
		pw.Close()
		return <-got
	}
}
