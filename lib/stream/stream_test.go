package stream_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/stream"
)

// readAll reads every record, verifying, and returns the records' types
// and the first error.
func readAll(in []byte) ([]stream.RecordType, error) {
	r := stream.NewReader(bytes.NewReader(in), nil)
	ih, dh, err := r.Headers()
	if err != nil {
		return nil, err
	}
	v, err := stream.NewVerifier(ih, dh)
	if err != nil {
		return nil, err
	}
	var types []stream.RecordType
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return types, v.End()
		}
		if err != nil {
			return types, err
		}
		types = append(types, rec.Type)
		if err := v.Record(rec); err != nil {
			return types, err
		}
	}
}

// records returns the offset of each record in a valid stream.
func records(t *testing.T, in []byte) map[stream.RecordType][]int64 {
	t.Helper()
	out := map[stream.RecordType][]int64{}
	r := stream.NewReader(bytes.NewReader(in), nil)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Implied {
			out[rec.Type] = append(out[rec.Type], rec.Offset)
		}
	}
}

func TestRoundTripBothOrders(t *testing.T) {
	for _, order := range []stream.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		in := testutil.PV{Pages: 3000, Batch: 1000, Order: order}.Stream(t)
		r := stream.NewReader(bytes.NewReader(in), nil)
		ih, dh, err := r.Headers()
		if err != nil {
			t.Fatal(err)
		}
		if got := ih.BigEndian(); got != (order == binary.BigEndian) {
			t.Fatalf("%v: BigEndian() = %v", order, got)
		}
		var out bytes.Buffer
		w := stream.NewWriter(&out)
		if err := w.WriteHeaders(ih, dh); err != nil {
			t.Fatal(err)
		}
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := stream.Decode(rec.Type, rec.Body, r.ByteOrder())
			if err != nil {
				t.Fatalf("%v: %v", rec.Type, err)
			}
			if enc := b.AppendBody(nil, r.ByteOrder()); !bytes.Equal(enc, rec.Body) {
				t.Fatalf("%v %v: decode then encode changed the body", order, rec.Type)
			}
			if err := w.Write(b); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Fatalf("%v: rewritten stream differs", order)
		}
		if _, err := readAll(in); err != nil {
			t.Fatalf("%v: %v", order, err)
		}
	}
}

// TestByteOrderOnWire pins the layout: the image header is big-endian
// whatever the options say; records follow the options.
func TestByteOrderOnWire(t *testing.T) {
	le := testutil.PV{Pages: 4, Order: binary.LittleEndian}.Stream(t)
	be := testutil.PV{Pages: 4, Order: binary.BigEndian}.Stream(t)
	if !bytes.Equal(le[:16], be[:16]) || le[17] != 0 || be[17] != 1 {
		t.Fatalf("image headers: % x / % x", le[:24], be[:24])
	}
	if binary.LittleEndian.Uint32(le[24:]) != 1 || binary.BigEndian.Uint32(be[24:]) != 1 {
		t.Fatal("domain type not in the declared byte order")
	}
	// X86_PV_INFO record header at 40: type 2, length 8.
	if binary.LittleEndian.Uint32(le[40:]) != 2 || binary.BigEndian.Uint32(be[40:]) != 2 {
		t.Fatal("record type not in the declared byte order")
	}
}

func TestV2ImpliesStaticDataEnd(t *testing.T) {
	v2 := testutil.PV{Pages: 100, Version: 2}.Stream(t)
	types, err := readAll(v2)
	if err != nil {
		t.Fatal(err)
	}
	want := []stream.RecordType{stream.RecX86PVInfo, stream.RecStaticDataEnd, stream.RecX86PVP2MFrames}
	for i, w := range want {
		if types[i] != w {
			t.Fatalf("record %d is %v, want %v (all: %v)", i, types[i], w, types)
		}
	}
	// Copying the records into a v3 writer writes the implied record out;
	// into a v2 writer, not.
	v3 := testutil.PV{Pages: 100, Version: 3}.Stream(t)
	for _, version := range []uint32{2, 3} {
		r := stream.NewReader(bytes.NewReader(v2), nil)
		ih, dh, _ := r.Headers()
		ih.Version = version
		var out bytes.Buffer
		w := stream.NewWriter(&out)
		if err := w.WriteHeaders(ih, dh); err != nil {
			t.Fatal(err)
		}
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Copy(rec); err != nil {
				t.Fatal(err)
			}
		}
		want := map[uint32][]byte{2: v2, 3: v3}[version]
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("v2 copied as v%d differs from the reference", version)
		}
	}
}

