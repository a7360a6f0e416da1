package sniff_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/xstream/xstream/internal/gen"
	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/rewrite"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

// forwardWalk walks r with its pages skipped, forwarding it to out, and
// returns the walk's error (nil at a clean end).
func forwardWalk(t *testing.T, r io.Reader, out *stream.Output, opts sniff.Options) error {
	t.Helper()
	opts.SkipPageData = true
	wk, err := sniff.NewWalker(r, &opts)
	if err != nil {
		return err
	}
	if err := wk.Forward(out); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := wk.Next(); err != nil {
			if err == io.EOF {
				return out.Flush()
			}
			return err
		}
	}
}

// pipeFrom returns the read end of a pipe that b is written into.
func pipeFrom(t *testing.T, b []byte) *os.File {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		pw.Write(b)
		pw.Close()
	}()
	t.Cleanup(func() { pr.Close() })
	return pr
}

// TestForwardCopies: a forwarding walk that skips the pages writes the
// input octet for octet, from memory or a pipe, into memory, a pipe or a
// file; with CHECKSUM records (which are read, not spliced) too.
func TestForwardCopies(t *testing.T) {
	var xlStream bytes.Buffer
	if err := gen.Write(&xlStream, gen.Options{Pages: 3000, Format: gen.FormatXL, Batch: 1024}); err != nil {
		t.Fatal(err)
	}
	var summed bytes.Buffer
	if _, err := rewrite.Copy(&summed, bytes.NewReader(xlStream.Bytes()), nil, &rewrite.Options{Checksum: true, ChecksumInterval: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]byte{"xl": xlStream.Bytes(), "checksummed": summed.Bytes()}
	for name, in := range inputs {
		for _, from := range []string{"memory", "pipe"} {
			for _, to := range []string{"memory", "pipe", "file"} {
				var r io.Reader = bytes.NewReader(in)
				if from == "pipe" {
					r = pipeFrom(t, in)
				}
				var (
					got func() []byte
					w   io.Writer
				)
				switch to {
				case "memory":
					var b bytes.Buffer
					w, got = &b, b.Bytes
				case "pipe":
					w, got = testutil.Pipe(t)
				case "file":
					f, err := os.Create(filepath.Join(t.TempDir(), "out"))
					if err != nil {
						t.Fatal(err)
					}
					w = f
					got = func() []byte {
						f.Close()
						b, _ := os.ReadFile(f.Name())
						return b
					}
				}
				err := forwardWalk(t, r, stream.NewOutput(w, 64<<10), sniff.Options{Verify: true})
				if err != nil {
					t.Fatalf("%s from %s to %s: %v", name, from, to, err)
				}
				if b := got(); !bytes.Equal(b, in) {
					t.Errorf("%s from %s to %s: %d octets out, %d in, or different", name, from, to, len(b), len(in))
				}
			}
		}
	}
}

// TestForwardErrors: a broken stream still fails as a stream (with its
// record), and a write that fails is the walk's error, not the stream's.
func TestForwardErrors(t *testing.T) {
	in := testutil.Framed(t, testutil.PV{Pages: 2048}.Stream(t), nil, []byte(`{"c_info":{"name":"vm"}}`))
	bad := bytes.Clone(in)
	bad[len(bad)-4] ^= 0x40 // the length of the last record, libxl END
	err := forwardWalk(t, pipeFrom(t, bad), stream.NewOutput(io.Discard, 64<<10), sniff.Options{Verify: true})
	var fe *stream.FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("a flipped bit near the end: %v, want a FormatError", err)
	}

	// The reader of the output goes away: the walk stops with EPIPE.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close()
	defer pw.Close()
	err = forwardWalk(t, pipeFrom(t, in), stream.NewOutput(pw, 4096), sniff.Options{Verify: true})
	if !errors.Is(err, syscall.EPIPE) || errors.As(err, &fe) {
		t.Fatalf("output closed: %v, want EPIPE and no FormatError", err)
	}
}
