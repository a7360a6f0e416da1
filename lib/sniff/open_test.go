package sniff_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/xstream/xstream/lib/compress"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

// walkAll walks every item of an opened input and returns the items seen.
func walkAll(r io.Reader) (*sniff.Input, int, error) {
	in, err := sniff.Open(r)
	if err != nil {
		return nil, 0, err
	}
	defer in.Close()
	wk, err := sniff.NewWalker(in.Source, &sniff.Options{Verify: true})
	if err != nil {
		return in, 0, err
	}
	n := 0
	for {
		if _, err := wk.Next(); err == io.EOF {
			return in, n, nil
		} else if err != nil {
			return in, n, err
		}
		n++
	}
}

// TestOpenCompressed: a compressed stream opens as the stream inside, and
// a damaged or cut one fails the walk with a FormatError.
func TestOpenCompressed(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "golden", "hvm.xl"))
	if err != nil {
		t.Fatal(err)
	}
	_, want, err := walkAll(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []compress.Codec{compress.Zstd, compress.LZ4} {
		var z bytes.Buffer
		w, _ := compress.NewWriter(&z, c, &compress.WriterOptions{ChunkSize: 64 << 10})
		w.Write(raw)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		in, got, err := walkAll(bytes.NewReader(z.Bytes()))
		if err != nil || got != want {
			t.Fatalf("%v: %d items, want %d: %v", c, got, want, err)
		}
		if in.Info.Kind != sniff.XL || in.Compression != c || in.String() != "xl little-endian, "+c.String()+"-compressed" {
			t.Errorf("%v: opened as %v", c, in)
		}
		// Damage in the middle, and a cut that leaves the stream whole but
		// drops the last frame's checksum and check frame.
		mid := bytes.Clone(z.Bytes())
		mid[len(mid)/2] ^= 1
		cut := z.Bytes()[:z.Len()-21]
		for name, bad := range map[string][]byte{"flipped": mid, "cut": cut} {
			_, _, err := walkAll(bytes.NewReader(bad))
			var fe *stream.FormatError
			if !errors.As(err, &fe) {
				t.Errorf("%v %s: %v", c, name, err)
			}
		}
	}
	// Uncompressed input opens as it is.
	if in, got, err := walkAll(bytes.NewReader(raw)); err != nil || got != want || in.Compression != compress.None {
		t.Fatalf("plain: %v %d", err, got)
	}
}
