package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xstream/xstream/internal/testutil"
)

// fakeXen puts lib/xen's stand-in xl on the PATH of the pipelines and
// returns its state directory: domains are files in DIR/dom, the stream
// "xl save" writes is DIR/save.stream, what "xl restore" read lands in
// DIR/restored.stream (lib/xen/testdata/fakexl says more).
func fakeXen(t *testing.T) string {
	t.Helper()
	fake, err := filepath.Abs("../lib/xen/testdata/fakexl")
	if err != nil {
		t.Fatal(err)
	}
	pathDir := t.TempDir()
	if err := os.Symlink(fake, filepath.Join(pathDir, "xl")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "dom"), 0o755)
	t.Setenv("FAKEXL_DIR", dir)
	t.Setenv("PATH", pathDir+string(filepath.ListSeparator)+os.Getenv("PATH"))
	t.Setenv("XSTREAM_BACKEND", "xen")
	t.Setenv("XSTREAM_XENSTORE", "none") // the fake xl's list, not a real xenstored
	return dir
}

func fakeDomain(t *testing.T, dir, name, line string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "dom", name), []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func fakeState(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "dom", name))
	return strings.TrimSpace(string(b))
}

func oneLine(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code || strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") != 0 || !strings.Contains(r.stderr, want) {
		t.Fatalf("exit %d, stderr %q; want exit %d and one line with %q", r.code, r.stderr, code, want)
	}
}

// TestXenPipeline: xsave | xrestore on a (fake) Xen host, the pair the
// lab runs for real: the stream reaches xl restore unchanged in content,
// the old domain is destroyed only after its stream is out, the new one
// unpaused only after its stream is in.
func TestXenPipeline(t *testing.T) {
	dir := fakeXen(t)
	fakeDomain(t, dir, "gen-pv", "3 -b---- pv 128")
	mustSh(t, "xstream-gen -m 8M > "+filepath.Join(dir, "save.stream"))
	want := mustSh(t, "xstream-cat --digest "+filepath.Join(dir, "save.stream"))
	r := sh(t, "xsave gen-pv | xrestore")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "xsave: saved Xen domain gen-pv, 8.0 MiB; the domain is destroyed") || !strings.Contains(r.stderr, "xrestore: restored gen-pv into Xen: x86 PV, running") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
	if got := mustSh(t, "xstream-cat --digest "+filepath.Join(dir, "restored.stream")); got != want {
		t.Fatalf("restored digest %s, want %s", got, want)
	}
	if st := fakeState(dir, "gen-pv"); st != "7 -b---- pv 128" {
		t.Fatalf("gen-pv is %q", st)
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	if !strings.Contains(string(calls), "save -p gen-pv /proc/self/fd/3\n") || !strings.Contains(string(calls), "destroy gen-pv\n") {
		t.Fatalf("xl calls:\n%s", calls)
	}
	out := mustSh(t, "xdomain list")
	if !strings.Contains(out, "BACKEND") || !regexpMatch(`(?m)^gen-pv +x86 PV +128\.0 MiB +1 +xen +7 +blocked$`, out) {
		t.Fatalf("xdomain list:\n%s", out)
	}
	if out := mustSh(t, "xdomain list --json"); !strings.Contains(out, `"backend":"xen","domid":7,`) {
		t.Fatalf("xdomain list --json:\n%s", out)
	}
}

