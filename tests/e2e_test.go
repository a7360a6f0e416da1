// Package tests holds the end-to-end tests: they build the commands and
// drive them through real shell pipelines.
package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xstream/xstream/lib/digest"
	"github.com/xstream/xstream/lib/sniff"
)

// bin is the directory the commands are built into.
var bin string

const goldenDir = "../testdata/golden"

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "xstream-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/...")
		build.Dir = ".."
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building the commands: %v\n%s", err, out)
			return 1
		}
		bin = dir
		return m.Run()
	}())
}

type result struct {
	stdout, stderr string
	code           int
}

// sh runs a shell pipeline with the built commands first on the PATH.
func sh(t *testing.T, pipeline string) result {
	t.Helper()
	cmd := exec.Command("sh", "-c", pipeline)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(filepath.ListSeparator)+os.Getenv("PATH"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", pipeline, err)
	}
	return r
}

// mustSh runs a pipeline that must succeed.
func mustSh(t *testing.T, pipeline string) string {
	t.Helper()
	r := sh(t, pipeline)
	if r.code != 0 {
		t.Fatalf("%s: exit %d\n%s", pipeline, r.code, r.stderr)
	}
	return r.stdout
}

func goldens(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(goldenDir, "*.*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if !strings.HasSuffix(n, ".txt") && !strings.HasSuffix(n, ".md") {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		t.Fatal("no golden streams")
	}
	return out
}

func TestGenVerifyPipe(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"-m 16M", "valid: xl+libxl+libxc stream"},
		{"--type hvm -m 16M --vcpus 4 -f libxl --checkpoints 3", "valid: libxl+libxc stream"},
		{"-m 8M -f libxc --big-endian --image-version 2 --batch 100", "valid: libxc stream"},
		{"--type hvm -m 900M --fill zero", "valid: xl+libxl+libxc stream"}, // RAM above the VGA hole
	} {
		out := mustSh(t, "xstream-gen "+tc.args+" | xstream-cat --verify")
		if !strings.HasPrefix(out, tc.want) {
			t.Errorf("xstream-gen %s | xstream-cat --verify: %q, want %q...", tc.args, out, tc.want)
		}
	}
}

// TestDigestAcrossFramings: the same domain in other framing, batching
// and byte order, through a pipe, has the same digest.
func TestDigestAcrossFramings(t *testing.T) {
	want := mustSh(t, "xstream-gen -m 12M --vcpus 2 --seed 5 -f libxc | xstream-cat --digest")
	for _, args := range []string{"-f xl", "-f libxl --batch 7", "-f xl --big-endian --batch 1000"} {
		got := mustSh(t, "xstream-gen -m 12M --vcpus 2 --seed 5 "+args+" | cat | xstream-cat --digest")
		if got != want {
			t.Errorf("%s: digest %q, want %q", args, got, want)
		}
	}
	if got := mustSh(t, "xstream-gen -m 12M --vcpus 2 --seed 6 | xstream-cat --digest"); got == want {
		t.Errorf("another seed, the same digest %s", got)
	}
}

// TestGoldenPipes: each golden through a pipe gives the digest of the
// file, the one lib/digest computes, and the listing beside it.
func TestGoldenPipes(t *testing.T) {
	for _, g := range goldens(t) {
		piped := mustSh(t, "cat "+g+" | xstream-cat --digest")
		file := mustSh(t, "xstream-cat --digest "+g)
		if piped != file {
			t.Errorf("%s: digest through a pipe %q, of the file %q", g, piped, file)
		}
		if want := digestOf(t, g) + "\n"; piped != want {
			t.Errorf("%s: xstream-cat --digest %q, lib/digest %q", g, piped, want)
		}
		listing := mustSh(t, "cat "+g+" | xstream-cat")
		want, err := os.ReadFile(g + ".txt")
		if err != nil {
			t.Fatal(err)
		}
		if listing != string(want) {
			t.Errorf("%s: xstream-cat listing differs from %s.txt", g, g)
		}
		if out := mustSh(t, "xstream-cat --verify < "+g); !strings.HasPrefix(out, "valid: ") {
			t.Errorf("%s: --verify printed %q", g, out)
		}
	}
}

