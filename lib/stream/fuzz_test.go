package stream_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/stream"
)

// addSeeds adds the raw seed files in testdata/seeds (small generated
// streams, see TestSeedFiles).
func addSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/seeds/*")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// parse reads a whole libxc stream, decoding every body where the type is
// known, and writes it again. It returns the rewrite, or the first error.
func parse(in []byte) ([]byte, error) {
	r := stream.NewReader(bytes.NewReader(in), &stream.Options{MaxRecordLength: 1 << 20})
	ih, dh, err := r.Headers()
	if err != nil {
		return nil, err
	}
	if v, err := stream.NewVerifier(ih, dh); err == nil {
		defer func() { _ = v.End() }()
		_ = v
	}
	var out bytes.Buffer
	w := stream.NewWriter(&out)
	if err := w.WriteHeaders(ih, dh); err != nil {
		return nil, err
	}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		b, err := stream.Decode(rec.Type, rec.Body, r.ByteOrder())
		if err != nil {
			if err := w.Copy(rec); err != nil {
				return nil, err
			}
			continue
		}
		if !bytes.Equal(b.AppendBody(nil, r.ByteOrder()), rec.Body) {
			return nil, errLossy{rec.Type}
		}
		if err := w.Copy(rec); err != nil {
			return nil, err
		}
	}
}

type errLossy struct{ t stream.RecordType }

func (e errLossy) Error() string { return "typed decode of " + e.t.String() + " is lossy" }

// FuzzReader: parse → rewrite → reparse. Whatever parses must rewrite,
// losslessly, to a stream that parses to the same octets; a typed decode
// that accepts a body must encode it back exactly; the verifier must not
// panic.
func FuzzReader(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := parse(in)
		if err != nil {
			if _, lossy := err.(errLossy); lossy {
				t.Fatal(err)
			}
			return
		}
		out2, err := parse(out)
		if err != nil {
			t.Fatalf("rewrite does not parse: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatal("rewrite of the rewrite differs")
		}
		// Verify must not panic either.
		r := stream.NewReader(bytes.NewReader(in), nil)
		ih, dh, err := r.Headers()
		if err != nil {
			return
		}
		v, err := stream.NewVerifier(ih, dh)
		if err != nil {
			return
		}
		for {
			rec, err := r.Next()
			if err != nil {
				return
			}
			if v.Record(rec) != nil {
				return
			}
		}
	})
}

// TestSeedFiles keeps the committed fuzz seeds in step with the
// generator (go test -run TestSeedFiles -update rewrites them).
func TestSeedFiles(t *testing.T) {
	testutil.Golden(t, "testdata/seeds/pv-le.bin", testutil.PV{Pages: 1}.Stream(t))
	testutil.Golden(t, "testdata/seeds/pv-be.bin", testutil.PV{Pages: 2, Batch: 1, Order: binary.BigEndian}.Stream(t))
	testutil.Golden(t, "testdata/seeds/pv-v2.bin", testutil.PV{Pages: 1, Version: 2}.Stream(t))
}