func TestXenFailures(t *testing.T) {
	dir := fakeXen(t)
	fakeDomain(t, dir, "gen-pv", "3 -b---- pv 128")
	stream := filepath.Join(dir, "save.stream")
	mustSh(t, "xstream-gen -m 8M > "+stream)

	t.Run("no such domain", func(t *testing.T) {
		oneLine(t, sh(t, "xsave nosuch > "+filepath.Join(t.TempDir(), "x")), 1, "xsave: saving nosuch: xl save nosuch: nosuch is an invalid domain identifier (rc=-6)")
	})
	t.Run("xl save fails", func(t *testing.T) {
		os.WriteFile(filepath.Join(dir, "save.fail"), []byte("libxl: error: libxl_dom_suspend.c:123:suspend_common: Domain 3:guest did not suspend\n"), 0o644)
		defer os.Remove(filepath.Join(dir, "save.fail"))
		oneLine(t, sh(t, "xsave gen-pv > "+filepath.Join(t.TempDir(), "x")), 1, "xsave: saving gen-pv: xl save gen-pv: libxl: error: libxl_dom_suspend.c:123:suspend_common: Domain 3:guest did not suspend")
		if st := fakeState(dir, "gen-pv"); st != "3 -b---- pv 128" {
			t.Fatalf("gen-pv is %q", st)
		}
	})
	// xl fails after writing the whole stream, and resumes the domain:
	// the stream's end must not have gone out, or a reader would start
	// a second copy of a domain that runs on.
	t.Run("xl fails after the stream", func(t *testing.T) {
		os.WriteFile(filepath.Join(dir, "save.failafter"), []byte("libxl: error: libxl_domain.c:321:domain_resume_done: Domain 3:Failed to resume\n"), 0o644)
		defer os.Remove(filepath.Join(dir, "save.failafter"))
		out := filepath.Join(t.TempDir(), "vm.xl")
		for _, cmd := range []string{"xsave gen-pv > " + out, "bash -o pipefail -c 'xsave gen-pv | cat > " + out + "'", "xsave --compress zstd gen-pv > " + out, "xsave --checksum gen-pv > " + out} {
			oneLine(t, sh(t, cmd), 1, "xsave: saving gen-pv: xl save gen-pv: libxl: error: libxl_domain.c:321:domain_resume_done")
			if r := sh(t, "xstream-cat -q --verify "+out); r.code != 3 {
				t.Fatalf("%s: its output is a whole stream (xstream-cat exit %d)", cmd, r.code)
			}
			if st := fakeState(dir, "gen-pv"); st != "3 -b---- pv 128" {
				t.Fatalf("%s: gen-pv is %q", cmd, st)
			}
		}
	})
	// The null device would throw the stream away, and the domain be
	// destroyed: refused before xl runs, unless the domain runs on.
	t.Run("/dev/null", func(t *testing.T) {
		for _, cmd := range []string{"xsave gen-pv > /dev/null", "xsave -o /dev/null gen-pv", "xsave -o /dev/zero gen-pv"} {
			oneLine(t, sh(t, cmd), 2, "xsave: the output throws what it is given away: the stream would be lost and domain gen-pv destroyed")
			if st := fakeState(dir, "gen-pv"); st != "3 -b---- pv 128" {
				t.Fatalf("%s: gen-pv is %q", cmd, st)
			}
		}
		if r := sh(t, "xsave -q --keep gen-pv > /dev/null"); r.code != 0 || fakeState(dir, "gen-pv") != "3 -b---- pv 128" {
			t.Fatalf("--keep to /dev/null: exit %d, %s; gen-pv is %q", r.code, r.stderr, fakeState(dir, "gen-pv"))
		}
	})
	// The commit of -o fails (a directory took the name meanwhile): the
	// stream is not safe, so the domain is not destroyed but runs on.
	t.Run("-o commit fails", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "vm.xl")
		hook := filepath.Join(dir, "save.hook")
		os.WriteFile(hook, []byte("mkdir -p "+out+"/sub\n"), 0o644)
		defer os.Remove(hook)
		r := sh(t, "xsave -o "+out+" gen-pv")
		if r.code != 1 || !strings.Contains(r.stderr, "saving gen-pv") {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if st := fakeState(dir, "gen-pv"); st != "3 -b---- pv 128" {
			t.Fatalf("gen-pv is %q after a failed commit, want it running", st)
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".vm.xl.tmp-*")); len(left) != 0 {
			t.Fatalf("left behind: %v", left)
		}
	})
	t.Run("broken pipe", func(t *testing.T) {
		r := sh(t, "bash -c 'xsave gen-pv | head -c 1000 >/dev/null; exit ${PIPESTATUS[0]}'")
		oneLine(t, r, 1, "xsave: output closed early (broken pipe)")
		if st := fakeState(dir, "gen-pv"); st != "3 -b---- pv 128" {
			t.Fatalf("gen-pv is %q after a broken pipe", st)
		}
	})
	t.Run("-o kept only when complete", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "vm.xl")
		os.WriteFile(filepath.Join(dir, "save.fail"), []byte("xc: error: Failed to map guest memory\n"), 0o644)
		r := sh(t, "xsave -o "+out+" gen-pv")
		os.Remove(filepath.Join(dir, "save.fail"))
		oneLine(t, r, 1, "xl save gen-pv: xc: error: Failed to map guest memory")
		if _, err := os.Stat(out); err == nil {
			t.Fatal("a failed save left its output file")
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*tmp*")); len(left) > 0 {
			t.Fatalf("a failed save left %v", left)
		}
		mustSh(t, "xsave --keep -q -o "+out+" gen-pv && cmp "+out+" "+stream)
		if st := fakeState(dir, "gen-pv"); st != "3 -b---- pv 128" {
			t.Fatalf("gen-pv is %q after --keep", st)
		}
	})
	// xl writes the -o file itself and it is checked after: a bad one
	// is not kept, and the domain xl left paused runs on.
	t.Run("-o of a bad stream", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "vm.xl")
		good, _ := os.ReadFile(stream)
		os.WriteFile(stream, good[:len(good)-5000], 0o644)
		r := sh(t, "xsave -o "+out+" gen-pv")
		os.WriteFile(stream, good, 0o644)
		oneLine(t, r, 3, "xsave: saving gen-pv: ")
		if _, err := os.Stat(out); err == nil {
			t.Fatal("a bad stream was kept")
		}
		if st := fakeState(dir, "gen-pv"); st != "3 -b---- pv 128" {
			t.Fatalf("gen-pv is %q after a bad stream", st)
		}
		// A bad file to restore: refused before any xl restore.
		bad := filepath.Join(t.TempDir(), "bad.xl")
		os.WriteFile(bad, good[:len(good)-5000], 0o644)
		os.Remove(filepath.Join(dir, "calls"))
		oneLine(t, sh(t, "xrestore --name bad "+bad), 3, "offset 0x")
		if calls, _ := os.ReadFile(filepath.Join(dir, "calls")); strings.Contains(string(calls), "restore") || fakeState(dir, "bad") != "" {
			t.Fatalf("xl calls:\n%s", calls)
		}
	})
	// To standard output the stream is checked on its way (its pages
	// spliced, not read): out as xl wrote it, into a file or a pipe; a
	// bad one fails before the domain is destroyed.
	t.Run("stdout", func(t *testing.T) {
		good, _ := os.ReadFile(stream)
		for _, cut := range []int{len(good) / 2, len(good) - 5000} {
			os.WriteFile(stream, good[:cut], 0o644)
			r := sh(t, "xsave gen-pv > "+filepath.Join(t.TempDir(), "x"))
			os.WriteFile(stream, good, 0o644)
			oneLine(t, r, 3, "xsave: saving gen-pv: ")
			if st := fakeState(dir, "gen-pv"); st != "3 -b---- pv 128" {
				t.Fatalf("cut at %d: gen-pv is %q after a bad stream", cut, st)
			}
		}
		out := filepath.Join(t.TempDir(), "vm.xl")
		for _, cmd := range []string{"xsave -q gen-pv > " + out, "xsave -q gen-pv | cat > " + out} {
			fakeDomain(t, dir, "gen-pv", "3 -b---- pv 128")
			r := sh(t, "XSTREAM_XEN_TRACE=1 "+cmd+" && cmp "+out+" "+stream)
			if r.code != 0 {
				t.Fatalf("%s: exit %d: %s", cmd, r.code, r.stderr)
			}
			// The pages went by splice(2): most of the 8 MiB.
			m := regexp.MustCompile(`stream forwarded, (\d+) octets spliced`).FindStringSubmatch(r.stderr)
			if m == nil || len(m[1]) < 7 {
				t.Fatalf("%s: not spliced: %s", cmd, r.stderr)
			}
			if st := fakeState(dir, "gen-pv"); st != "" {
				t.Fatalf("%s: gen-pv is %q, want it destroyed", cmd, st)
			}
		}
		fakeDomain(t, dir, "gen-pv", "3 -b---- pv 128")
	})
	// Ctrl-C while xsave waits for room on standard output and xl for
	// xsave: xsave closes xl's pipe, xl fails and resumes the domain,
	// and xsave says so at once.
	t.Run("interrupted", func(t *testing.T) {
		good, _ := os.ReadFile(stream)
		defer os.WriteFile(stream, good, 0o644)
		mustSh(t, "xstream-gen -m 48M > "+stream) // more than both pipes hold
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close() // never read
		cmd := exec.Command(filepath.Join(bin, "xsave"), "gen-pv")
		cmd.Env = append(os.Environ(), "PATH="+bin+string(filepath.ListSeparator)+os.Getenv("PATH"))
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = pw, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		time.Sleep(time.Second)
		signalAndWait(t, cmd, os.Interrupt, 10*time.Second, &stderr)
		if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "interrupted; domain gen-pv left running") {
			t.Fatalf("exit %d, stderr %q", code, stderr.String())
		}
		if st := fakeState(dir, "gen-pv"); st != "3 -b---- pv 128" {
			t.Fatalf("gen-pv is %q after an interrupted save", st)
		}
	})
	// Ctrl-C while xrestore waits for input that does not come (an ssh
	// session that stalled): it stops at once, the half-read stream
	// built into nothing.
	t.Run("restore interrupted", func(t *testing.T) {
		good, _ := os.ReadFile(stream)
		for _, part := range [][]byte{nil, good[:3000000]} {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(filepath.Join(bin, "xrestore"), "--name", "stalled")
			cmd.Env = append(os.Environ(), "PATH="+bin+string(filepath.ListSeparator)+os.Getenv("PATH"))
			var stderr bytes.Buffer
			cmd.Stdin, cmd.Stderr = pr, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pr.Close()
			pw.Write(part)
			time.Sleep(500 * time.Millisecond)
			signalAndWait(t, cmd, os.Interrupt, 5*time.Second, &stderr)
			pw.Close()
			if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "interrupted; no domain was restored") {
				t.Fatalf("after %d octets: exit %d, stderr %q", len(part), code, stderr.String())
			}
			if st := fakeState(dir, "stalled"); st != "" {
				t.Fatalf("after %d octets: stalled is %q", len(part), st)
			}
		}
	})
	t.Run("no config", func(t *testing.T) {
		r := sh(t, "xstream-gen -m 4M -f libxl | xrestore")
		if r.code != 2 || !strings.Contains(r.stderr, "give an xl domain config file") || !strings.Contains(r.stderr, "hint: add --config FILE") {
			t.Fatalf("exit %d %q", r.code, r.stderr)
		}
		cfg := filepath.Join(t.TempDir(), "vm.cfg")
		os.WriteFile(cfg, []byte("name = \"fromlibxc\"\ntype = \"pv\"\nmemory = 4\n"), 0o644)
		mustSh(t, "xstream-gen -m 4M -f libxc | xrestore -q --config "+cfg)
		if fakeState(dir, "fromlibxc") == "" {
			t.Fatal("no domain restored from a bare libxc stream")
		}
	})
	t.Run("xl restore fails", func(t *testing.T) {
		os.WriteFile(filepath.Join(dir, "restore.fail"), []byte("xc: error: Failed to read Record Header from stream (0 = Success): Internal error\nlibxl: error: libxl_stream_read.c:852:libxl__xc_domain_restore_done: Domain 9:restoring domain: Success\n"), 0o644)
		defer os.Remove(filepath.Join(dir, "restore.fail"))
		oneLine(t, sh(t, "xrestore --name other "+stream), 1, "xrestore: xl restore: xc: error: Failed to read Record Header from stream (0 = Success): Internal error (and 1 more error lines")
		if fakeState(dir, "other") != "" {
			t.Fatal("a failed restore left a domain")
		}
	})
	t.Run("corrupt stream", func(t *testing.T) {
		r := sh(t, "head -c 3000000 "+stream+" | xrestore --name cut")
		oneLine(t, r, 3, "offset 0x")
		if fakeState(dir, "cut") != "" {
			t.Fatal("a cut stream left a domain")
		}
	})
	t.Run("name taken", func(t *testing.T) {
		// From a file, which can be restored again: nothing is left.
		r := sh(t, "XSTREAM_XEN_NAME_TIMEOUT=1 xrestore "+stream)
		if r.code != 1 || !strings.Contains(r.stderr, "a domain named gen-pv is still running") || !strings.Contains(r.stderr, "hint: add --force") {
			t.Fatalf("exit %d %q", r.code, r.stderr)
		}
		if st, in := fakeState(dir, "gen-pv"), fakeState(dir, "gen-pv--incoming"); st != "3 -b---- pv 128" || in != "" {
			t.Fatalf("from a file: gen-pv is %q, gen-pv--incoming %q", st, in)
		}
		// From a pipe the restored domain stays, paused, beside the one
		// that kept the name: its stream may have been the only copy.
		r = sh(t, "cat "+stream+" | XSTREAM_XEN_NAME_TIMEOUT=1 xrestore")
		if r.code != 1 || !strings.Contains(r.stderr, "left paused as gen-pv--incoming") || !strings.Contains(r.stderr, "hint: once the old domain is gone, xl rename") {
			t.Fatalf("from a pipe: exit %d, stderr %q", r.code, r.stderr)
		}
		if st, in := fakeState(dir, "gen-pv"), fakeState(dir, "gen-pv--incoming"); st != "3 -b---- pv 128" || !strings.Contains(in, "--p---") {
			t.Fatalf("from a pipe: gen-pv is %q, gen-pv--incoming %q", st, in)
		}
		os.Remove(filepath.Join(dir, "dom", "gen-pv--incoming"))
	})
	t.Run("store only", func(t *testing.T) {
		st := newStoreDir(t)
		mustSh(t, "xrestore -q --store-only --store "+st+" "+stream+" && xdomain --backend store --store "+st+" info gen-pv")
	})
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

