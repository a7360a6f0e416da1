package restore_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/compress"
	"github.com/xstream/xstream/lib/digest"
	"github.com/xstream/xstream/lib/domain"
	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/restore"
	"github.com/xstream/xstream/lib/rewrite"
	"github.com/xstream/xstream/lib/save"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/store"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

func streamDigest(t *testing.T, in []byte) string {
	t.Helper()
	d, err := digest.Stream(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func storeDigest(t *testing.T, s *store.Store, name string) string {
	t.Helper()
	src, err := s.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d, err := digest.Source(src)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func saveDomain(t *testing.T, s *store.Store, name string, f save.Format, order stream.ByteOrder) []byte {
	t.Helper()
	src, err := s.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out bytes.Buffer
	if _, err := save.Save(&out, src, save.Options{Format: f, Order: order}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func newStore(t *testing.T) *store.Store {
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRoundTrips: restore, digest from the store, save in every format
// and byte order, restore again: one digest throughout.
func TestRoundTrips(t *testing.T) {
	inputs := map[string][]byte{
		"pv-libxc": testutil.PV{Pages: 2500, Batch: 300}.Stream(t),
		"pv-xl":    testutil.Framed(t, testutil.PV{Pages: 100}.Stream(t), []byte("emu"), []byte(`{"c_info":{"name":"x"}}`)),
		"pv-be-v2": testutil.PV{Pages: 100, Order: binary.BigEndian, Version: 2}.Stream(t),
	}
	for name, b := range testutil.XenReal(t) {
		inputs[name] = b
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			want := streamDigest(t, in)
			info, err := restore.Restore(bytes.NewReader(in), s, restore.Options{Name: "a"})
			if err != nil {
				t.Fatal(err)
			}
			if got := storeDigest(t, s, "a"); got != want {
				t.Fatalf("store digest %s, stream %s", got, want)
			}
			for _, f := range []save.Format{save.FormatXL, save.FormatLibxl, save.FormatLibxc} {
				for _, order := range []stream.ByteOrder{binary.LittleEndian, binary.BigEndian} {
					out := saveDomain(t, s, "a", f, order)
					if got := streamDigest(t, out); got != want {
						t.Fatalf("%s %v: saved stream digest %s, want %s", f, order, got, want)
					}
					if _, err := restore.Restore(bytes.NewReader(out), s, restore.Options{Name: "b", Replace: true}); err != nil {
						t.Fatal(err)
					}
					if got := storeDigest(t, s, "b"); got != want {
						t.Fatalf("%s %v: re-restored digest %s", f, order, got)
					}
				}
			}
			if info.Name != "a" || info.Pages == 0 {
				t.Fatalf("info %+v", info)
			}
			if err := s.Destroy("a"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRealSaveIsFaithful: xsave of a restored real Xen save file gives the
// same libxc records, byte for byte: Xen's saver sent 1024-pfn batches of
// present pages, and so do we.
func TestRealSaveIsFaithful(t *testing.T) {
	s := newStore(t)
	for name, in := range testutil.XenReal(t) {
		if _, err := restore.Restore(bytes.NewReader(in), s, restore.Options{}); err != nil {
			t.Fatal(err)
		}
		got := saveDomain(t, s, "xlguest", save.FormatXL, binary.LittleEndian)
		if !bytes.Equal(got, in) {
			t.Fatalf("%s: saved stream differs from Xen's (%d vs %d octets)", name, len(got), len(in))
		}
	}
}

// TestFailuresLeaveNothing: truncated and corrupt streams fail and leave
// no domain, and an existing domain is not replaced.
func TestFailuresLeaveNothing(t *testing.T) {
	s := newStore(t)
	in := testutil.PV{Pages: 300, Batch: 50}.Stream(t)
	if _, err := restore.Restore(bytes.NewReader(in), s, restore.Options{Name: "keep"}); err != nil {
		t.Fatal(err)
	}
	keep := storeDigest(t, s, "keep")
	flipped := bytes.Clone(in)
	flipped[len(in)/2] ^= 0x80 // inside a page: valid, different
	lenBad := bytes.Clone(in)
	binary.LittleEndian.PutUint32(lenBad[92:], 99) // P2M frames length
	for name, bad := range map[string][]byte{
		"cut early":   in[:100],
		"cut late":    in[:len(in)-9],
		"bad length":  lenBad,
		"garbage end": append(bytes.Clone(in), 1, 2, 3),
	} {
		for _, target := range []struct {
			name    string
			replace bool
		}{{"new", false}, {"keep", true}} {
			_, err := restore.Restore(bytes.NewReader(bad), s, restore.Options{Name: target.name, Replace: target.replace})
			if err == nil {
				t.Fatalf("%s into %s: accepted", name, target.name)
			}
			var fe *stream.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%s: %v is not a FormatError", name, err)
			}
		}
		if s.Exists("new") {
			t.Fatalf("%s: a failed restore left a domain", name)
		}
		if got := storeDigest(t, s, "keep"); got != keep {
			t.Fatalf("%s: the existing domain changed", name)
		}
	}
	// Nothing stray in the data directory: the kept domain only.
	ents, _ := os.ReadDir(filepath.Join(s.Root(), ".d"))
	if len(ents) != 1 || strings.HasSuffix(ents[0].Name(), ".tmp") {
		t.Fatalf("data directory holds %v", ents)
	}
	// Not replaced without Replace.
	if _, err := restore.Restore(bytes.NewReader(flipped), s, restore.Options{Name: "keep"}); !errors.Is(err, domain.ErrExists) {
		t.Fatalf("existing domain: %v", err)
	}
	// Replaced with it.
	if _, err := restore.Restore(bytes.NewReader(flipped), s, restore.Options{Name: "keep", Replace: true}); err != nil {
		t.Fatal(err)
	}
	if storeDigest(t, s, "keep") == keep {
		t.Fatal("replace did not change the domain")
	}
}

func TestConcurrentWritersRefused(t *testing.T) {
	s := newStore(t)
	b, err := s.Create("x", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("x", true); !errors.Is(err, domain.ErrLocked) {
		t.Fatalf("second writer: %v", err)
	}
	b.Abort()
	if _, err := s.Create("x", false); err != nil {
		t.Fatalf("after abort: %v", err)
	}
}

func TestNameFromConfig(t *testing.T) {
	for in, want := range map[string]string{
		`{"c_info": {"name": "vm1"}}`:    "vm1",
		"name = \"w32-hvm\"\nmemory = 2": "w32-hvm",
		"memory = 2":                     "",
		// xl's parser keeps the last setting of a name.
		"name = 'a'\nmemory = 2\n name = \"b\"\n": "b",
	} {
		if got := restore.NameFromConfig([]byte(in)); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// TestSaveSplicesPages: a stored domain saved into a pipe through a
// stream.Output (its pages spliced from the memory file) gives the same
// octets as one saved into memory (its pages read and copied), with
// absent pfns, types without data, zero pages and a memory file that
// ends before the last pfns.
func TestSaveSplicesPages(t *testing.T) {
	s := newStore(t)
	b, err := s.Create("a", false)
	if err != nil {
		t.Fatal(err)
	}
	const pfns = 3000
	if err := b.SetInfo(domain.Info{Name: "a", Type: stream.DomainX86PV, PageShift: stream.PageShift, PFNs: pfns, VCPUs: 1}); err != nil {
		t.Fatal(err)
	}
	var words []uint64
	var data []byte
	flush := func() {
		if len(words) > 0 {
			if err := b.SetPages(words, data); err != nil {
				t.Fatal(err)
			}
		}
		words, data = words[:0], data[:0]
	}
	for pfn := uint64(0); pfn < pfns-200; pfn++ {
		var typ stream.PageType
		switch {
		case pfn%97 == 5:
			continue // absent
		case pfn%89 == 7:
			typ = stream.PageXAlloc
		case pfn%83 == 9:
			typ = stream.PageBroken
		case pfn%13 == 0:
			typ = stream.PageL1Tab // with data
		}
		words = append(words, stream.PFNWord(pfn, typ))
		if typ.HasData() {
			page := make([]byte, stream.PageSize)
			if pfn%3 != 0 { // every third page zero
				for i := range page {
					page[i] = byte(pfn*7 + uint64(i)>>5)
				}
			}
			data = append(data, page...)
		}
		if len(words) == 500 {
			flush()
		}
	}
	// The last pfns: data pages of zeros, which the memory file may not
	// reach at all.
	for pfn := uint64(pfns - 200); pfn < pfns; pfn++ {
		words = append(words, stream.PFNWord(pfn, stream.PageNotab))
		data = append(data, make([]byte, stream.PageSize)...)
	}
	flush()
	if _, err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	mem := filepath.Join(s.Root(), "a", "memory")
	if err := os.Truncate(mem, (pfns-150)*stream.PageSize); err != nil {
		t.Fatal(err)
	}

	for _, f := range []save.Format{save.FormatXL, save.FormatLibxc} {
		want := saveDomain(t, s, "a", f, binary.LittleEndian)
		src, err := s.Open("a")
		if err != nil {
			t.Fatal(err)
		}
		pw, got := testutil.Pipe(t)
		out := stream.NewOutput(pw, 64<<10)
		st, err := save.Save(out, src, save.Options{Format: f})
		if err == nil {
			err = out.Flush()
		}
		g := got()
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g, want) {
			t.Fatalf("%s: saved through a pipe: %d octets differ from the %d saved to memory", f, len(g), len(want))
		}
		if st.Bytes != int64(len(want)) {
			t.Errorf("%s: Stats.Bytes %d, wrote %d", f, st.Bytes, len(want))
		}
	}
}

// TestStoreLimitIsAStreamError: a pfn the store cannot hold (as one
// flipped bit in a pfn word makes) is an error of the stream, naming the
// record, not an operational failure; and no domain is left.
func TestStoreLimitIsAStreamError(t *testing.T) {
	// 2^32-1: its memory file would be 16 TiB, a block more than ext4's
	// largest file.
	for _, pfn := range []uint64{1<<32 + 3, 1<<32 - 1} {
		storeLimit(t, pfn)
	}
}

func storeLimit(t *testing.T, pfn uint64) {
	in := testutil.PV{Pages: 40, Batch: 16}.Stream(t)
	rd := stream.NewReader(bytes.NewReader(in), nil)
	if _, _, err := rd.Headers(); err != nil {
		t.Fatal(err)
	}
	var at int64 = -1
	for at < 0 {
		rec, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type == stream.RecPageData {
			at = rec.Offset
		}
	}
	// The first pfn word of the first PAGE_DATA record.
	binary.LittleEndian.PutUint64(in[at+16:], stream.PFNWord(pfn, stream.PageNotab))
	s := newStore(t)
	_, err := restore.Restore(bytes.NewReader(in), s, restore.Options{Name: "a"})
	var fe *stream.FormatError
	if !errors.As(err, &fe) || fe.Offset != at || fe.Type != "PAGE_DATA" || !errors.Is(err, stream.ErrLimit) {
		t.Fatalf("pfn %#x: got %v; want a FormatError of the PAGE_DATA record at %#x over a limit", pfn, err, at)
	}
	if s.Exists("a") {
		t.Fatal("a domain was left behind")
	}
}

// TestEveryFlipFailsTheRestore: one flipped bit in a compressed stream
// (lz4 and zstd, as xsave -z writes them) or in a checksummed raw stream
// makes the restore fail as a bad stream (exit status 3 in xrestore) and
// leaves no domain: every bit of the first and last 64 octets, and one
// bit of every 7th octet outside page contents (every 23rd in compressed
// streams, every 211th inside page contents).
func TestEveryFlipFailsTheRestore(t *testing.T) {
	raw := testutil.Framed(t, testutil.PV{Pages: 48, Batch: 7}.Stream(t), []byte("qemu state"), []byte(`{"c_info":{"name":"a"}}`))
	var ck bytes.Buffer
	if _, err := rewrite.Copy(&ck, bytes.NewReader(raw), nil, &rewrite.Options{Checksum: true, ChecksumInterval: 32 << 10}); err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]byte{"checksummed": ck.Bytes()}
	for _, codec := range []compress.Codec{compress.Zstd, compress.LZ4} {
		var z bytes.Buffer
		zw, err := compress.NewWriter(&z, codec, &compress.WriterOptions{ChunkSize: 40 << 10})
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(raw)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		inputs[codec.String()] = z.Bytes()
	}
	s := newStore(t)
	for name, good := range inputs {
		// Where page contents lie (raw streams only): those octets are
		// sampled, the rest flipped bit by bit.
		var bulk []bool
		if name == "checksummed" {
			bulk = pageContents(t, good)
		}
		var flips []int // bit numbers
		for at := range good {
			switch {
			case at < 64 || at >= len(good)-64:
				for b := range 8 {
					flips = append(flips, 8*at+b)
				}
			case bulk == nil && at%23 == 0, bulk != nil && !bulk[at] && at%7 == 0, bulk != nil && at%211 == 0:
				flips = append(flips, 8*at+at%8)
			}
		}
		tried := 0
		for k := 0; k < len(flips); k += testutil.FlipStride() {
			i, at := flips[k], flips[k]/8
			tried++
			bad := bytes.Clone(good)
			bad[at] ^= 1 << (i % 8)
			_, err := restore.Restore(bytes.NewReader(bad), s, restore.Options{Name: "b"})
			if code := cmdutil.Code(err); code != cmdutil.ExitInvalid {
				t.Fatalf("%s: bit %d of octet %#x of %#x flipped: %v (exit status %d, want %d)", name, i%8, at, len(good), err, code, cmdutil.ExitInvalid)
			}
			if s.Exists("b") {
				t.Fatalf("%s: flip at %#x: a domain was left", name, at)
			}
		}
		t.Logf("%s: %d octets, %d flips, all refused", name, len(good), tried)
	}
}

// pageContents marks the octets of in that are page contents.
func pageContents(t *testing.T, in []byte) []bool {
	t.Helper()
	bulk := make([]bool, len(in))
	wk, err := sniff.NewWalker(bytes.NewReader(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	for {
		it, err := wk.Next()
		if err == io.EOF {
			return bulk
		}
		if err != nil {
			t.Fatal(err)
		}
		if it.Kind == sniff.LibxcRecord && it.Libxc.Type == stream.RecPageData {
			n := len(it.Libxc.Body) / stream.PageSize * stream.PageSize
			end := it.Offset + 8 + int64(len(it.Libxc.Body))
			for j := end - int64(n); j < end; j++ {
				bulk[j] = true
			}
		}
	}
}

// emulatorFirst returns an xl-framed stream of libxc whose emulator
// records (one per element of qemu) come before LIBXC_CONTEXT.
func emulatorFirst(t *testing.T, libxc, config []byte, qemu ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	h := xl.Header{Order: binary.LittleEndian, MandatoryFlags: xl.FlagStreamV2 | xl.FlagJSON, Config: config}
	b, err := h.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(b)
	w, err := libxl.NewWriter(&buf, libxl.Header{})
	if err != nil {
		t.Fatal(err)
	}
	for i, q := range qemu {
		if err := w.WriteEmulator(libxl.RecEmulatorContext, libxl.EmulatorQemuUpstream, uint32(i), q); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteRecord(libxl.RecLibxcContext); err != nil {
		t.Fatal(err)
	}
	buf.Write(libxc)
	if err := w.WriteRecord(libxl.RecEnd); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestEmulatorBeforeLibxc: libxl takes emulator records before the
// LIBXC_CONTEXT record, and so does the store, with the domain still
// named by the xl config: the same domain as with them after. Held in
// memory until then, they are bounded.
func TestEmulatorBeforeLibxc(t *testing.T) {
	libxc := testutil.PV{Pages: 16, Batch: 5}.Stream(t)
	config := []byte(`{"c_info":{"name":"early"}}`)
	qemu := []byte("qemu state")
	after := testutil.Framed(t, libxc, qemu, config)

	s := newStore(t)
	if _, err := restore.Restore(bytes.NewReader(after), s, restore.Options{Name: "after"}); err != nil {
		t.Fatal(err)
	}
	info, err := restore.Restore(bytes.NewReader(emulatorFirst(t, libxc, config, qemu)), s, restore.Options{})
	if err != nil {
		t.Fatalf("emulator record first: %v", err)
	}
	if info.Name != "early" {
		t.Fatalf("restored as %q, want the config's name", info.Name)
	}
	if got, want := storeDigest(t, s, "early"), storeDigest(t, s, "after"); got != want {
		t.Fatalf("digest %s with the emulator record first, %s with it after", got, want)
	}

	defer restore.SetMaxEarly(100)()
	_, err = restore.Restore(bytes.NewReader(emulatorFirst(t, libxc, config, make([]byte, 60), make([]byte, 60))), s, restore.Options{Replace: true})
	var fe *stream.FormatError
	if !errors.Is(err, stream.ErrLimit) || !errors.As(err, &fe) || fe.Type != "EMULATOR_CONTEXT" || fe.Index != 1 {
		t.Fatalf("120 octets of emulator records first, 100 allowed: %v", err)
	}
}
