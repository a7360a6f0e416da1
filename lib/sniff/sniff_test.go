package sniff_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/rewrite"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

func TestIdentify(t *testing.T) {
	pv := testutil.PV{Pages: 1}.Stream(t)
	be := testutil.PV{Pages: 1, Order: binary.BigEndian, Version: 2}.Stream(t)
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{nil, "empty"},
		{pv, "libxc v3 little-endian"},
		{be, "libxc v2 big-endian"},
		{testutil.Framed(t, pv, nil, nil), "libxl little-endian"},
		{testutil.Framed(t, pv, nil, []byte("{}")), "xl little-endian"},
		{[]byte{0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0, 0, 0}, "zstd"},
		{[]byte{0x04, 0x22, 0x4D, 0x18, 0, 0, 0, 0, 0}, "lz4"},
		{[]byte{0x58, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 'x', 'y', 0x28, 0xB5, 0x2F, 0xFD, 0}, "zstd"},
		{[]byte{0x50, 0x2A, 0x4D, 0x18, 0, 0, 0, 0, 0x04, 0x22, 0x4D, 0x18, 0x64}, "lz4"},
		{[]byte{0x50, 0x2A, 0x4D, 0x18, 99, 0, 0, 0, 0x04, 0x22, 0x4D, 0x18, 0x64}, "unknown"},
		{[]byte{0x00, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0xff}, "legacy"},
		// Formats nothing here reads are named, not taken for legacy
		// streams with an absurd p2m size.
		{[]byte{0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0}, "gzip"},
		{[]byte{0xFD, '7', 'z', 'X', 'Z', 0, 0, 4, 0xE6}, "xz"},
		{[]byte("BZh91AY&SY"), "bzip2"},
		{[]byte{0x02, 0x21, 0x4C, 0x18, 0x10, 0, 0, 0, 0xff}, "lz4-legacy"},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'N', 'O', 'P', 'E', 0, 0, 0, 3, 0, 0}, "unknown"},
	} {
		if got := sniff.Identify(tc.in).String(); got != tc.want {
			t.Errorf("Identify(% x...) = %q, want %q", tc.in[:min(len(tc.in), 8)], got, tc.want)
		}
	}
}

// walk returns "layer:name" for every item, and the first error.
func walk(in []byte, verify bool) ([]string, error) {
	wk, err := sniff.NewWalker(bytes.NewReader(in), &sniff.Options{Verify: verify})
	if err != nil {
		return nil, err
	}
	var out []string
	for {
		it, err := wk.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, string(it.Layer)+":"+it.Name())
	}
}

func TestWalkLayers(t *testing.T) {
	pv := testutil.PV{Pages: 2}.Stream(t)
	got, err := walk(testutil.Framed(t, pv, []byte("qemu state"), []byte(`{"c_info":{"name":"a"}}`)), true)
	if err != nil {
		t.Fatal(err)
	}
	want := "xl:XL_HEADER libxl:LIBXL_HEADER libxl:LIBXC_CONTEXT libxc:LIBXC_HEADER libxc:X86_PV_INFO libxc:STATIC_DATA_END " +
		"libxc:X86_PV_P2M_FRAMES libxc:PAGE_DATA libxc:X86_TSC_INFO libxc:SHARED_INFO libxc:X86_PV_VCPU_BASIC libxc:END " +
		"libxl:EMULATOR_CONTEXT libxl:END"
	if strings.Join(got, " ") != want {
		t.Fatalf("items:\n%s\nwant:\n%s", strings.Join(got, " "), want)
	}
}

// checkpointed builds a libxl stream with two checkpoints: libxc CHECKPOINT
// hands over to libxl until CHECKPOINT_END, then libxc goes on.
func checkpointed(t *testing.T) []byte {
	pv := testutil.PV{Pages: 2}.Stream(t)
	r := stream.NewReader(bytes.NewReader(pv), nil)
	ih, dh, _ := r.Headers()
	var buf bytes.Buffer
	lw, _ := libxl.NewWriter(&buf, libxl.Header{})
	lw.WriteRecord(libxl.RecLibxcContext)
	w := stream.NewWriter(&buf)
	w.WriteHeaders(ih, dh)
	var tail [][2]any
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type == stream.RecEnd {
			break
		}
		w.WriteRecord(rec.Type, rec.Body)
		switch rec.Type {
		case stream.RecPageData, stream.RecX86TSCInfo, stream.RecSharedInfo, stream.RecX86PVVCPUBasic:
			tail = append(tail, [2]any{rec.Type, bytes.Clone(rec.Body)})
		}
	}
	for i := 0; i < 2; i++ {
		w.WriteRecord(stream.RecCheckpoint)
		lw.WriteEmulator(libxl.RecEmulatorXenstoreData, 0, 0, []byte("k\x00v\x00"))
		lw.WriteRecord(libxl.RecCheckpointEnd)
		for _, rec := range tail { // resend the dirty state
			w.WriteRecord(rec[0].(stream.RecordType), rec[1].([]byte))
		}
	}
	w.WriteRecord(stream.RecEnd)
	lw.WriteRecord(libxl.RecEnd)
	return buf.Bytes()
}