// TestXenAnyInput: compressed, checksummed and legacy streams reach xl
// restore as the stream inside, and xsave --compress and --checksum work
// for a Xen domain (through the pipe, not the direct file).
func TestXenAnyInput(t *testing.T) {
	dir := fakeXen(t)
	restored := filepath.Join(dir, "restored.stream")
	mustSh(t, "xstream-gen -m 8M --seed 3 > "+filepath.Join(dir, "save.stream"))
	want := mustSh(t, "xstream-cat --digest "+filepath.Join(dir, "save.stream"))
	for _, save := range []string{"xsave --compress zstd", "xsave --compress lz4 --checksum", "xsave --checksum"} {
		fakeDomain(t, dir, "gen-pv", "3 -b---- pv 128")
		r := sh(t, save+" gen-pv | xrestore")
		if r.code != 0 {
			t.Fatalf("%s | xrestore: exit %d: %s", save, r.code, r.stderr)
		}
		if got := mustSh(t, "xstream-cat --digest "+restored); got != want {
			t.Fatalf("%s | xrestore: digest %s, want %s", save, got, want)
		}
		if kind := mustSh(t, "head -c 4 "+restored+" | od -An -c"); !strings.Contains(kind, "X   e   n") {
			t.Fatalf("%s: xl restore got %q, not an xl save file", save, kind)
		}
	}
	// To a file, compressed: through the pipe, not by xl into the file.
	fakeDomain(t, dir, "gen-pv", "3 -b---- pv 128")
	out := filepath.Join(t.TempDir(), "vm.xl.zst")
	mustSh(t, "xsave -q --compress zstd --checksum -o "+out+" gen-pv && zstd -t -q "+out+" && xrestore -q "+out)
	if got := mustSh(t, "xstream-cat --digest "+restored); got != want {
		t.Fatalf("xsave -o --compress: digest %s, want %s", got, want)
	}
	// A legacy stream, upgraded on its way into Xen.
	legacy := testutil.Corpus(t, "legacy") + "/w64-pv64-libxl.legacy"
	cfg := filepath.Join(t.TempDir(), "old.cfg")
	os.WriteFile(cfg, []byte("name = \"old\"\ntype = \"pv\"\nmemory = 16\n"), 0o644)
	r := sh(t, "xrestore --config "+cfg+" "+legacy)
	if r.code != 0 || fakeState(dir, "old") == "" {
		t.Fatalf("legacy into Xen: exit %d: %s", r.code, r.stderr)
	}
	if got, want := mustSh(t, "xstream-cat --digest "+restored), mustSh(t, "xstream-upgrade -q "+legacy+" | xstream-cat --digest"); got != want {
		t.Fatalf("legacy into Xen: digest %s, want the upgraded stream's %s", got, want)
	}
}
