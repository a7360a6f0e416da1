package stream_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/stream"
)

// list reads every record and returns "type offset length skipped"
// strings, and the first error.
func list(r io.Reader, skip bool) ([]string, error) {
	rd := stream.NewReader(r, &stream.Options{SkipPageData: skip})
	ih, dh, err := rd.Headers()
	if err != nil {
		return nil, err
	}
	v, err := stream.NewVerifier(ih, dh)
	if err != nil {
		return nil, err
	}
	var out []string
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if err := v.Record(rec); err != nil {
			return out, err
		}
		out = append(out, rec.Type.String(), string(rune(rec.Offset)), string(rune(len(rec.Body)+rec.Skipped)), string(rune(rec.WireSize())))
	}
}

// sources gives the same octets as a plain reader, a regular file (Skip
// seeks) and a pipe (Skip splices into /dev/null).
func sources(t *testing.T, in []byte) map[string]func() io.Reader {
	path := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(path, in, 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]func() io.Reader{
		"reader": func() io.Reader { return bytes.NewReader(in) },
		"file": func() io.Reader {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		},
		"pipe": func() io.Reader {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			go func() { pw.Write(in); pw.Close() }()
			t.Cleanup(func() { pr.Close() })
			return pr
		},
	}
}

// TestSkipPageData: skipping pages gives the same records, offsets and
// lengths, and the same verdict, from every kind of source.
func TestSkipPageData(t *testing.T) {
	in := testutil.PV{Pages: 3000, Batch: 700}.Stream(t)
	want, err := list(bytes.NewReader(in), false)
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range sources(t, in) {
		got, err := list(src(), true)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d records, want %d", name, len(got)/4, len(want)/4)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: record %d differs", name, i/4)
			}
		}
	}
	// Cut inside a skipped page: an unexpected EOF from every source.
	cut := in[:len(in)/2]
	for name, src := range sources(t, cut) {
		if _, err := list(src(), true); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%s: cut stream: %v", name, err)
		}
	}
	// A page type without data, its page still there: the length check
	// still sees it.
	bad := bytes.Clone(in)
	off := records(t, in)[stream.RecPageData][0]
	bad[off+16+7] = 0xf0 // pfn[0] becomes XTAB
	for name, src := range sources(t, bad) {
		if _, err := list(src(), true); !errors.Is(err, stream.ErrCorrupt) {
			t.Fatalf("%s: XTAB with a page: %v", name, err)
		}
	}
}

func TestSourceUnread(t *testing.T) {
	src := stream.NewSource(bytes.NewReader([]byte("0123456789")), 0)
	head := make([]byte, 4)
	if err := src.ReadFull(head); err != nil {
		t.Fatal(err)
	}
	src.Unread(head)
	if src.Offset() != 0 {
		t.Fatalf("offset %d after Unread", src.Offset())
	}
	if b, _ := src.Peek(6); string(b) != "012345" {
		t.Fatalf("Peek across the unread prefix: %q", b)
	}
	if err := src.Skip(2); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(src)
	if string(rest) != "23456789" || src.Offset() != 10 {
		t.Fatalf("read %q, offset %d", rest, src.Offset())
	}
}

// TestOutputSpliceFrom: into a pipe, SpliceFrom moves a file's octets
// from an offset, after what the Output had buffered, and stops at the
// file's end; into anything else it moves nothing and the caller copies.
func TestOutputSpliceFrom(t *testing.T) {
	content := make([]byte, 300<<10)
	for i := range content {
		content[i] = byte(i * 31 >> 8)
	}
	name := filepath.Join(t.TempDir(), "mem")
	if err := os.WriteFile(name, content, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	pw, got := testutil.Pipe(t)
	out := stream.NewOutput(pw, 4096)
	out.WriteString("head")
	n, err := out.SpliceFrom(f, 1000, 200<<10)
	if err != nil || n != 200<<10 {
		t.Fatalf("SpliceFrom into a pipe: %d, %v; want %d", n, err, 200<<10)
	}
	// Past the end of the file it moves what there is.
	n2, err := out.SpliceFrom(f, int64(len(content))-10, 4096)
	if err != nil || n2 != 10 {
		t.Fatalf("SpliceFrom at the end of the file: %d, %v; want 10", n2, err)
	}
	out.Flush()
	want := append([]byte("head"), content[1000:1000+200<<10]...)
	want = append(want, content[len(content)-10:]...)
	if b := got(); !bytes.Equal(b, want) {
		t.Fatalf("the pipe carried %d octets, not the %d expected", len(b), len(want))
	}

	var buf bytes.Buffer
	out = stream.NewOutput(&buf, 4096)
	if n, err := out.SpliceFrom(f, 0, 4096); n != 0 || err != nil {
		t.Fatalf("SpliceFrom into a buffer: %d, %v; want 0, nil", n, err)
	}
}

// TestSkipFileReadsLittle: past a seek, a Source over a file reads what
// the next record needs, not a whole buffer of the pages after it, and
// still reads the file right.
func TestSkipFileReadsLittle(t *testing.T) {
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 7 >> 3)
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src := stream.NewSource(f, 0)
	var b [8]byte
	for _, at := range []int64{1 << 20, 2<<20 + 12345, 3 << 20} {
		if err := src.Skip(at - src.Offset()); err != nil {
			t.Fatal(err)
		}
		if err := src.ReadFull(b[:]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b[:], data[at:at+8]) {
			t.Fatalf("at %d: read %x, want %x", at, b, data[at:at+8])
		}
		pos, _ := f.Seek(0, io.SeekCurrent)
		if read := pos - at; read > 64<<10 {
			t.Fatalf("at %d: the file was read %d octets ahead after a seek", at, read)
		}
	}
	rest, err := io.ReadAll(src)
	if err != nil || !bytes.Equal(rest, data[3<<20+8:]) {
		t.Fatalf("the rest: %d octets, %v", len(rest), err)
	}
}

// A PAGE_DATA count whose eight times overflows a 32-bit int (0x10000000
// pfns) is an error, not a panic, when pages are skipped: run on 386 by
// make test-cross.
func TestSkipHugeCount(t *testing.T) {
	var buf bytes.Buffer
	w := stream.NewWriter(&buf)
	if err := w.WriteHeaders(stream.NewImageHeader(binary.LittleEndian), stream.DomainHeader{Type: stream.DomainX86PV, PageShift: 12, XenMajor: 4, XenMinor: 17}); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	b := le.AppendUint32(buf.Bytes(), uint32(stream.RecPageData))
	b = le.AppendUint32(b, 16)         // length
	b = le.AppendUint32(b, 0x10000000) // count
	b = le.AppendUint32(b, 0)
	b = append(b, make([]byte, 8)...)
	rd := stream.NewReader(bytes.NewReader(b), &stream.Options{SkipPageData: true})
	if _, _, err := rd.Headers(); err != nil {
		t.Fatal(err)
	}
	rec, err := rd.Next()
	if err == nil {
		_, err = stream.Decode(rec.Type, rec.Body, le)
	}
	if err == nil || err == io.EOF {
		t.Fatalf("error %v, want one", err)
	}
}
