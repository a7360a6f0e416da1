package xl_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

func TestRoundTrip(t *testing.T) {
	for _, h := range []*xl.Header{
		{Order: binary.LittleEndian, MandatoryFlags: xl.FlagJSON | xl.FlagStreamV2, Config: []byte(`{"c_info":{"name":"vm"}}`)},
		{Order: binary.BigEndian, MandatoryFlags: xl.FlagStreamV2, Config: []byte("name = \"vm\"\n"), Extra: []byte{1, 2, 3}},
		{Order: binary.LittleEndian, NoConfigLength: true},
		{Order: binary.LittleEndian, Config: []byte{}},
	} {
		b, err := h.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != h.Size() {
			t.Fatalf("Size() %d, wire %d", h.Size(), len(b))
		}
		got, err := xl.Read(bytes.NewReader(b), 0)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := got.AppendBinary(nil)
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip differs:\n% x\n% x", b, b2)
		}
		if got.Order != h.Order || !bytes.Equal(got.Config, h.Config) || got.StreamV2() != h.StreamV2() {
			t.Fatalf("decoded %+v, want %+v", got, h)
		}
	}
}

// TestCorpusHeaders reads the xl header of every xl-framed corpus stream
// and checks what Xen wrote: little-endian, JSON config for libxl streams.
func TestCorpusHeaders(t *testing.T) {
	n := 0
	for _, p := range testutil.CorpusFiles(t, "legacy", ".v3") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !xl.HasMagic(b) {
			continue
		}
		n++
		h, err := xl.Read(bytes.NewReader(b), 0)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(p), err)
		}
		if h.Order != binary.LittleEndian || len(h.Config) == 0 {
			t.Fatalf("%s: %+v", filepath.Base(p), h)
		}
		if strings.Contains(p, "-libxl") != h.StreamV2() {
			t.Fatalf("%s: STREAMV2 flag %v", filepath.Base(p), h.StreamV2())
		}
	}
	for _, b := range testutil.XenReal(t) {
		n++
		h, err := xl.Read(bytes.NewReader(b), 0)
		if err != nil || !h.StreamV2() || h.MandatoryFlags != xl.FlagJSON|xl.FlagStreamV2 || !bytes.HasPrefix(h.Config, []byte("{")) {
			t.Fatalf("real xl header: %+v, %v", h, err)
		}
	}
	if n < 5 {
		t.Fatalf("only %d xl-framed corpus streams", n)
	}
}

func TestErrors(t *testing.T) {
	good, _ := (&xl.Header{Order: binary.LittleEndian, MandatoryFlags: 3, Config: []byte("{}")}).AppendBinary(nil)
	for _, tc := range []struct {
		name   string
		mutate func([]byte) []byte
		want   string
		is     error
	}{
		{"magic", func(b []byte) []byte { b[0] = 'x'; return b }, "no xl save-file magic", stream.ErrCorrupt},
		{"byte order", func(b []byte) []byte { b[32] = 9; return b }, "bad byte-order marker", stream.ErrCorrupt},
		{"mandatory flag", func(b []byte) []byte { b[36] |= 8; return b }, "unknown mandatory flags 0x8", stream.ErrUnsupported},
		{"huge optional data", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[44:], 1<<30); return b }, "optional data length 1073741824 exceeds the limit", stream.ErrLimit},
		{"config longer than data", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[48:], 99); return b }, "config length 99 exceeds the optional data", stream.ErrCorrupt},
		{"truncated", func(b []byte) []byte { return b[:50] }, "optional data truncated", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := xl.Read(bytes.NewReader(tc.mutate(bytes.Clone(good))), 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "xl header at offset") {
				t.Fatalf("error %q does not name the layer and offset", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v is not %v", err, tc.is)
			}
		})
	}
}

func TestSeedFiles(t *testing.T) {
	b, _ := (&xl.Header{Order: binary.LittleEndian, MandatoryFlags: 3, Config: []byte(`{"c_info":{"name":"seed"}}`)}).AppendBinary(nil)
	testutil.Golden(t, "testdata/seeds/json.bin", b)
	b, _ = (&xl.Header{Order: binary.BigEndian, MandatoryFlags: 2, NoConfigLength: true}).AppendBinary(nil)
	testutil.Golden(t, "testdata/seeds/be-empty.bin", b)
}

// FuzzRead: whatever parses must encode to the octets it was parsed from.
func FuzzRead(f *testing.F) {
	files, _ := filepath.Glob("testdata/seeds/*")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := xl.Read(bytes.NewReader(in), 0)
		if err != nil {
			return
		}
		b, err := h.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, in[:len(b)]) {
			t.Fatalf("re-encoded header differs:\n% x\n% x", b, in[:len(b)])
		}
	})
}
