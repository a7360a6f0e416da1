package compress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/stream"
)

// sample returns n octets shaped like guest memory: runs of zero pages,
// repeated pages, text and random pages.
func sample(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, 0, n)
	words := []string{"xen ", "domain ", "page ", "stream ", "kernel ", "memory ", "\n"}
	tmpl := make([]byte, 4096)
	for i := range tmpl {
		tmpl[i] = byte(i * 7)
	}
	for len(b) < n {
		page := make([]byte, 4096)
		switch r.IntN(4) {
		case 1:
			copy(page, tmpl)
		case 2:
			for j := 0; j < len(page); {
				j += copy(page[j:], words[r.IntN(len(words))])
			}
		case 3:
			for j := range page {
				page[j] = byte(r.Uint32())
			}
		}
		b = append(b, page...)
	}
	return b[:n]
}

func compress(t testing.TB, c Codec, in []byte, opts *WriterOptions) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Uneven writes, so chunks straddle them.
	for p := in; len(p) > 0; {
		k := min(len(p), 1+len(p)%70001)
		if _, err := w.Write(p[:k]); err != nil {
			t.Fatal(err)
		}
		p = p[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Written() != int64(out.Len()) {
		t.Fatalf("Written %d, wrote %d", w.Written(), out.Len())
	}
	return out.Bytes()
}

func decompress(c Codec, in []byte, opts *ReaderOptions) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(in), c, opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// decompressTo reads through WriteTo, the path io.Copy takes.
func decompressTo(c Codec, in []byte, opts *ReaderOptions) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(in), c, opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out bytes.Buffer
	_, err = io.Copy(&out, r)
	return out.Bytes(), err
}

func TestRoundTrip(t *testing.T) {
	big := sample(DefaultChunkSize+123, 1) // two frames at the default chunk size
	small := sample(300<<10+5, 2)
	for _, tc := range []struct {
		c      Codec
		levels []int
	}{
		{Zstd, []int{1, 2, 3, 5, 7, 12, 19, 22}},
		{LZ4, []int{1, 2, 3, 6, 9, 12}},
	} {
		for _, level := range tc.levels {
			in := big
			if level > 3 {
				in = small // the slow levels on less
			}
			for _, opts := range []WriterOptions{
				{Level: level, Concurrency: 1},
				{Level: level, Concurrency: 3, ChunkSize: 64 << 10},
			} {
				name := fmt.Sprintf("%v/%+v", tc.c, opts)
				z := compress(t, tc.c, in, &opts)
				for _, rc := range []int{1, 4} {
					read := decompress
					if rc == 4 {
						read = decompressTo
					}
					got, err := read(tc.c, z, &ReaderOptions{Concurrency: rc})
					if err != nil {
						t.Fatalf("%s: read with concurrency %d: %v", name, rc, err)
					}
					if !bytes.Equal(got, in) {
						t.Fatalf("%s: %d octets back, want %d, or different", name, len(got), len(in))
					}
				}
				if len(z) >= len(in)*3/4 {
					t.Errorf("%s: %d octets compressed to %d", name, len(in), len(z))
				}
			}
		}
	}
}