func digestOf(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wk, err := sniff.NewWalker(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.New()
	defer d.Close()
	for {
		it, err := wk.Next()
		if errors.Is(err, io.EOF) {
			sum, err := d.Sum()
			if err != nil {
				t.Fatal(err)
			}
			return sum
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Add(it); err != nil {
			t.Fatal(err)
		}
	}
}

var offsetRE = regexp.MustCompile(`^xstream-cat: .* at offset 0x[0-9a-f]+: `)

// TestTruncated: a stream cut anywhere is invalid (exit 3), and the error
// line says where.
func TestTruncated(t *testing.T) {
	g := filepath.Join(goldenDir, "pv.xl")
	fi, err := os.Stat(g)
	if err != nil {
		t.Fatal(err)
	}
	// In the xl header, the libxl header, the libxc headers, a record
	// header, a PAGE_DATA body, between records, before the libxl END.
	for _, n := range []int64{10, 380, 400, 0x3c4, 0x1000, 0x10479, fi.Size() - 8} {
		for _, flags := range []string{"--verify", "", "--digest", "--stats --json"} {
			pipeline := fmt.Sprintf("head -c %d %s | xstream-cat %s", n, g, flags)
			r := sh(t, pipeline)
			if r.code != 3 {
				t.Errorf("%s: exit %d, want 3 (stderr %q)", pipeline, r.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if !offsetRE.MatchString(lines[0]) {
				t.Errorf("%s: error line %q does not give the offset", pipeline, lines[0])
			}
		}
	}
}

// TestJSON: every line of xstream-cat --json is an object with the
// documented fields.
func TestJSON(t *testing.T) {
	for _, g := range goldens(t) {
		out := mustSh(t, "cat "+g+" | xstream-cat --json")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		want := strings.Count(mustSh(t, "xstream-cat "+g), "\n")
		if len(lines) != want {
			t.Errorf("%s: %d JSON lines for %d listed items", g, len(lines), want)
		}
		prevEnd := float64(0)
		for i, l := range lines {
			var obj map[string]any
			if err := json.Unmarshal([]byte(l), &obj); err != nil {
				t.Fatalf("%s line %d: %v: %s", g, i+1, err, l)
			}
			for _, f := range []string{"offset", "layer", "index", "type", "length", "size"} {
				if _, ok := obj[f]; !ok {
					t.Errorf("%s line %d: no %q field: %s", g, i+1, f, l)
				}
			}
			off, _ := obj["offset"].(float64)
			size, _ := obj["size"].(float64)
			if off != prevEnd {
				t.Errorf("%s line %d: offset %v, the item before ended at %v", g, i+1, off, prevEnd)
			}
			prevEnd = off + size
		}
	}
}

// TestRefuseTerminal runs xstream-gen with its standard output on a
// terminal, through script(1) when it is installed.
func TestRefuseTerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) is not installed")
	}
	r := sh(t, `script -qec "xstream-gen -m 1M; echo exit=\$?" /dev/null`)
	out := strings.ReplaceAll(r.stdout, "\r", "")
	if !strings.Contains(out, "xstream-gen: refusing to write a binary stream to a terminal\n") ||
		!strings.Contains(out, "xstream-gen: hint: ") || !strings.Contains(out, "exit=2\n") {
		t.Errorf("xstream-gen on a terminal printed:\n%s", out)
	}
	if len(out) > 1000 {
		t.Errorf("xstream-gen wrote %d octets to the terminal", len(out))
	}
}

// A command line the tools cannot take exits 2 with one line saying why:
// flags they do not know or cannot parse, counts below 1, a missing or
// unknown xdomain command.
func TestUsageErrors(t *testing.T) {
	for cmd, want := range map[string]string{
		"xsave --bogus vm":                  "flag provided but not defined: -bogus",
		"xrestore --bogus":                  "flag provided but not defined: -bogus",
		"xstream-cat --nope":                "flag provided but not defined: -nope",
		"xstream-compress -l abc":           `invalid value "abc" for flag -l`,
		"xstream-compress -l 0":             "--level 0: must be at least 1",
		"xsave -z zstd -l 0 vm":             "--level 0: must be at least 1",
		"xstream-gen --seed abc":            `invalid value "abc" for flag -seed`,
		"xstream-gen --batch 0":             "--batch 0: must be at least 1",
		"xstream-gen --vcpus 0":             "--vcpus 0: must be at least 1",
		"xdomain create x --vcpus 0":        "--vcpus 0: must be at least 1",
		"xdomain frob":                      `no command "frob"`,
		"xdomain":                           "a command is needed",
		"xstream-compress -o / < /dev/null": "a directory; give a file name",
		"xsave ../x":                        "invalid domain name",
		"xdomain info ../x":                 "invalid domain name",
		"xdomain destroy ../x":              "invalid domain name",
		"xstream-upgrade -i 9":              "-i 9: no such open file descriptor",
	} {
		r := sh(t, "XSTREAM_STORE="+t.TempDir()+" "+cmd+" < /dev/null > /dev/null")
		if r.code != 2 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and one line with %q", cmd, r.code, r.stderr, want)
		}
	}
}

// A reader that goes away early is reported, exit 1, by every tool that
// writes a stream, not a silent death by SIGPIPE.
func TestBrokenPipe(t *testing.T) {
	src := filepath.Join(t.TempDir(), "s.xl")
	mustSh(t, "xstream-gen -m 16M > "+src)
	many := filepath.Join(t.TempDir(), "many.xl") // a listing far longer than a pipe holds
	mustSh(t, "xstream-gen -m 16M --batch 1 > "+many)
	for _, cmd := range []string{"xstream-gen -m 16M", "xstream-compress < " + src, "xstream-compress -d < " + src + ".zst", "xstream-upgrade < " + src,
		"xstream-cat " + many, "xstream-cat --json " + many} {
		if strings.Contains(cmd, ".zst") {
			mustSh(t, "xstream-compress < "+src+" > "+src+".zst")
		}
		// The reader waits first: the writer's last writes, when it
		// closes, are the ones that fail (a lost error there once
		// made xstream-compress exit 0).
		r := sh(t, "bash -c '"+cmd+" | (sleep 0.3; head -c 1000) > /dev/null; exit ${PIPESTATUS[0]}'")
		if r.code != 1 || !strings.Contains(r.stderr, "output closed early (broken pipe)") {
			t.Errorf("%s: exit %d, stderr %q", cmd, r.code, r.stderr)
		}
	}
}

// signalAndWait sends sig to cmd and waits for it to exit, at most
// within; it fails the test (killing cmd) if it does not.
func signalAndWait(t *testing.T, cmd *exec.Cmd, sig os.Signal, within time.Duration, stderr *bytes.Buffer) {
	t.Helper()
	cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(within):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s still runs %v after %v; stderr: %s", filepath.Base(cmd.Path), within, sig, stderr.String())
	}
}
