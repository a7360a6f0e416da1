package compress

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xstream/xstream/lib/stream"
)

func FuzzZstdReader(f *testing.F) { fuzzReader(f, Zstd) }
func FuzzLZ4Reader(f *testing.F)  { fuzzReader(f, LZ4) }

// fuzzLimit bounds the output read per input: a few octets of RLE can
// stand for a great deal.
const fuzzLimit = 8 << 20

// fuzzReader: any input either fails with a FormatError or decompresses
// to the same octets with and without concurrency, and what it
// decompresses to compresses and reads back the same (the Reader and
// Writer agree).
func fuzzReader(f *testing.F, c Codec) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "seeds", "*"+c.Extension()))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(compress(f, c, sample(9000, 9), &WriterOptions{ChunkSize: 4096}))
	f.Fuzz(func(t *testing.T, b []byte) {
		out1, err1 := readLimited(c, b, 1)
		out4, err4 := readLimited(c, b, 4)
		// WriteTo, the path io.Copy takes, agrees with Read.
		if outW, errW := writeToLimited(c, b); err1 != errLong && errW != errLong &&
			((errW == nil) != (err1 == nil) || errW == nil && !bytes.Equal(outW, out1)) {
			t.Fatalf("Read: %v; WriteTo: %v", err1, errW)
		}
		for _, err := range []error{err1, err4} {
			var fe *stream.FormatError
			if err != nil && !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FormatError", err)
			}
		}
		if (err1 == nil) != (err4 == nil) {
			t.Fatalf("concurrency 1: %v; concurrency 4: %v", err1, err4)
		}
		if err1 != nil {
			return
		}
		if !bytes.Equal(out1, out4) {
			t.Fatalf("concurrency 1 and 4 disagree: %d and %d octets", len(out1), len(out4))
		}
		z := compress(t, c, out1, &WriterOptions{ChunkSize: 4096, Concurrency: 2})
		back, err := decompress(c, z, nil)
		if err != nil || !bytes.Equal(back, out1) {
			t.Fatalf("round trip of %d octets: %v", len(out1), err)
		}
	})
}

func readLimited(c Codec, b []byte, conc int) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(b), c, &ReaderOptions{Concurrency: conc})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, fuzzLimit))
	if err == nil && len(out) == fuzzLimit {
		return nil, errLong
	}
	return out, err
}

func writeToLimited(c Codec, b []byte) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(b), c, nil)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var lw limitWriter
	_, err = r.WriteTo(&lw)
	if lw.over {
		return nil, errLong
	}
	return lw.b, err
}

type limitWriter struct {
	b    []byte
	over bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(l.b)+len(p) >= fuzzLimit {
		l.over = true
		return 0, errLong
	}
	l.b = append(l.b, p...)
	return len(p), nil
}

// errLong stands for "too long to compare" and is treated as a failure
// that is not the input's fault.
var errLong = &stream.FormatError{Err: errors.New("output over the fuzz limit")}

func TestSeedsDecode(t *testing.T) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "seeds", "*"))
	if len(seeds) == 0 {
		t.Fatal("no seeds")
	}
	for _, p := range seeds {
		c := Zstd
		if strings.HasSuffix(p, ".lz4") {
			c = LZ4
		}
		b, _ := os.ReadFile(p)
		if _, err := decompress(c, b, nil); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
