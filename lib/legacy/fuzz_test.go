package legacy

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/xstream/xstream/internal/testcorpus"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/tests/legacygen"
)

// FuzzReader reads arbitrary input as a legacy stream. Whatever it is,
// the Reader must not panic, hang or allocate beyond its limits; when it
// accepts the input, every record it returns must decode as its type,
// the records written with stream.Writer must read back the same, and
// reading again with the detected layout given as options must return
// the same records.
//
// Seeds: tiny streams of the four layouts, small generated streams, and
// the start of every stream of the shared legacy corpus.
func FuzzReader(f *testing.F) {
	for _, w := range []int{32, 64} {
		for _, hvm := range []bool{false, true} {
			f.Add(newTiny(w, hvm).bytes())
		}
	}
	for _, c := range []legacygen.Config{
		{Width: 32, Pages: 3, Batch: 2, Extended: true, XSave: 0x50, VCPUs: []int{0, 3}, Unmapped: 1, Special: false, Seed: 1},
		{Width: 64, PVGuestBits: 32, Pages: 12, Batch: 4, Special: true, BareXTab: 1, EmptyXTab: true, Seed: 2},
		{Width: 64, HVM: true, Pages: 2, HVMParams: true, QemuTail: 30, Toolstack: []legacygen.Physmap{{Phys: 1, Start: 2, Size: 3, Name: "rom"}}, ContextLen: 40, Seed: 3},
		{Width: 32, HVM: true, Pages: 2, XL: true, OpaqueTS: 9, QemuTail: 10, ContextLen: 16, Seed: 4},
	} {
		var b bytes.Buffer
		if err := legacygen.Write(&b, c); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	dir, cases := testcorpus.Legacy(f)
	for _, c := range cases {
		b, err := os.ReadFile(filepath.Join(dir, c.Name+".legacy"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 8<<10)])
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		for _, ts := range []bool{false, true} {
			first, layout, ok := fuzzRead(t, b, &Options{Toolstack: ts})
			if !ok {
				continue
			}
			again, _, ok := fuzzRead(t, b, &Options{Width: layout.Width, Guest: layout.Guest, Toolstack: ts})
			if !ok || !bytes.Equal(first, again) {
				t.Fatalf("reading with the detected layout (%v) given differs", layout)
			}
			streamed, _, ok := fuzzRead(t, b, &Options{Toolstack: ts, StreamPages: true})
			if !ok || !bytes.Equal(first, streamed) {
				t.Fatalf("reading with StreamPages differs")
			}
		}
	})
}

// fuzzRead reads b and checks the records; it returns a digest of them.
func fuzzRead(t *testing.T, b []byte, opts *Options) ([]byte, Layout, bool) {
	r := NewReader(bytes.NewReader(b), opts)
	ih, dh, err := r.Headers()
	if err != nil {
		return nil, Layout{}, false
	}
	layout, _ := r.Detect()
	var out bytes.Buffer
	sw := stream.NewWriter(&out)
	if err := sw.WriteHeaders(ih, dh); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	var types []stream.RecordType
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, layout, false
		}
		if n := r.DataLen(); n > 0 {
			// StreamPages: the page data follows from the Reader.
			data, err := io.ReadAll(r)
			if err != nil {
				return nil, layout, false
			}
			if int64(len(data)) != n {
				t.Fatalf("page data of %d octets, DataLen said %d", len(data), n)
			}
			rec.Body = append(append([]byte{}, rec.Body...), data...)
		}
		body, err := stream.Decode(rec.Type, rec.Body, le)
		if err != nil {
			t.Fatalf("record %d (%v) does not decode: %v", rec.Index, rec.Type, err)
		}
		if p, ok := body.(*stream.X86PVP2MFrames); ok && uint64(len(p.Frames)) != p.FramesFor(uint8(r.GuestWidth())) {
			t.Fatalf("X86_PV_P2M_FRAMES with %d frames for a %d-octet guest", len(p.Frames), r.GuestWidth())
		}
		if err := sw.WriteRecord(rec.Type, rec.Body); err != nil {
			t.Fatal(err)
		}
		h.Write(rec.Body)
		types = append(types, rec.Type)
	}
	if tail, err := r.Tail(); err != nil {
		return nil, layout, false
	} else if tail != nil {
		if _, err := io.Copy(h, tail); err != nil {
			return nil, layout, false
		}
	}
	if err := r.End(); err != nil {
		return nil, layout, false
	}
	// The records read back the same through stream.Reader.
	rd := stream.NewReader(&out, nil)
	h2 := sha256.New()
	for i := 0; ; i++ {
		rec, err := rd.Next()
		if err == io.EOF {
			if i != len(types) {
				t.Fatalf("read back %d records, wrote %d", i, len(types))
			}
			break
		}
		if err != nil {
			t.Fatalf("reading back: %v", err)
		}
		if i >= len(types) || rec.Type != types[i] {
			t.Fatalf("record %d reads back as %v", i, rec.Type)
		}
		h2.Write(rec.Body)
	}
	sum := h.Sum(nil)
	if r.tail == nil && !bytes.Equal(sum, h2.Sum(nil)) {
		t.Fatal("record bodies read back differently")
	}
	return sum, layout, true
}
