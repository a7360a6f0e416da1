package upgrade

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/xstream/xstream/internal/testcorpus"
	"github.com/xstream/xstream/lib/legacy"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

// corpusOptions turns a case's output arguments into Options: -f and
// --skip-qemu only, never -w, -g or -x.
func corpusOptions(t *testing.T, c testcorpus.LegacyCase) *Options {
	t.Helper()
	opts := &Options{}
	args := c.OutputArgs()
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-f":
			f, err := ParseFormat(args[i+1])
			if err != nil {
				t.Fatal(err)
			}
			opts.Format = f
			i++
		case "--skip-qemu":
			opts.SkipQemu = true
		}
	}
	return opts
}

// chunkedPipe feeds b through an io.Pipe in writes of odd sizes, as a pipe
// between processes delivers it.
func chunkedPipe(b []byte) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		sizes := []int{1, 7, 4093, 65536, 13, 131071}
		for i := 0; len(b) > 0; i++ {
			n := min(sizes[i%len(sizes)], len(b))
			if _, err := pw.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
		pw.Close()
	}()
	return pr
}

func TestCorpusByteIdentical(t *testing.T) {
	dir, cases := testcorpus.Legacy(t)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join(dir, c.Name+".legacy"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(dir, c.Name+".v3"))
			if err != nil {
				t.Fatal(err)
			}
			opts := corpusOptions(t, c)
			check := func(how string, got []byte, info Info, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v", how, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s: output differs from Xen's converter: %d octets (sha256 %x), want %d (sha256 %x)",
						how, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
				}
				if !info.Legacy || info.Layout.Width != c.Width || info.Layout.Guest.String() != map[string]string{"pv": "PV", "hvm": "HVM"}[c.Guest] {
					t.Fatalf("%s: detected %+v, the manifest says %d-bit %s", how, info, c.Width, c.Guest)
				}
				if info.Layout.WidthGiven || info.Layout.GuestGiven {
					t.Fatalf("%s: layout marked as given: %+v", how, info.Layout)
				}
				if c.Guest == "pv" && info.GuestWidth*8 != c.PVGuestBits {
					t.Fatalf("%s: PV guest width %d octets, the manifest says %d bits", how, info.GuestWidth, c.PVGuestBits)
				}
			}

			var out bytes.Buffer
			info, err := Upgrade(&out, bytes.NewReader(in), opts)
			check("from a file", out.Bytes(), info, err)

			out.Reset()
			info, err = Upgrade(&out, chunkedPipe(in), opts)
			check("through a pipe", out.Bytes(), info, err)

			rd, info, err := Open(chunkedPipe(in), opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rd)
			rd.Close()
			info.GuestWidth = c.PVGuestBits / 8
			check("through Open", got, info, err)

			// The converted stream reads back as the same records.
			if err := walkAll(got, true); err != nil {
				t.Fatalf("upgraded stream does not verify: %v", err)
			}
		})
	}
}