func TestEmptyAndTiny(t *testing.T) {
	for _, c := range []Codec{Zstd, LZ4} {
		for _, in := range [][]byte{nil, {1}, make([]byte, DefaultChunkSize)} {
			z := compress(t, c, in, nil)
			if len(z) == 0 {
				t.Fatalf("%v: no frame for %d octets", c, len(in))
			}
			got, err := decompress(c, z, nil)
			if err != nil || !bytes.Equal(got, in) {
				t.Fatalf("%v: %d octets: %v", c, len(in), err)
			}
		}
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []WriterOptions{{Level: 23}, {Level: -1}, {Concurrency: -1}, {ChunkSize: MaxChunkSize + 1}} {
		if _, err := NewWriter(io.Discard, Zstd, &o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if _, err := NewWriter(io.Discard, LZ4, &WriterOptions{Level: 13}); err == nil {
		t.Error("lz4 level 13 accepted")
	}
	if _, err := NewWriter(io.Discard, None, nil); err == nil {
		t.Error("codec None accepted")
	}
	for s, want := range map[string]Codec{"zstd": Zstd, "LZ4": LZ4, "none": None} {
		if c, err := ParseCodec(s); err != nil || c != want {
			t.Errorf("ParseCodec(%q) = %v, %v", s, c, err)
		}
	}
	if _, err := ParseCodec("gzip"); err == nil {
		t.Error("gzip accepted")
	}
}

// tool returns the path of a command-line tool, skipping the test
// without it (failing in CI, which installs them).
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; CI must have it (.ci/run installs it)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

func run(t *testing.T, in []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, stderr.String())
	}
	return out
}

// TestInterop: the command-line tools decompress our output, and we
// decompress theirs.
func TestInterop(t *testing.T) {
	in := sample(3<<20+77, 3)
	for _, tc := range []struct {
		c      Codec
		tool   string
		theirs [][]string
	}{
		{Zstd, "zstd", [][]string{{"-1", "-T0"}, {"-3"}, {"-19"}, {"--no-check", "-1"}, {"-1", "--no-content-size"}}},
		{LZ4, "lz4", [][]string{{"-1"}, {"-9"}, {"-BD", "-1"}, {"-B4", "--content-size"}, {"--no-frame-crc", "-1"}, {"-BX", "-1"}}},
	} {
		path := tool(t, tc.tool)
		for _, level := range []int{1, 3} {
			z := compress(t, tc.c, in, &WriterOptions{Level: level, ChunkSize: 1 << 20})
			if got := run(t, z, path, "-dc"); !bytes.Equal(got, in) {
				t.Errorf("%s -dc of our level %d output: %d octets differ", tc.tool, level, len(got))
			}
			run(t, z, path, "-t") // its integrity test, checksums included
		}
		for _, args := range tc.theirs {
			z := run(t, in, path, append(append([]string{"-c", "-q"}, args...), "-")...)
			for _, rc := range []int{1, 4} {
				got, err := decompress(tc.c, z, &ReaderOptions{Concurrency: rc})
				if err != nil || !bytes.Equal(got, in) {
					t.Errorf("reading %s %v output: %v", tc.tool, args, err)
				}
			}
		}
		// Concatenated files are one stream for the tools and for us.
		z := append(run(t, in[:1000], path, "-c", "-q", "-"), compress(t, tc.c, in[1000:], nil)...)
		if got, err := decompress(tc.c, z, nil); err != nil || !bytes.Equal(got, in) {
			t.Errorf("%v: concatenated: %v", tc.c, err)
		}
	}
}

// TestEveryBitFlip: a single flipped bit anywhere in our output makes
// reading it fail, for both codecs, with and without concurrency.
func TestEveryBitFlip(t *testing.T) {
	in := sample(3000, 4) // three frames of 1500 octets, the last zeros
	in = append(in, bytes.Repeat([]byte{0}, 1500)...)
	for _, c := range []Codec{Zstd, LZ4} {
		z := compress(t, c, in, &WriterOptions{ChunkSize: 1500, Concurrency: 2})
		passed := 0
		for i := 0; i < 8*len(z); i += testutil.FlipStride() {
			bad := bytes.Clone(z)
			bad[i/8] ^= 1 << (i % 8)
			read := decompress
			if i%3 == 1 {
				read = decompressTo
			}
			got, err := read(c, bad, &ReaderOptions{Concurrency: 1 + i%2})
			if err == nil {
				passed++
				if passed <= 5 {
					t.Errorf("%v: bit %d of octet %#x flipped: read without error (%d octets, equal %v)", c, i%8, i/8, len(got), bytes.Equal(got, in))
				}
				continue
			}
			var fe *stream.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%v: flip at octet %#x: %v is not a FormatError", c, i/8, err)
			}
		}
		if passed > 0 {
			t.Errorf("%v: %d of %d flips passed", c, passed, 8*len(z))
		}
	}
}

// TestTruncated: a compressed stream cut anywhere but between two frames
// fails with a FormatError. Cut between frames, it is a valid compressed
// stream of a prefix of the input (the stream inside then stops early,
// which its own reader notices).
func TestTruncated(t *testing.T) {
	in := sample(20<<10, 5)
	for _, c := range []Codec{Zstd, LZ4} {
		z := compress(t, c, in, &WriterOptions{ChunkSize: 8 << 10})
		// Octets after which the scanner is between frames.
		ends := map[int]bool{}
		s := newScanner(c)
		for i := range z {
			s.scan(z[i : i+1])
			if s.between && s.nacc == 0 && s.skip == 0 && !s.pending {
				ends[i+1] = true
			}
		}
		for n := 1; n < len(z); n++ {
			read := decompress
			if n%2 == 1 {
				read = decompressTo
			}
			got, err := read(c, z[:n], nil)
			if ends[n] {
				if err != nil || !bytes.HasPrefix(in, got) {
					t.Fatalf("%v: cut between frames at %d: %v", c, n, err)
				}
				continue
			}
			var fe *stream.FormatError
			if err == nil || !errors.As(err, &fe) || !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, stream.ErrCorrupt) {
				t.Fatalf("%v: cut at %d of %d: %v", c, n, len(z), err)
			}
		}
	}
}

