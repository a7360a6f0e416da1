// Package upgrade_test drives the built xstream-upgrade and xstream-cat
// through real shell pipelines on the shared legacy corpus and on
// generated streams.
package upgrade_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/xstream/xstream/internal/testcorpus"
	"github.com/xstream/xstream/lib/compress"
	"github.com/xstream/xstream/tests/legacygen"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "xstream-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator),
		"github.com/xstream/xstream/cmd/xstream-upgrade", "github.com/xstream/xstream/cmd/xstream-cat")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the commands:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sh runs a bash pipeline with the commands on PATH and returns its exit
// status and standard error.
func sh(t *testing.T, dir, script string) (int, string) {
	t.Helper()
	cmd := exec.Command("bash", "-c", "set -o pipefail; "+script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stderr.String()
}

func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func sameFile(t *testing.T, got, want string) {
	t.Helper()
	a, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("%s (%d octets) differs from %s (%d octets)", got, len(a), want, len(b))
	}
}

// TestCorpus: every corpus case, given only the output options of Xen's
// converter's arguments, is byte-identical to Xen's output through a pipe
// and from a file; and Xen's full command line works as well.
func TestCorpus(t *testing.T) {
	dir, cases := testcorpus.Legacy(t)
	tmp := t.TempDir()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			in, want := filepath.Join(dir, c.Name+".legacy"), filepath.Join(dir, c.Name+".v3")
			args := strings.Join(c.OutputArgs(), " ")

			pipe := filepath.Join(tmp, c.Name+".pipe")
			if code, stderr := sh(t, tmp, fmt.Sprintf("cat %s | xstream-upgrade %s | cat > %s", q(in), args, q(pipe))); code != 0 || stderr != "" {
				t.Fatalf("pipe: exit %d: %s", code, stderr)
			}
			sameFile(t, pipe, want)

			file := filepath.Join(tmp, c.Name+".file")
			if code, stderr := sh(t, tmp, fmt.Sprintf("xstream-upgrade %s %s -o %s", args, q(in), q(file))); code != 0 || stderr != "" {
				t.Fatalf("file: exit %d: %s", code, stderr)
			}
			sameFile(t, file, want)

			// Xen's own arguments, -i/-o/-w/-g/-x and all.
			xen := filepath.Join(tmp, c.Name+".xen")
			var xa []string
			for i := 0; i < len(c.ConverterArgs); i++ {
				a := c.ConverterArgs[i]
				switch a {
				case "-i":
					a, i = "-i "+q(in), i+1
				case "-o":
					a, i = "-o "+q(xen), i+1
				}
				xa = append(xa, a)
			}
			if code, stderr := sh(t, tmp, "xstream-upgrade "+strings.Join(xa, " ")); code != 0 || stderr != "" {
				t.Fatalf("Xen's arguments: exit %d: %s", code, stderr)
			}
			sameFile(t, xen, want)

			// As libxl calls the converter: file descriptors.
			fd := filepath.Join(tmp, c.Name+".fd")
			if code, stderr := sh(t, tmp, fmt.Sprintf("xstream-upgrade --in 3 --out 4 %s 3<%s 4>%s", args, q(in), q(fd))); code != 0 || stderr != "" {
				t.Fatalf("fds: exit %d: %s", code, stderr)
			}
			sameFile(t, fd, want)

			// Compressed input, recognised by its magic (issue 6); a
			// damaged compressed file does not pass.
			for _, codec := range []compress.Codec{compress.Zstd, compress.LZ4} {
				z := filepath.Join(tmp, c.Name+codec.Extension())
				writeCompressed(t, in, z, codec)
				out := filepath.Join(tmp, c.Name+".from"+codec.Extension())
				if code, stderr := sh(t, tmp, fmt.Sprintf("xstream-upgrade %s < %s > %s", args, q(z), q(out))); code != 0 || stderr != "" {
					t.Fatalf("%v input: exit %d: %s", codec, code, stderr)
				}
				sameFile(t, out, want)
				b, err := os.ReadFile(z)
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)*2/3] ^= 0x10
				if err := os.WriteFile(z, b, 0o600); err != nil {
					t.Fatal(err)
				}
				if code, stderr := sh(t, tmp, fmt.Sprintf("xstream-upgrade %s < %s > /dev/null", args, q(z))); code != 3 {
					t.Fatalf("%v input with a flipped bit: exit %d, want 3: %s", codec, code, stderr)
				}
			}
		})
	}
}

