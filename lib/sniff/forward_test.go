package sniff_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

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
		for _, from := range []string{"memory", "pipe", "blocking pipe"} {
			for _, to := range []string{"memory", "pipe", "file", "socket"} {
				var r io.Reader = bytes.NewReader(in)
				switch from {
				case "pipe":
					r = pipeFrom(t, in)
				case "blocking pipe": // as standard input is, most often
					f := pipeFrom(t, in)
					f.Fd() // which puts it in blocking mode
					r = f
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
				case "socket":
					// Copied, not spliced: a splice into a socket can
					// block whatever its flags say.
					fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
					if err != nil {
						t.Fatal(err)
					}
					sw, sr := os.NewFile(uintptr(fds[0]), "w"), os.NewFile(uintptr(fds[1]), "r")
					all := make(chan []byte)
					go func() {
						b, _ := io.ReadAll(sr)
						sr.Close()
						all <- b
					}()
					w, got = sw, func() []byte {
						sw.Close()
						return <-all
					}
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
// see a broken pipe at once. Each case closes the input only once the
// walk is seen waiting: all it was given has come out, or the output
// pipe is full.
func TestForwardStops(t *testing.T) {
	in := testutil.Framed(t, testutil.PV{Pages: 2048}.Stream(t), nil, []byte(`{"c_info":{"name":"vm"}}`))
	// Offsets in the first PAGE_DATA record's pages, and of the first
	// record after the pages.
	mid, tail := int64(0), int64(0)
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
			if mid == 0 {
				mid = it.Offset + it.Size/2
			}
			tail = it.Offset + it.Size
		}
	}
	within := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5s", what)
			}
		}
	}
	for _, c := range []struct {
		what      string
		cut, upTo int64 // input given, and what comes out before the walk waits
	}{{"waiting in the pages", mid, mid}, {"waiting in a header", tail + 4, tail}} {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		go pw.Write(in[:c.cut])
		or, ow, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		var got atomic.Int64
		go func() {
			b := make([]byte, 64<<10)
			for {
				n, err := or.Read(b)
				got.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
		done := make(chan error, 1)
		go func() {
			done <- forwardWalk(t, pr, stream.NewOutput(ow, 64<<10), sniff.Options{Verify: true})
		}()
		within(c.what+": the walk forwards what it has", func() bool { return got.Load() >= c.upTo })
		time.Sleep(20 * time.Millisecond)
		pr.Close()
		within(c.what+": the walk stops once its input is closed", func() bool { return len(done) > 0 })
		pw.Close()
		ow.Close()
		or.Close()
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
	within("the output pipe fills", func() bool { return pipeFull(t, ow) })
	time.Sleep(20 * time.Millisecond)
	pr.Close()
	within("the input's writer is told", func() bool { return len(wrote) > 0 })
	if err := <-wrote; !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("the input's writer: %v, want EPIPE", err)
	}
	within("the walk stops with its output full", func() bool { return len(done) > 0 })
}

// pipeFull tells whether the pipe of w holds as much as it can.
func pipeFull(t *testing.T, w *os.File) bool {
	rc, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	full := false
	rc.Control(func(fd uintptr) {
		const fGetPipeSize, fionread = 1032, 0x541B // F_GETPIPE_SZ, FIONREAD
		size, _, e1 := syscall.Syscall(syscall.SYS_FCNTL, fd, fGetPipeSize, 0)
		var n int32
		_, _, e2 := syscall.Syscall(syscall.SYS_IOCTL, fd, fionread, uintptr(unsafe.Pointer(&n)))
		full = e1 == 0 && e2 == 0 && int(n) >= int(size)
	})
	return full
}
