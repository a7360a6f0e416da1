package sniff_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

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

	// The reader of the output goes away part way through the pages:
	// the walk stops with EPIPE.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	go func() {
		io.CopyN(io.Discard, pr, 200<<10)
		pr.Close()
	}()
	err = forwardWalk(t, pipeFrom(t, in), stream.NewOutput(pw, 64<<10), sniff.Options{Verify: true})
	if !errors.Is(err, syscall.EPIPE) || errors.As(err, &fe) {
		t.Fatalf("output closed: %v, want EPIPE and no FormatError", err)
	}

	// Cut short anywhere, in the pages or after them: a FormatError.
	for _, cut := range []int{len(in) / 2, len(in) - 5000, len(in) - 1} {
		err := forwardWalk(t, pipeFrom(t, in[:cut]), stream.NewOutput(io.Discard, 64<<10), sniff.Options{Verify: true})
		if !errors.As(err, &fe) {
			t.Errorf("cut at %d of %d: %v, want a FormatError", cut, len(in), err)
		}
	}
}

// TestForwardStops: closing the input from another goroutine (what
// xsave does on a signal, so that xl fails and resumes the domain) ends
// a forwarding walk that waits for input, in the pages or in a record
// header, and, when the output is full instead, lets the input's writer
// see a broken pipe at once.
func TestForwardStops(t *testing.T) {
	in := testutil.Framed(t, testutil.PV{Pages: 2048}.Stream(t), nil, []byte(`{"c_info":{"name":"vm"}}`))
	// The offset of the first record after the pages.
	tail := int64(0)
	wk, err := sniff.NewWalker(bytes.NewReader(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	for {
		it, err := wk.Next()
		if err != nil {
			break
		}
		if it.Libxc != nil && it.Libxc.Type == stream.RecPageData {
			tail = it.Offset + it.Size
		}
	}
	stopped := func(what string, done <-chan error) {
		t.Helper()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the walk goes on 5s after its input was closed", what)
		}
	}
	for _, c := range []struct {
		what string
		cut  int64
	}{{"waiting in the pages", int64(len(in) / 2)}, {"waiting in a header", tail + 4}} {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		go pw.Write(in[:c.cut])
		out, _ := testutil.Pipe(t)
		done := make(chan error, 1)
		go func() { done <- forwardWalk(t, pr, stream.NewOutput(out, 64<<10), sniff.Options{Verify: true}) }()
		time.Sleep(200 * time.Millisecond)
		pr.Close()
		stopped(c.what, done)
		pw.Close()
	}

	// The output is never read.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	wrote := make(chan error, 1)
	go func() {
		_, err := pw.Write(in)
		wrote <- err
	}()
	or, ow, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer or.Close()
	defer ow.Close()
	done := make(chan error, 1)
	go func() { done <- forwardWalk(t, pr, stream.NewOutput(ow, 64<<10), sniff.Options{Verify: true}) }()
	time.Sleep(200 * time.Millisecond)
	pr.Close()
	select {
	case err := <-wrote:
		if !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("the input's writer: %v, want EPIPE", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the input's writer is still blocked 5s after the input was closed")
	}
	stopped("output full", done)
}