// walkAll walks a stream with sniff's Walker.
func walkAll(b []byte, verify bool) error {
	w, err := sniff.NewWalker(bytes.NewReader(b), &sniff.Options{Verify: verify})
	if err != nil {
		return err
	}
	for {
		_, err := w.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// TestCorpusSkipQemuNotNeeded: a stream that ends after its libxc part
// needs no --skip-qemu, and --skip-qemu drops a tail from libxc output.
func TestCorpusSkipQemu(t *testing.T) {
	dir, _ := testcorpus.Legacy(t)
	in, _ := os.ReadFile(filepath.Join(dir, "w64-hvm-libxc-skipqemu.legacy"))
	want, _ := os.ReadFile(filepath.Join(dir, "w64-hvm-libxc-skipqemu.v3"))
	var out bytes.Buffer
	if _, err := Upgrade(&out, bytes.NewReader(in), nil); err != nil || !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("without --skip-qemu: err %v, equal %v", err, bytes.Equal(out.Bytes(), want))
	}

	in, _ = os.ReadFile(filepath.Join(dir, "w64-hvm-libxc.legacy"))
	full, _ := os.ReadFile(filepath.Join(dir, "w64-hvm-libxc.v3"))
	out.Reset()
	if _, err := Upgrade(&out, bytes.NewReader(in), &Options{SkipQemu: true}); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(full, []byte(legacy.QemuSignature))
	if i < 0 || !bytes.Equal(out.Bytes(), full[:i]) {
		t.Fatalf("--skip-qemu output is %d octets, want the %d before the qemu tail", out.Len(), i)
	}
}

// TestPassThrough: v3 streams pass unchanged, v2 streams are rewritten as
// v3 and read back as the same records.
func TestPassThrough(t *testing.T) {
	dir, _ := testcorpus.Legacy(t)
	for _, name := range []string{"w64-hvm-libxc.v3", "w32-hvm-libxl.v3", "w64-hvm-xl-libxl.v3", "w32-hvm-xl-libxc.v3"} {
		v3, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		info, err := Upgrade(&out, bytes.NewReader(v3), &Options{Format: FormatLibxl})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !info.Unchanged || info.Legacy || !bytes.Equal(out.Bytes(), v3) {
			t.Fatalf("%s: not passed through unchanged: %+v", name, info)
		}
		rd, info, err := Open(bytes.NewReader(v3), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rd)
		if !info.Unchanged || !bytes.Equal(got, v3) {
			t.Fatalf("%s: Open did not pass it through unchanged: %+v", name, info)
		}

		// The same stream as v2: drop STATIC_DATA_END, say version 2.
		v2 := toV2(t, v3)
		out.Reset()
		info, err = Upgrade(&out, bytes.NewReader(v2), nil)
		if err != nil {
			t.Fatalf("%s as v2: %v", name, err)
		}
		if !info.Rewritten || info.Version != 2 {
			t.Fatalf("%s as v2: %+v", name, info)
		}
		if !bytes.Equal(out.Bytes(), v3) {
			t.Fatalf("%s as v2: rewritten stream differs from the v3 original", name)
		}
		// LegacyOnly leaves v2 alone.
		rd, info, err = Open(bytes.NewReader(v2), &Options{LegacyOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		got, _ = io.ReadAll(rd)
		if !info.Unchanged || !bytes.Equal(got, v2) {
			t.Fatalf("%s as v2 with LegacyOnly: changed (%+v)", name, info)
		}
	}
}

// toV2 rewrites a v3 stream (possibly in libxl and xl framing) as v2 by
// editing octets: the version field and the STATIC_DATA_END record.
func toV2(t *testing.T, v3 []byte) []byte {
	t.Helper()
	marker := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'X', 'E', 'N', 'F', 0, 0, 0, 3}
	i := bytes.Index(v3, marker)
	if i < 0 {
		t.Fatal("no libxc image header")
	}
	sde := []byte{0x10, 0, 0, 0, 0, 0, 0, 0}
	j := i + stream.ImageHeaderSize + stream.DomainHeaderSize
	for ; j+8 <= len(v3); j += 8 {
		if bytes.Equal(v3[j:j+8], sde) {
			break
		}
	}
	// Find STATIC_DATA_END by walking records from the domain header.
	j = i + stream.ImageHeaderSize + stream.DomainHeaderSize
	for {
		typ := uint32(v3[j]) | uint32(v3[j+1])<<8
		n := int(uint32(v3[j+4]) | uint32(v3[j+5])<<8 | uint32(v3[j+6])<<16 | uint32(v3[j+7])<<24)
		if typ == uint32(stream.RecStaticDataEnd) {
			break
		}
		j += 8 + (n+7)&^7
	}
	out := append([]byte{}, v3[:j]...)
	out[i+15] = 2
	return append(out, v3[j+8:]...)
}

func TestErrors(t *testing.T) {
	dir, _ := testcorpus.Legacy(t)
	pv32, _ := os.ReadFile(filepath.Join(dir, "w32-pv32-libxc.legacy"))
	hvm64, _ := os.ReadFile(filepath.Join(dir, "w64-hvm-libxc.legacy"))
	xlHVM, _ := os.ReadFile(filepath.Join(dir, "w32-hvm-xl-libxc.legacy"))
	h, err := xl.Read(bytes.NewReader(xlHVM), 0)
	if err != nil {
		t.Fatal(err)
	}
	xlLen := int(h.Size())
	// truncatedAt: too little input, at offset off, where the stream
	// after the xl header starts.
	truncatedAt := func(err error, off int) bool {
		var fe *stream.FormatError
		return errors.Is(err, io.ErrUnexpectedEOF) && errors.As(err, &fe) && fe.Offset == int64(off)
	}
	// compressed: refused as input no reader here takes, with the hint
	// to decompress it first.
	compressed := func(err error) bool {
		var fe *stream.FormatError
		var h interface{ Hint() string }
		return errors.Is(err, stream.ErrUnsupported) && errors.As(err, &fe) && fe.Type == "input" &&
			errors.As(err, &h) && h.Hint() == "decompress it first"
	}
	for _, tc := range []struct {
		name  string
		in    []byte
		opts  Options
		check func(error) bool
	}{
		{"empty", nil, Options{}, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"zstd", []byte{0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0, 0, 0, 0}, Options{}, compressed},
		{"gzip", gzipped(pv32), Options{}, compressed},
		{"xz", []byte{0xFD, '7', 'z', 'X', 'Z', 0, 0, 0, 0, 0}, Options{}, compressed},
		{"bzip2", []byte("BZh91AY&SY\x00\x00"), Options{}, compressed},
		{"-x without xl header", pv32, Options{XL: true}, func(err error) bool { return errors.Is(err, stream.ErrCorrupt) }},
		{"-w 64 on a 32-bit stream", pv32, Options{Width: 64}, func(err error) bool { return errors.Is(err, stream.ErrLimit) }},
		{"-g hvm on a PV stream", pv32, Options{Guest: legacy.GuestHVM}, func(err error) bool { return errors.Is(err, stream.ErrLimit) }},
		{"-w 32 on a 64-bit HVM stream", hvm64, Options{Width: 32}, func(err error) bool { return errors.Is(err, stream.ErrCorrupt) }},
		{"garbage after the end", append(append([]byte{}, pv32...), 1, 2, 3), Options{}, func(err error) bool { return errors.Is(err, stream.ErrCorrupt) }},
		{"an xl header alone", xlHVM[:xlLen], Options{}, func(err error) bool { return truncatedAt(err, xlLen) }},
		{"an xl header and 5 octets", xlHVM[:xlLen+5], Options{}, func(err error) bool { return truncatedAt(err, xlLen) }},
		{"an xl header and zstd", append(bytes.Clone(xlHVM[:xlLen]), 0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0, 0, 0, 0), Options{}, func(err error) bool {
			var fe *stream.FormatError
			return errors.Is(err, stream.ErrUnsupported) && errors.As(err, &fe) && fe.Offset == int64(xlLen)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Upgrade(io.Discard, bytes.NewReader(tc.in), &tc.opts)
			if err == nil || !tc.check(err) {
				t.Fatalf("got %v", err)
			}
			var fe *stream.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%v is not a *stream.FormatError", err)
			}
			var h interface{ Hint() string }
			if errors.As(err, &h) {
				t.Logf("%v (hint: %s)", err, h.Hint())
			} else {
				t.Logf("%v", err)
			}
		})
	}
}

func gzipped(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}