// writeCompressed compresses the file in into out with codec.
func writeCompressed(t *testing.T, in, out string, codec compress.Codec) {
	t.Helper()
	b, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw, err := compress.NewWriter(f, codec, &compress.WriterOptions{ChunkSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// patch returns a copy of the corpus file with octets replaced at off.
func patch(t *testing.T, name string, off int, b []byte) []byte {
	t.Helper()
	dir, _ := testcorpus.Legacy(t)
	in, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte{}, in...)
	copy(out[off:], b)
	return out
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// TestBadInput: exit 3 (2 for a question only the user can answer), one
// line naming what was wrong and where, a hint line where it helps, and no
// output file.
func TestBadInput(t *testing.T) {
	dir, _ := testcorpus.Legacy(t)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pv32 := read("w32-pv32-libxc.legacy")
	for _, tc := range []struct {
		name string
		in   []byte
		args string
		code int
		msg  string // regexp for the first stderr line
		hint string // regexp for the hint line, "" for none
	}{
		{"truncated", pv32[:len(pv32)-100], "", 3,
			`^xstream-upgrade: legacy shared info at offset 0x[0-9a-f]+: stream truncated: 3996 of 4096 octets present$`, ""},
		{"absurd p2m size", pv32, "-w 64", 3,
			`^xstream-upgrade: legacy p2m size at offset 0x0: p2m size 0xffffffff000001d0 exceeds the limit of 0x10000000 pfns$`,
			`p2m size looks like a 32-bit stream read as 64-bit; try -w 32`},
		{"batch over the limit", patch(t, "w64-hvm-libxc.legacy", 8, le32(1025)), "", 3,
			`^xstream-upgrade: legacy chunk 0 \(PAGE_BATCH\) at offset 0x8: page batch of 1025 pages exceeds MAX_BATCH \(1024\)$`, ""},
		{"vCPU context of the wrong size", patch(t, "w32-pv32-libxc.legacy", 16, le32(0xaf8)), "", 3,
			`^xstream-upgrade: legacy extended-info block "vcpu" at offset 0xc: vCPU context of 0xaf8 octets: a 32-bit guest's is 0xaf0, a 64-bit guest's 0x1430$`, ""},
		{"garbage after the end", append(append([]byte{}, pv32...), "GARBAGE!"...), "", 3,
			`^xstream-upgrade: legacy end of stream at offset 0x323348: 8 octets of trailing data after the end of the stream$`, ""},
		{"wrong -w on an HVM stream", read("w64-hvm-libxc-skipqemu.legacy"), "-w 32 --skip-qemu", 3,
			`^xstream-upgrade: legacy HVM context at offset 0x20: HVM context of 0 octets is too short for Xen's save header$`,
			`the stream reads as a 64-bit HVM stream: try -w 64 -g hvm, or leave -w and -g out`},
		{"ambiguous", legacygen.Ambiguous(600 << 10), "", 2,
			`^xstream-upgrade: legacy stream at offset 0x0: cannot tell the stream's layout: the first 262144 octets read without error as 64-bit HVM and 32-bit HVM$`,
			`say which with -w 32\|64 and -g pv\|hvm`},
		{"not a stream", []byte("#!/bin/sh\necho this is not a save file\n"), "", 3,
			`^xstream-upgrade: legacy p2m size at offset 0x0: `, `is it a Xen save stream at all\?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			in := filepath.Join(tmp, "in")
			if err := os.WriteFile(in, tc.in, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, how := range []string{"file", "pipe"} {
				script := fmt.Sprintf("xstream-upgrade %s in -o out", tc.args)
				if how == "pipe" {
					script = fmt.Sprintf("cat in | xstream-upgrade %s | cat > /dev/null", tc.args)
				}
				code, stderr := sh(t, tmp, script)
				lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
				if code != tc.code || !regexp.MustCompile(tc.msg).MatchString(lines[0]) {
					t.Fatalf("%s: exit %d, stderr:\n%s\nwant exit %d and %s", how, code, stderr, tc.code, tc.msg)
				}
				if want := 1 + map[bool]int{true: 1}[tc.hint != ""]; len(lines) != want {
					t.Fatalf("%s: %d lines on stderr, want %d:\n%s", how, len(lines), want, stderr)
				}
				if tc.hint != "" && !regexp.MustCompile(`^xstream-upgrade: hint: .*`+tc.hint).MatchString(lines[1]) {
					t.Fatalf("%s: hint line %q, want %s", how, lines[1], tc.hint)
				}
				if entries, _ := os.ReadDir(tmp); len(entries) != 1 {
					t.Fatalf("%s: a failed conversion left files behind: %v", how, entries)
				}
			}
		})
	}
}

// TestPassThrough: a v3 stream comes out unchanged, with a note.
func TestPassThrough(t *testing.T) {
	dir, _ := testcorpus.Legacy(t)
	tmp := t.TempDir()
	v3 := filepath.Join(dir, "w64-hvm-xl-libxl.v3")
	code, stderr := sh(t, tmp, fmt.Sprintf("cat %s | xstream-upgrade > out", q(v3)))
	if code != 0 || stderr != "xstream-upgrade: libxl stream behind an xl header with libxc v3: passed through unchanged\n" {
		t.Fatalf("exit %d: %q", code, stderr)
	}
	sameFile(t, filepath.Join(tmp, "out"), v3)
}

// TestBrokenPipe: a reader that goes away is an error line and exit 1.
func TestBrokenPipe(t *testing.T) {
	dir, _ := testcorpus.Legacy(t)
	code, stderr := sh(t, t.TempDir(), fmt.Sprintf("xstream-upgrade %s | head -c 10 > /dev/null; exit ${PIPESTATUS[0]}",
		q(filepath.Join(dir, "w64-hvm-libxc.legacy"))))
	if code != 1 || stderr != "xstream-upgrade: output closed early (broken pipe)\n" {
		t.Fatalf("exit %d: %q", code, stderr)
	}
}

// TestGenerated: our own cases (see legacygen.Cases) through a pipe, each
// read back by xstream-cat --verify.
func TestGenerated(t *testing.T) {
	tmp := t.TempDir()
	for _, c := range legacygen.Cases() {
		in := filepath.Join(tmp, c.Name+".legacy")
		f, err := os.Create(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := legacygen.Write(f, c.Config); err != nil {
			t.Fatal(err)
		}
		f.Close()
		args := "-f " + c.Format
		if c.SkipQemu {
			args += " --skip-qemu"
		}
		code, stderr := sh(t, tmp, fmt.Sprintf("cat %s | xstream-upgrade %s | xstream-cat --verify -q", q(in), args))
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.Name, code, stderr)
		}
	}
}

// TestCat: xstream-cat shows a legacy stream as the stream xstream-upgrade
// makes of it, verifies it, and gives it the digest of Xen's conversion.
func TestCat(t *testing.T) {
	dir, cases := testcorpus.Legacy(t)
	tmp := t.TempDir()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			in, v3 := q(filepath.Join(dir, c.Name+".legacy")), q(filepath.Join(dir, c.Name+".v3"))
			// Listing: the legacy stream's records are those of its
			// libxc-format conversion, as a pipe into xstream-cat shows.
			script := fmt.Sprintf("xstream-cat %s > a && cat %s | xstream-upgrade | xstream-cat > b && cmp a b", in, in)
			if code, stderr := sh(t, tmp, script); code != 0 || !strings.Contains(stderr, "showing the upgraded stream") {
				t.Fatalf("listing: exit %d: %s", code, stderr)
			}
			code, stderr := sh(t, tmp, fmt.Sprintf("cat %s | xstream-cat --verify > v", in))
			out, _ := os.ReadFile(filepath.Join(tmp, "v"))
			if code != 0 || stderr != "" || !regexp.MustCompile(`^valid: legacy stream \(\d\d-bit toolstack, (PV|HVM) guest\); upgraded: `).Match(out) {
				t.Fatalf("--verify: exit %d: %s%s", code, out, stderr)
			}
			// The digest is that of Xen's conversion to libxc format (a
			// libxl-format conversion has the toolstack's physmap too).
			if !strings.Contains(c.OutputFormat, "libxl") {
				if code, stderr := sh(t, tmp, fmt.Sprintf("xstream-cat --digest %s > d1 && xstream-cat --digest %s > d2 && cmp d1 d2", in, v3)); code != 0 {
					t.Fatalf("--digest differs from that of Xen's conversion: %s", stderr)
				}
			}
		})
	}
	t.Run("bad", func(t *testing.T) {
		pv32, err := os.ReadFile(filepath.Join(dir, "w32-pv32-libxc.legacy"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(tmp, "trunc"), pv32[:200000], 0o644)
		code, stderr := sh(t, tmp, "xstream-cat --verify trunc")
		if code != 3 || !strings.HasPrefix(stderr, "xstream-cat: legacy chunk 1 (PAGE_BATCH) at offset 0x") || strings.Count(stderr, "\n") != 1 {
			t.Fatalf("truncated: exit %d: %s", code, stderr)
		}
		os.WriteFile(filepath.Join(tmp, "amb"), legacygen.Ambiguous(600<<10), 0o644)
		if code, stderr := sh(t, tmp, "xstream-cat --verify amb"); code != 2 || !strings.Contains(stderr, "cannot tell") {
			t.Fatalf("ambiguous: exit %d: %s", code, stderr)
		}
		if code, stderr := sh(t, tmp, "xstream-cat --verify -w 64 amb"); code != 3 || strings.Contains(stderr, "cannot tell") {
			t.Fatalf("ambiguous with -w 64: exit %d: %s", code, stderr)
		}
	})
}