// TestErrorsNameTheFrame: a corrupt frame is named with its compressed
// offset; an I/O error of the input passes through as it is.
func TestErrorsNameTheFrame(t *testing.T) {
	in := sample(64<<10, 6)
	z := compress(t, Zstd, in, &WriterOptions{ChunkSize: 16 << 10, Concurrency: 1})
	// The start of the third frame.
	starts := frameStarts(t, Zstd, z)
	if len(starts) != 4 {
		t.Fatalf("%d frames", len(starts))
	}
	bad := bytes.Clone(z)
	bad[starts[3]-checkFrameSize-1] ^= 0x40 // the checksum of frame 2
	_, err := decompress(Zstd, bad, &ReaderOptions{Concurrency: 1})
	var fe *stream.FormatError
	if !errors.As(err, &fe) || fe.Offset != int64(starts[2]) || fe.Type != "frame 2" || !errors.Is(err, stream.ErrCorrupt) {
		t.Fatalf("got %v, want frame 2 at %#x", err, starts[2])
	}
	t.Log(err)

	// A damaged check frame belongs to the frame after it; junk after
	// the last frame is named as such.
	bad = bytes.Clone(z)
	check := starts[2] - checkFrameSize
	bad[check+9] ^= 2 // its signature
	_, err = decompress(Zstd, bad, &ReaderOptions{Concurrency: 1})
	if !errors.As(err, &fe) || fe.Offset != int64(check) || fe.Type != "frame 2" || !strings.Contains(err.Error(), "damaged check frame") {
		t.Fatalf("got %v, want frame 2's check frame at %#x", err, check)
	}
	_, err = decompress(Zstd, append(bytes.Clone(z), 0), &ReaderOptions{Concurrency: 1})
	if !errors.As(err, &fe) || fe.Offset != int64(len(z)) || !strings.Contains(err.Error(), "1 octets after the last frame") {
		t.Fatalf("junk after the last frame: %v", err)
	}

	ioErr := errors.New("disk on fire")
	r, _ := NewReader(io.MultiReader(bytes.NewReader(z[:100]), errReader{ioErr}), Zstd, nil)
	defer r.Close()
	_, err = io.ReadAll(r)
	if !errors.Is(err, ioErr) || errors.As(err, &fe) {
		t.Fatalf("I/O error came back as %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func frameStarts(t *testing.T, c Codec, z []byte) []int {
	s := newScanner(c)
	var starts []int
	for i := range z {
		if err := s.scan(z[i : i+1]); err != nil {
			t.Fatal(err)
		}
		if s.nframe > len(starts) {
			starts = append(starts, int(s.cur.off))
		}
	}
	return starts
}

// TestScannerStrict: what the scanner refuses that a decoder might not.
func TestScannerStrict(t *testing.T) {
	z := compress(t, Zstd, sample(5000, 7), nil)
	bad := bytes.Clone(z)
	bad[checkFrameSize+4] |= 1 << 4 // the frame header's unused bit, which decoders ignore
	if _, err := decompress(Zstd, bad, nil); err == nil {
		t.Error("unused bit accepted")
	}
	// A check frame must be followed by its frame.
	if _, err := decompress(Zstd, z[:checkFrameSize], nil); err == nil {
		t.Error("a lone check frame accepted")
	}
	twice := append(bytes.Clone(z[:checkFrameSize]), z...)
	if _, err := decompress(Zstd, twice, nil); err == nil {
		t.Error("two check frames in a row accepted")
	}
	l := compress(t, LZ4, sample(5000, 7), nil)
	legacy := append(bytes.Clone(l), 0x02, 0x21, 0x4C, 0x18, 0, 0, 0, 0)
	if _, err := decompress(LZ4, legacy, nil); err == nil {
		t.Error("a legacy lz4 frame after a frame accepted")
	}
	// Skippable frames are part of both formats.
	skip := []byte{0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 'x', 'y', 'z'}
	for c, f := range map[Codec][]byte{Zstd: z, LZ4: l} {
		got, err := decompress(c, append(append(bytes.Clone(skip), f...), skip...), nil)
		if err != nil || !bytes.Equal(got, sample(5000, 7)) {
			t.Errorf("%v with skippable frames: %v", c, err)
		}
	}
}

// TestCloseStopsGoroutines: Close stops every goroutine, also when the
// underlying writer fails half-way.
func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	in := sample(3<<20, 8)
	for _, c := range []Codec{Zstd, LZ4} {
		w, err := NewWriter(failAfter{n: 100 << 10}, c, &WriterOptions{ChunkSize: 64 << 10, Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		_, werr := w.Write(in)
		cerr := w.Close()
		if werr == nil && cerr == nil {
			t.Fatalf("%v: a failing writer went unnoticed", c)
		}
		z := compress(t, c, in, &WriterOptions{ChunkSize: 64 << 10, Concurrency: 4})
		r, _ := NewReader(bytes.NewReader(z), c, &ReaderOptions{Concurrency: 4})
		io.CopyN(io.Discard, r, 1000)
		r.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines before, %d after Close", before, n)
	}
}

type failAfter struct{ n int }

var left int

func (f failAfter) Write(p []byte) (int, error) {
	if left == 0 {
		left = f.n
	}
	if len(p) > left {
		left = 0
		return 0, errors.New("no space left")
	}
	left -= len(p)
	return len(p), nil
}