func TestWalkCheckpoints(t *testing.T) {
	in := checkpointed(t)
	got, err := walk(in, true)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Join(got, " ")
	if n := strings.Count(s, "libxc:CHECKPOINT libxl:EMULATOR_XENSTORE_DATA libxl:CHECKPOINT_END libxc:PAGE_DATA"); n != 2 {
		t.Fatalf("checkpoint hand-over seen %d times, want 2:\n%s", n, s)
	}
	if !strings.HasSuffix(s, "libxc:END libxl:END") {
		t.Fatalf("stream does not end with libxc END then libxl END:\n%s", s)
	}
	// A CHECKPOINT_END with no checkpoint open is refused.
	i := bytes.Index(in, []byte{4, 0, 0, 0, 0, 0, 0, 0})
	bad := bytes.Clone(in)
	binary.LittleEndian.PutUint32(bad[i:], uint32(libxl.RecEnd))
	if _, err := walk(bad, true); err == nil || !strings.Contains(err.Error(), "END inside a checkpoint") {
		t.Fatalf("libxl END inside a checkpoint: %v", err)
	}
}

func TestWalkErrors(t *testing.T) {
	pv := testutil.PV{Pages: 2}.Stream(t)
	framed := testutil.Framed(t, pv, nil, nil)
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"trailing garbage", append(bytes.Clone(pv), "garbage"...), "7 octets of trailing data after the last END record"},
		{"legacy", []byte{0x00, 0x10, 0, 0, 0, 0, 0, 0, 1, 2, 3}, "looks like legacy input"},
		{"empty", nil, "empty input"},
		{"libxl cut after libxc", framed[:len(framed)-8], "libxl record 1 (record header) at offset"},
		{"libxl END before libxc", append(bytes.Clone(framed[:16]), 0, 0, 0, 0, 0, 0, 0, 0), "END before any LIBXC_CONTEXT"},
		{"unknown libxl record", append(bytes.Clone(framed[:16]), 9, 0, 0, 0, 0, 0, 0, 0), "unknown mandatory libxl record type 0x9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := walk(tc.in, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			var fe *stream.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%T is not a *stream.FormatError", err)
			}
		})
	}
}

func TestSeedFiles(t *testing.T) {
	pv := testutil.PV{Pages: 1}.Stream(t)
	testutil.Golden(t, "testdata/seeds/xl.bin", testutil.Framed(t, pv, []byte("qemu"), []byte(`{"c_info":{"name":"seed"}}`)))
	testutil.Golden(t, "testdata/seeds/libxl-checkpoint.bin", checkpointed(t))
	testutil.Golden(t, "testdata/seeds/libxc-be.bin", testutil.PV{Pages: 1, Order: binary.BigEndian}.Stream(t))
	// With CHECKSUM records after the headers, every record and at the end.
	var ck bytes.Buffer
	if _, err := rewrite.Copy(&ck, bytes.NewReader(testutil.Framed(t, testutil.PV{Pages: 2}.Stream(t), []byte("qemu"), []byte(`{}`))),
		nil, &rewrite.Options{Checksum: true, ChecksumInterval: 1}); err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, "testdata/seeds/xl-checksum.bin", ck.Bytes())
}

// FuzzWalker: walk → rewrite → walk. Whatever walks must rewrite to the
// same octets (when nothing trails) and never panic, verifying or not.
func FuzzWalker(f *testing.F) {
	files, _ := filepath.Glob("testdata/seeds/*")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = walk(in, true)
		var out bytes.Buffer
		n, err := rewrite.Copy(&out, bytes.NewReader(in), &sniff.Options{Verify: true, AllowTrailing: true}, nil)
		if err != nil {
			return
		}
		if !bytes.Equal(out.Bytes(), in[:n]) {
			t.Fatal("rewrite of a walkable stream differs from it")
		}
	})
}