// TestTruncation cuts a stream at every length and checks that each cut
// is reported as an unexpected EOF with a position, never a clean end.
func TestTruncation(t *testing.T) {
	in := testutil.PV{Pages: 3, Batch: 2}.Stream(t)
	step := 1
	for n := 0; n < len(in); n += step {
		if n > 200 {
			step = 7
		}
		_, err := readAll(in[:n])
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d of %d: err = %v, want io.ErrUnexpectedEOF", n, len(in), err)
		}
		var fe *stream.FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("cut at %d: %T is not a *FormatError", n, err)
		}
		if fe.Offset > int64(n) {
			t.Fatalf("cut at %d: error offset %#x beyond the data", n, fe.Offset)
		}
	}
}

func put32(order stream.ByteOrder, b []byte, off int64, v uint32) { order.PutUint32(b[off:], v) }

// TestCorruption damages one thing at a time and checks the exact error.
func TestCorruption(t *testing.T) {
	le := binary.LittleEndian
	base := testutil.PV{Pages: 8, Batch: 4}.Stream(t)
	recs := records(t, base)
	page := recs[stream.RecPageData][0]
	vcpu := recs[stream.RecX86PVVCPUBasic][0]
	p2m := recs[stream.RecX86PVP2MFrames][0]
	info := recs[stream.RecX86PVInfo][0]
	end := recs[stream.RecEnd][0]
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
		want   string
		is     error
	}{
		{"bad marker", func(b []byte) []byte { b[3] = 0; return b }, "image header at offset 0x0: bad image marker", stream.ErrCorrupt},
		{"version 4", func(b []byte) []byte { b[15] = 4; return b }, "image version 4", stream.ErrUnsupported},
		{"reserved option", func(b []byte) []byte { b[16] = 0x80; return b }, "reserved bits set in image options", stream.ErrCorrupt},
		{"domain type", func(b []byte) []byte { put32(le, b, 24, 7); return b }, "domain header at offset 0x18: unknown domain type 0x7", stream.ErrUnsupported},
		{"page shift", func(b []byte) []byte { b[28] = 13; return b }, "page shift 13", stream.ErrUnsupported},
		{"wrong byte order", func(b []byte) []byte { b[17] = 1; return b }, "domain type 0x1000000, which is x86 PV read in the other byte order", stream.ErrCorrupt},
		{"huge length", func(b []byte) []byte { put32(le, b, page+4, 0xffffff00); return b }, "record 3 (PAGE_DATA) at offset 0x58: body length 4294967040 exceeds the limit", stream.ErrLimit},
		{"count zero", func(b []byte) []byte { put32(le, b, page+8, 0); return b }, "PAGE_DATA count is 0", stream.ErrCorrupt},
		{"count over limit", func(b []byte) []byte { put32(le, b, page+8, 5000); return b }, "PAGE_DATA count 5000 exceeds the limit of 1024", stream.ErrLimit},
		{"page reserved", func(b []byte) []byte { put32(le, b, page+12, 1); return b }, "reserved field set in PAGE_DATA header", stream.ErrCorrupt},
		{"reserved page type", func(b []byte) []byte { b[page+16+7] = 0x50; return b }, "invalid page type 0x5 in pfn[0]", stream.ErrCorrupt},
		{"pfn reserved bits", func(b []byte) []byte { b[page+16+6] = 0x10; return b }, "reserved bits set in pfn[0]", stream.ErrCorrupt},
		{"xtab with data", func(b []byte) []byte { b[page+16+7] = 0xf0; return b }, "PAGE_DATA length 16424, want 8 + 4×8 pfns + 3×4096 pages = 12328", stream.ErrCorrupt},
		{"padding", func(b []byte) []byte { b[info+8+7] = 1; b[info+4] = 7; return b }, "record 0 (X86_PV_INFO) at offset 0x28: padding contains non-zero octets: 01", stream.ErrCorrupt},
		{"short PV info", func(b []byte) []byte { b[info+4] = 7; return b }, "X86_PV_INFO length 7, want 8", stream.ErrCorrupt},
		{"guest width", func(b []byte) []byte { b[info+8] = 5; return b }, "guest width 5", stream.ErrCorrupt},
		{"p2m frame count", func(b []byte) []byte { put32(le, b, p2m+12, 0x1000); return b }, "X86_PV_P2M_FRAMES has 1 frames for pfns 0x0-0x1000, a 64-bit guest needs 9", stream.ErrCorrupt},
		{"vcpu size", func(b []byte) []byte { b[info+8] = 4; b[info+9] = 3; return b }, "vcpu0 basic context is 0x1430 octets, a 32-bit guest's is 0xaf0", stream.ErrCorrupt},
		{"vcpu reserved", func(b []byte) []byte { put32(le, b, vcpu+12, 9); return b }, "reserved field set in X86_PV_VCPU_BASIC", stream.ErrCorrupt},
		{"unknown mandatory", func(b []byte) []byte { put32(le, b, vcpu, 0x7000); return b }, "unknown mandatory record type 0x7000", stream.ErrUnsupported},
		{"missing END", func(b []byte) []byte { return b[:end] }, "stream ends before its END record", io.ErrUnexpectedEOF},
		{"END with body", func(b []byte) []byte { put32(le, b, end+4, 8); return append(b, make([]byte, 8)...) }, "END record with non-zero length 8", stream.ErrCorrupt},
		{"no STATIC_DATA_END", func(b []byte) []byte { put32(le, b, info+16, uint32(stream.RecVerify)); return b }, "X86_PV_P2M_FRAMES before STATIC_DATA_END", stream.ErrCorrupt},
		{"toolstack", func(b []byte) []byte { put32(le, b, vcpu, uint32(stream.RecToolstack)); return b }, "deprecated TOOLSTACK", stream.ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.mutate(bytes.Clone(base))
			_, err := readAll(in)
			if err == nil {
				t.Fatal("damaged stream accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %q is not %v", err, tc.is)
			}
		})
	}
}

