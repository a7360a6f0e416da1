package integrity_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/digest"
	"github.com/xstream/xstream/lib/integrity"
	"github.com/xstream/xstream/lib/rewrite"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

// framings returns one small domain in each framing and byte order.
func framings(t *testing.T) map[string][]byte {
	libxc := testutil.PV{Pages: 12, Batch: 5}.Stream(t)
	be := testutil.PV{Pages: 12, Batch: 5, Order: binary.BigEndian}.Stream(t)
	v2 := testutil.PV{Pages: 12, Batch: 5, Version: 2}.Stream(t)
	ckpt, err := os.ReadFile(filepath.Join("..", "..", "testdata", "golden", "hvm-checkpoint.libxl"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		// libxl records between the libxc stream's checkpoints, covered
		// by the CHECKSUM records around them.
		"libxl-checkpoints": ckpt,
		"libxc":             libxc,
		"libxc-be":          be,
		"libxc-v2":          v2,
		"libxl":             testutil.Framed(t, libxc, []byte("qemu state"), nil),
		"xl":                testutil.Framed(t, libxc, []byte("qemu state"), []byte(`{"c_info":{"name":"a"}}`)),
		"xl-be":             testutil.Framed(t, be, nil, []byte(`{"c_info":{"name":"a"}}`)),
	}
}

// checksummed rewrites in with CHECKSUM records every interval octets.
func checksummed(t *testing.T, in []byte, interval int64) []byte {
	t.Helper()
	var out bytes.Buffer
	if _, err := rewrite.Copy(&out, bytes.NewReader(in), nil, &rewrite.Options{Checksum: true, ChecksumInterval: interval}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// walk reads every item of in, verifying, and returns the digest and the
// CHECKSUM records verified.
func walk(in []byte) (string, int, error) {
	wk, err := sniff.NewWalker(bytes.NewReader(in), &sniff.Options{Verify: true})
	if err != nil {
		return "", 0, err
	}
	d := digest.New()
	defer d.Close()
	for {
		it, err := wk.Next()
		if err == io.EOF {
			n, _ := wk.Checksums()
			sum, err := d.Sum()
			return sum, n, err
		}
		if err != nil {
			return "", 0, err
		}
		if err := d.Add(it); err != nil {
			return "", 0, err
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for name, in := range framings(t) {
		want, n, err := walk(in)
		if err != nil || n != 0 {
			t.Fatalf("%s: %v, %d checksums", name, err, n)
		}
		for _, interval := range []int64{1, 5000, 1 << 30} {
			ck := checksummed(t, in, interval)
			got, n, err := walk(ck)
			if err != nil {
				t.Fatalf("%s, interval %d: %v", name, interval, err)
			}
			if got != want {
				t.Errorf("%s: the checksummed stream's digest differs", name)
			}
			// At least the one after the headers, the one before END and
			// the TAIL.
			if n < 3 || interval == 1 && n < 10 {
				t.Errorf("%s, interval %d: %d CHECKSUM records", name, interval, n)
			}
			// Checksumming again replaces the records: the same octets.
			if again := checksummed(t, ck, interval); !bytes.Equal(again, ck) {
				t.Errorf("%s: checksumming a checksummed stream changed it", name)
			}
			// Without checksums, rewriting gives the input back exactly.
			var plain bytes.Buffer
			if _, err := rewrite.Copy(&plain, bytes.NewReader(in), nil, nil); err != nil || !bytes.Equal(plain.Bytes(), in) {
				t.Errorf("%s: plain rewrite: %v", name, err)
			}
		}
	}
}

// pageData returns, for each octet of a stream, whether it is opaque
// content: page data, and the bodies of other records past their first 64
// octets (vCPU contexts, shared info, emulator state). That is the bulk
// of a stream, where every octet is alike to the checksum (CRC32C detects
// every single-bit error there by construction). Tests flip every bit
// elsewhere and a sample of these.
func pageData(t *testing.T, in []byte) []bool {
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
		var body []byte
		switch it.Kind {
		case sniff.LibxcRecord:
			body = it.Libxc.Body
		case sniff.LibxlRecord:
			body = it.Libxl.Body
		}
		skip := 64
		if it.Kind == sniff.LibxcRecord && it.Libxc.Type == stream.RecPageData {
			var pd stream.PageData
			if err := pd.Decode(body, it.Order); err != nil {
				t.Fatal(err)
			}
			skip = len(body) - len(pd.Data)
		}
		for i := skip; i < len(body); i++ {
			bulk[int(it.Offset)+stream.RecordHeaderSize+i] = true
		}
	}
}

// check reads every item of in, verifying.
func check(in []byte) error {
	wk, err := sniff.NewWalker(bytes.NewReader(in), &sniff.Options{Verify: true})
	if err != nil {
		return err
	}
	for {
		if _, err := wk.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// TestEveryBitFlip: one flipped bit anywhere in a checksummed stream makes
// reading it fail with a stream error (exit status 3 in the commands):
// every bit outside page contents, every 61st inside them.
func TestEveryBitFlip(t *testing.T) {
	for name, in := range framings(t) {
		if name == "libxc-be" || name == "libxl-checkpoints" {
			continue // the same code paths as others; keep the test quick
		}
		ck := checksummed(t, in, 20000)
		bulk := pageData(t, ck)
		passed := 0
		for i := 0; i < 8*len(ck); i += testutil.FlipStride() {
			if bulk[i/8] && i%61 != 0 {
				continue
			}
			bad := bytes.Clone(ck)
			bad[i/8] ^= 1 << (i % 8)
			err := check(bad)
			if err == nil {
				passed++
				if passed < 5 {
					t.Errorf("%s: bit %d of octet %#x flipped: read without error", name, i%8, i/8)
				}
				continue
			}
			var fe *stream.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%s: flip at %#x: %v is not a FormatError", name, i/8, err)
			}
		}
		if passed > 0 {
			t.Errorf("%s: %d of %d flips passed", name, passed, 8*len(ck))
		}
	}
}

// TestErrorNamesTheRange: a damaged page fails at the next CHECKSUM
// record, and the error names the range it covers.
func TestErrorNamesTheRange(t *testing.T) {
	in := framings(t)["xl"]
	ck := checksummed(t, in, 30000)
	bad := bytes.Clone(ck)
	at := len(bad) / 2
	bad[at] ^= 4
	_, _, err := walk(bad)
	var fe *stream.FormatError
	if !errors.As(err, &fe) || fe.Type != "CHECKSUM" || !errors.Is(err, stream.ErrCorrupt) {
		t.Fatalf("got %v", err)
	}
	var lo, hi int
	if _, err := fmt.Sscanf(err.Error()[strings.Index(err.Error(), "octets 0x"):], "octets %v-%v", &lo, &hi); err != nil {
		t.Fatalf("no range in %q: %v", fe.Error(), err)
	}
	if at < lo || at > hi || hi+1 != int(fe.Offset) {
		t.Fatalf("flip at %#x, error %v", at, fe)
	}
	t.Log(err)
}

// TestTruncated: a checksummed stream cut anywhere fails.
func TestTruncated(t *testing.T) {
	ck := checksummed(t, framings(t)["libxl"], 20000)
	bulk := pageData(t, ck)
	for n := 0; n < len(ck); n++ {
		if bulk[n] && n%97 != 0 {
			continue
		}
		if err := check(ck[:n]); err == nil {
			t.Fatalf("cut at %d of %d: no error", n, len(ck))
		}
	}
}

// TestRecordChecks: each field of a CHECKSUM record is checked.
func TestRecordChecks(t *testing.T) {
	o := binary.LittleEndian
	good := integrity.Checksum{Algorithm: integrity.AlgCRC32C, Start: 8, Length: 16, Value: 0xdeadbeef}
	if c, err := integrity.Decode(good.AppendBody(nil, o), o); err != nil || c != good {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []integrity.Checksum{
		{Algorithm: 2},
		{Algorithm: 1, Flags: 2},
		{Algorithm: 1, Value: 1 << 32},
		{Algorithm: 1, Start: 1 << 63},
	} {
		if _, err := integrity.Decode(bad.AppendBody(nil, o), o); !errors.Is(err, stream.ErrCorrupt) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if _, err := integrity.Decode(make([]byte, 31), o); err == nil {
		t.Error("short body accepted")
	}
	if got := integrity.RecChecksum.String(); got != "CHECKSUM" || !integrity.RecChecksum.Optional() {
		t.Errorf("%s", got)
	}
}

// TestWriterMisuse: a stream cut before its END cannot be closed as if
// complete.
func TestWriterMisuse(t *testing.T) {
	w := integrity.NewWriter(io.Discard, 0)
	w.SetOrder(binary.LittleEndian)
	w.Write([]byte("abc"))
	if err := w.Mark(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close without BeginTail accepted")
	}
}

// TestFirstRecordDecides: a stream has checksums only when its first
// libxc record is a CHECKSUM record; one whose first CHECKSUM record is
// gone (the later ones still there) is corrupt, not unchecked.
func TestFirstRecordDecides(t *testing.T) {
	for _, name := range []string{"libxc", "xl"} {
		ck := checksummed(t, framings(t)[name], 20000)
		wk, err := sniff.NewWalker(bytes.NewReader(ck), nil)
		if err != nil {
			t.Fatal(err)
		}
		first := int64(-1)
		for first < 0 {
			it, err := wk.Next()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if it.Kind == sniff.LibxcRecord {
				if it.Libxc.Type != integrity.RecChecksum {
					t.Fatalf("%s: the first libxc record is %v, not CHECKSUM", name, it.Libxc.Type)
				}
				first = it.Offset
			}
		}
		cut := append(bytes.Clone(ck[:first]), ck[first+integrity.WireSize:]...)
		err = check(cut)
		if !errors.Is(err, stream.ErrCorrupt) || !strings.Contains(err.Error(), "does not begin with one") {
			t.Errorf("%s without its first CHECKSUM record: %v", name, err)
		}
	}
}