// NoChecksums: a stream without CHECKSUM records walks as before; one
// with them fails at the first.
func TestWalkNoChecksums(t *testing.T) {
	pv := testutil.PV{Pages: 64}.Stream(t)
	var summed bytes.Buffer
	if _, err := rewrite.Copy(&summed, bytes.NewReader(pv), nil, &rewrite.Options{Checksum: true, ChecksumInterval: 1}); err != nil {
		t.Fatal(err)
	}
	for _, skip := range []bool{false, true} {
		opts := &sniff.Options{Verify: true, NoChecksums: true, SkipPageData: skip}
		wk, err := sniff.NewWalker(bytes.NewReader(pv), opts)
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err = wk.Next(); err != nil {
				break
			}
		}
		if err != io.EOF || wk.Offset() != int64(len(pv)) {
			t.Fatalf("skip %v: %v at %d of %d", skip, err, wk.Offset(), len(pv))
		}
		wk, err = sniff.NewWalker(bytes.NewReader(summed.Bytes()), opts)
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err = wk.Next(); err != nil {
				break
			}
		}
		if !errors.Is(err, sniff.ErrChecksumRecord) {
			t.Fatalf("skip %v: a checksummed stream: %v", skip, err)
		}
	}
}

// Gzip's magic is two octets, which a legacy stream starts with when its
// p2m size is 0x8b1f in its low half: gzip is what decodes as gzip.
func TestGzipOrLegacy(t *testing.T) {
	gz := func(name string, data []byte) []byte { return gzipOf(gzip.Header{Name: name}, data) }
	random := make([]byte, 200<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	legacy64 := append([]byte{0x1f, 0x8b, 0, 0, 0, 0, 0, 0}, bytes.Repeat([]byte{0xff}, 8)...) // p2m 0x8b1f, extended info
	legacy32 := []byte{0x1f, 0x8b, 1, 0, 0x00, 0x04, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0}          // p2m 0x18b1f, a batch of 1024
	for _, c := range []struct {
		name string
		in   []byte
		want sniff.Kind
	}{
		{"gzip of nothing", gz("", nil), sniff.Gzip},
		{"gzip with a name", gz("vm.xl", []byte("some text")), sniff.Gzip},
		{"gzip of random data", gz("", random), sniff.Gzip},
		{"gzip, cut short", gz("", random)[:100], sniff.Gzip},
		{"gzip, then padding", append(gz("", []byte("short")), make([]byte, 20000)...), sniff.Gzip},
		{"gzip with a long name", gz(strings.Repeat("n", 2000), random[:1000]), sniff.Gzip},
		{"gzip with a name past the probe", gz(strings.Repeat("n", 40000), nil), sniff.Gzip},
		{"gzip with extra fields (bgzip)", gzipOf(gzip.Header{Extra: bytes.Repeat([]byte("x"), 300)}, random[:1000]), sniff.Gzip},
		{"gzip with a header CRC", gzHCRC(t, []byte("hello")), sniff.Gzip},
		// p2m 0x88b1f: 1f 8b 08 00, a gzip header as far as its flags go;
		// only its "deflate data" tell.
		{"legacy, p2m 0x88b1f", append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}, append(bytes.Repeat([]byte{0xff}, 8), make([]byte, 4096)...)...), sniff.Legacy},
		{"legacy, 64-bit", append(legacy64, make([]byte, 4096)...), sniff.Legacy},
		{"legacy, 32-bit", append(legacy32, random[:4096]...), sniff.Legacy},
	} {
		info, _, err := sniff.Detect(bytes.NewReader(c.in))
		if err != nil || info.Kind != c.want {
			t.Errorf("%s: %v, %v; want %v", c.name, info.Kind, err, c.want)
		}
	}
}

// gzipOf is data, gzipped with the header h.
func gzipOf(h gzip.Header, data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Header = h
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

// gzHCRC is gzip with FHCRC set (which Go's writer never sets): the
// header, its CRC-16, and data as a stored deflate block.
func gzHCRC(t *testing.T, data []byte) []byte {
	t.Helper()
	h := []byte{0x1f, 0x8b, 8, 2, 0, 0, 0, 0, 0, 255}
	crc := crc32.ChecksumIEEE(h)
	out := append(h, byte(crc), byte(crc>>8))
	var d bytes.Buffer
	fw, err := flate.NewWriter(&d, flate.NoCompression)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	fw.Close()
	out = append(out, d.Bytes()...)
	var tail [8]byte
	binary.LittleEndian.PutUint32(tail[:], crc32.ChecksumIEEE(data))
	binary.LittleEndian.PutUint32(tail[4:], uint32(len(data)))
	out = append(out, tail[:]...)
	zr, err := gzip.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("the hand-made gzip: %v", err)
	}
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the hand-made gzip reads %q, %v", got, err)
	}
	return out
}