// TestOptionalRecordsCarried: an unknown optional record is accepted by
// the verifier and copied through as it is.
func TestOptionalRecordsCarried(t *testing.T) {
	base := testutil.PV{Pages: 4}.Stream(t)
	end := records(t, base)[stream.RecEnd][0]
	opt := make([]byte, 8, 24)
	binary.LittleEndian.PutUint32(opt, 0x80001234)
	binary.LittleEndian.PutUint32(opt[4:], 5)
	opt = append(opt, 'h', 'e', 'l', 'l', 'o', 0, 0, 0)
	in := append(append(bytes.Clone(base[:end]), opt...), base[end:]...)
	types, err := readAll(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := types[len(types)-2]; got != 0x80001234 || !got.Optional() || got.String() != "OPTIONAL_0x80001234" {
		t.Fatalf("optional record read as %v", got)
	}
}

func TestWriterRules(t *testing.T) {
	var buf bytes.Buffer
	w := stream.NewWriter(&buf)
	if err := w.WriteRecord(stream.RecEnd); err == nil {
		t.Fatal("record before headers accepted")
	}
	if err := w.WriteHeaders(stream.NewImageHeader(binary.LittleEndian), stream.DomainHeader{Type: 1, PageShift: 12}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRecord(stream.RecVerify, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 40+8+8 || !bytes.Equal(buf.Bytes()[51:], []byte{0, 0, 0, 0, 0}) {
		t.Fatalf("record not padded to 8 with zeros: % x", buf.Bytes()[40:])
	}
	if err := w.WriteRecord(stream.RecEnd); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRecord(stream.RecEnd); !errors.Is(err, stream.ErrWriterClosed) {
		t.Fatalf("write after END: %v", err)
	}
}

func TestNames(t *testing.T) {
	for typ, want := range map[stream.RecordType]string{
		0: "END", 1: "PAGE_DATA", 0x8: "X86_TSC_INFO", 0x10: "STATIC_DATA_END", 0x12: "X86_MSR_POLICY",
		0x13: "UNKNOWN_0x00000013", 0x80000013: "OPTIONAL_0x80000013",
	} {
		if typ.String() != want {
			t.Errorf("%#x: %q, want %q", uint32(typ), typ.String(), want)
		}
	}
	for pt, want := range map[stream.PageType]string{0: "notab", 0x9: "l1+pin", 0xd: "broken", 0xe: "xalloc", 0xf: "xtab"} {
		if pt.String() != want {
			t.Errorf("%#x: %q, want %q", uint8(pt), pt, want)
		}
	}
	if stream.PageType(5).Valid() || !stream.PageXTab.Valid() || stream.PageXAlloc.HasData() || !stream.PageL4Pin.HasData() {
		t.Error("page type predicates wrong")
	}
}
