package sniff_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"github.com/xstream/xstream/internal/testutil"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xstream/xstream/internal/gen"
	"github.com/xstream/xstream/lib/inspect"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

const goldenDir = "../../testdata/golden"

// Goldens are the streams under testdata/golden: NAME is the stream and
// NAME.txt its xstream-cat listing. Keep each well under 100 KB.
var goldens = []struct {
	name string
	opts gen.Options
}{
	{"pv.libxc", gen.Options{Pages: 16, Seed: 1, Batch: 8, Format: gen.FormatLibxc}},
	{"pv.libxl", gen.Options{Pages: 16, Seed: 2, Batch: 8, Format: gen.FormatLibxl}},
	{"pv.xl", gen.Options{Pages: 16, VCPUs: 2, Seed: 3, Batch: 8, Format: gen.FormatXL}},
	{"pv-be.libxc", gen.Options{Pages: 16, Seed: 1, Batch: 8, Format: gen.FormatLibxc, ByteOrder: binary.BigEndian}},
	{"pv-v2.libxc", gen.Options{Pages: 16, Seed: 4, Batch: 8, Format: gen.FormatLibxc, Version: stream.Version2}},
	{"hvm.libxc", gen.Options{Type: stream.DomainX86HVM, Pages: 8, Seed: 5, Batch: 8, Format: gen.FormatLibxc, Hole: &gen.Hole{Start: 4, Len: 2}}},
	{"hvm.libxl", gen.Options{Type: stream.DomainX86HVM, Pages: 8, Seed: 6, Batch: 8, Format: gen.FormatLibxl}},
	{"hvm.xl", gen.Options{Type: stream.DomainX86HVM, Pages: 8, VCPUs: 2, Seed: 7, Batch: 8, Format: gen.FormatXL, Hole: &gen.Hole{Start: 4, Len: 2}}},
	{"hvm-checkpoint.libxl", gen.Options{Type: stream.DomainX86HVM, Pages: 8, Seed: 8, Batch: 8, Format: gen.FormatLibxl, Checkpoints: 2}},
}

// TestGolden regenerates each golden stream and checks it octet for
// octet against the file, verifies it, and checks its listing. With
// -update it rewrites both files instead.
func TestGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := gen.Write(&b, g.opts); err != nil {
				t.Fatal(err)
			}
			listing, err := listStream(b.Bytes())
			if err != nil {
				t.Fatalf("the generated stream does not verify: %v", err)
			}
			path := filepath.Join(goldenDir, g.name)
			if testutil.Update() {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path+".txt", []byte(listing), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			file, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./lib/sniff -run TestGolden -update)", err)
			}
			if !bytes.Equal(file, b.Bytes()) {
				i := 0
				for i < min(len(file), b.Len()) && file[i] == b.Bytes()[i] {
					i++
				}
				t.Fatalf("generated stream (%d octets) differs from %s (%d octets) at offset %#x", b.Len(), path, len(file), i)
			}
			want, err := os.ReadFile(path + ".txt")
			if err != nil {
				t.Fatal(err)
			}
			if listing != string(want) {
				t.Errorf("listing differs from %s.txt:\n%s", path, diffLines(string(want), listing))
			}
		})
	}
}

// listStream verifies s and returns its xstream-cat listing.
func listStream(s []byte) (string, error) {
	wk, err := sniff.NewWalker(bytes.NewReader(s), &sniff.Options{Verify: true})
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for {
		it, err := wk.Next()
		if errors.Is(err, io.EOF) {
			return out.String(), nil
		}
		if err != nil {
			return out.String(), err
		}
		out.WriteString(inspect.Line(it))
		out.WriteByte('\n')
	}
}

// diffLines shows the lines of got that differ from want.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			out.WriteString("-" + a + "\n+" + b + "\n")
		}
	}
	return out.String()
}
