package rewrite

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/sniff"
)

// corpusStreams returns every v2/v3 reference stream of the shared corpus:
// Xen's converter outputs and the real xl save files.
func corpusStreams(t *testing.T) map[string][]byte {
	out := map[string][]byte{}
	for _, p := range testutil.CorpusFiles(t, "legacy", ".v3") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	for name, b := range testutil.XenReal(t) {
		out[name] = b
	}
	return out
}

// TestCorpusRoundTrip: every reference stream verifies, and decoding every
// record into its typed form and encoding it again gives the same octets.
func TestCorpusRoundTrip(t *testing.T) {
	for name, in := range corpusStreams(t) {
		t.Run(name, func(t *testing.T) {
			for _, typed := range []bool{false, true} {
				var out bytes.Buffer
				n, err := Copy(&out, bytes.NewReader(in), &sniff.Options{Verify: true}, &Options{Typed: typed})
				if err != nil {
					t.Fatalf("typed=%v: %v", typed, err)
				}
				if n != int64(len(in)) {
					t.Fatalf("typed=%v: read %d of %d octets", typed, n, len(in))
				}
				if !bytes.Equal(out.Bytes(), in) {
					t.Fatalf("typed=%v: rewrite differs from the input (%d vs %d octets)", typed, out.Len(), len(in))
				}
			}
		})
	}
}

// TestCorpusShortReads reads through a reader that returns one octet at a
// time: pipes deliver data in arbitrary pieces.
func TestCorpusShortReads(t *testing.T) {
	for name, in := range corpusStreams(t) {
		if len(in) > 8<<20 {
			continue // the one-octet reader is slow on the 128 MiB save file
		}
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if _, err := Copy(&out, iotest.OneByteReader(bytes.NewReader(in)), &sniff.Options{Verify: true}, nil); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), in) {
				t.Fatal("rewrite through short reads differs from the input")
			}
		})
	}
}
