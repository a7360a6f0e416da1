package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xstream/xstream/internal/testutil"
)

// newStoreDir returns a new, empty store directory.
func newStoreDir(t *testing.T) string {
	t.Helper()
	return t.TempDir()
}

func inStore(dir, cmd string) string {
	return fmt.Sprintf("XSTREAM_STORE=%s; export XSTREAM_STORE; %s", dir, cmd)
}

func domainDigest(t *testing.T, dir, name string) string {
	t.Helper()
	return strings.TrimSpace(mustSh(t, inStore(dir, "xdomain digest "+name)))
}

// TestSaveRestoreRoundTrips: the digest of a domain, of its saved stream
// and of the domain restored from it agree, for PV and HVM, each format,
// through a pipe and through a file.
func TestSaveRestoreRoundTrips(t *testing.T) {
	for _, typ := range []string{"pv", "hvm"} {
		t.Run(typ, func(t *testing.T) {
			dir := newStoreDir(t)
			mustSh(t, inStore(dir, "xdomain create a --type "+typ+" --memory 8M --vcpus 2 --seed 7"))
			want := domainDigest(t, dir, "a")
			for _, f := range []string{"xl", "libxl", "libxc"} {
				got := strings.TrimSpace(mustSh(t, inStore(dir, "xsave -q -f "+f+" a | xstream-cat --digest")))
				if got != want {
					t.Fatalf("%s: stream digest %s, domain %s", f, got, want)
				}
				mustSh(t, inStore(dir, "xsave -q -f "+f+" a | xrestore -q --name b-"+f))
				if got := domainDigest(t, dir, "b-"+f); got != want {
					t.Fatalf("%s: restored through a pipe: %s, want %s", f, got, want)
				}
				file := filepath.Join(t.TempDir(), "a."+f)
				mustSh(t, inStore(dir, "xsave -q -f "+f+" -o "+file+" a && xstream-cat --verify -q "+file+" && xrestore -q --name c-"+f+" "+file))
				if got := domainDigest(t, dir, "c-"+f); got != want {
					t.Fatalf("%s: restored from a file: %s, want %s", f, got, want)
				}
			}
		})
	}
}

// TestSSH moves a domain through a real ssh to localhost. XSTREAM_SSH is
// the ssh command (tests/ssh-setup.sh prints one; .ci/run sets it).
func TestSSH(t *testing.T) {
	ssh := os.Getenv("XSTREAM_SSH")
	if ssh == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("XSTREAM_SSH is not set in CI; .ci/run must start sshd (tests/ssh-setup.sh)")
		}
		t.Skip("XSTREAM_SSH not set: run `export XSTREAM_SSH=\"$(tests/ssh-setup.sh)\"` to test over ssh")
	}
	for _, typ := range []string{"pv", "hvm"} {
		dir := newStoreDir(t)
		mustSh(t, inStore(dir, "xdomain create a --type "+typ+" --memory 8M"))
		want := domainDigest(t, dir, "a")
		for _, f := range []string{"xl", "libxl", "libxc"} {
			remote := fmt.Sprintf("%s env XSTREAM_STORE=%s %s/xrestore -q --name b-%s", ssh, dir, bin, f)
			mustSh(t, inStore(dir, "xsave -q -f "+f+" a | "+remote))
			if got := domainDigest(t, dir, "b-"+f); got != want {
				t.Fatalf("%s %s over ssh: %s, want %s", typ, f, got, want)
			}
		}
	}
}

// TestXenRealSaveFiles: every real xl save file restores, saves back
// byte for byte, and keeps its digest.
func TestXenRealSaveFiles(t *testing.T) {
	for _, p := range testutil.CorpusFiles(t, "xen-real", ".zst") {
		dir := newStoreDir(t)
		want := strings.TrimSpace(mustSh(t, "zstd -dc "+p+" | xstream-cat --digest"))
		mustSh(t, inStore(dir, "zstd -dc "+p+" | xrestore -q --name real"))
		if got := domainDigest(t, dir, "real"); got != want {
			t.Fatalf("%s: restored digest %s, want %s", p, got, want)
		}
		out := filepath.Join(t.TempDir(), "real.xl")
		mustSh(t, inStore(dir, "xsave -q -o "+out+" real"))
		mustSh(t, "zstd -dc "+p+" | cmp - "+out)
	}
}

func TestFailures(t *testing.T) {
	dir := newStoreDir(t)
	mustSh(t, inStore(dir, "xdomain create a --memory 16M"))
	want := domainDigest(t, dir, "a")
	stream := filepath.Join(t.TempDir(), "a.xl")
	mustSh(t, inStore(dir, "xsave -q -o "+stream+" a"))
	st, _ := os.Stat(stream)

	t.Run("cut", func(t *testing.T) {
		for _, n := range []int64{1, 47, 1000, st.Size() / 3, st.Size() - 9, st.Size() - 1} {
			r := sh(t, inStore(dir, fmt.Sprintf("head -c %d %s | xrestore --name cut", n, stream)))
			if r.code != 3 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "offset 0x") {
				t.Fatalf("cut at %d: exit %d, stderr %q", n, r.code, r.stderr)
			}
		}
		if r := sh(t, inStore(dir, "xdomain info cut")); r.code == 0 {
			t.Fatal("a cut stream left a domain")
		}
	})
	t.Run("flipped length", func(t *testing.T) {
		// The X86_PV_INFO record's length field, 8 octets after the
		// libxc domain header.
		b, _ := os.ReadFile(stream)
		i := strings.Index(string(b), "\xff\xff\xff\xff\xff\xff\xff\xffXENF") + 40 + 4
		b[i] ^= 0x10
		bad := filepath.Join(t.TempDir(), "bad.xl")
		os.WriteFile(bad, b, 0o644)
		r := sh(t, inStore(dir, "xrestore --name flipped "+bad))
		if r.code != 3 || sh(t, inStore(dir, "xdomain info flipped")).code == 0 {
			t.Fatalf("flipped length: exit %d %q", r.code, r.stderr)
		}
	})
	t.Run("EPIPE", func(t *testing.T) {
		r := sh(t, inStore(dir, "bash -c 'xsave -q a | head -c 1000 >/dev/null; exit ${PIPESTATUS[0]}'"))
		if r.code != 1 || strings.TrimSpace(r.stderr) != "xsave: output closed early (broken pipe)" {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if got := domainDigest(t, dir, "a"); got != want {
			t.Fatal("the domain changed")
		}
	})
	t.Run("killed xsave -o", func(t *testing.T) {
		before, _ := os.ReadFile(stream)
		// A slow consumer is not possible with -o; kill the writer as
		// soon as it has started instead, several times.
		for i := 0; i < 3; i++ {
			sh(t, inStore(dir, fmt.Sprintf("xsave -q -o %s a & pid=$!; sleep 0.0%d; kill -9 $pid; wait $pid", stream, i+1)))
			after, _ := os.ReadFile(stream)
			if string(after) != string(before) {
				t.Fatal("a killed xsave -o changed the previous file")
			}
		}
		left, _ := filepath.Glob(filepath.Join(filepath.Dir(stream), ".a.xl.tmp-*"))
		for _, l := range left {
			os.Remove(l) // a killed process cannot clean up; the next one is not confused by it
		}
	})
	t.Run("concurrent restores", func(t *testing.T) {
		// The first restore holds the name's lock while its input trickles
		// in; a second restore of the name meanwhile fails at once.
		done := make(chan result)
		go func() {
			done <- sh(t, inStore(dir, "(sleep 2; cat "+stream+") | xrestore -q --name same"))
		}()
		var second result
		for i := 0; i < 20; i++ {
			time.Sleep(100 * time.Millisecond)
			if second = sh(t, inStore(dir, "xrestore -q --name same "+stream)); second.code != 0 {
				break
			}
			sh(t, inStore(dir, "xdomain destroy same"))
		}
		first := <-done
		if first.code != 0 {
			t.Fatalf("first restore: %d %s", first.code, first.stderr)
		}
		if second.code != 1 || !strings.Contains(second.stderr, "locked") {
			t.Fatalf("second restore: exit %d %q", second.code, second.stderr)
		}
		if got := domainDigest(t, dir, "same"); got != want {
			t.Fatal("the first restore's domain is wrong")
		}
	})
	t.Run("full disk", func(t *testing.T) {
		small := t.TempDir()
		if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", small).Run(); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("cannot mount a small tmpfs in CI: %v", err)
			}
			t.Skipf("cannot mount a small tmpfs (needs root): %v", err)
		}
		defer exec.Command("umount", small).Run()
		r := sh(t, fmt.Sprintf("xrestore --store %s --name big %s", small, stream))
		if r.code != 1 || !strings.Contains(r.stderr, "no space left") {
			t.Fatalf("full disk: exit %d %q", r.code, r.stderr)
		}
		if sh(t, fmt.Sprintf("xdomain --store %s info big", small)).code == 0 {
			t.Fatal("a failed restore on a full disk left a domain")
		}
	})
}

// TestLegacyCorpusRestores: every legacy corpus stream restores (upgraded
// on the fly) to the domain that restoring Xen's conversion of it gives.
func TestLegacyCorpusRestores(t *testing.T) {
	dir := newStoreDir(t)
	for _, p := range testutil.CorpusFiles(t, "legacy", ".legacy") {
		name := strings.TrimSuffix(filepath.Base(p), ".legacy")
		mustSh(t, inStore(dir, "xrestore -q --name "+name+"-legacy < "+p))
		mustSh(t, inStore(dir, "xrestore -q --name "+name+"-v3 "+strings.TrimSuffix(p, ".legacy")+".v3"))
		if a, b := domainDigest(t, dir, name+"-legacy"), domainDigest(t, dir, name+"-v3"); a != b {
			t.Errorf("%s: restored from the legacy stream %s, from Xen's conversion %s", name, a, b)
		}
		// xstream-cat tells of the domain xrestore stores.
		if a, b := strings.TrimSpace(mustSh(t, "xstream-cat --digest "+p)), domainDigest(t, dir, name+"-legacy"); !strings.Contains(b, a) {
			t.Errorf("%s: xstream-cat --digest says %s, the restored domain's is %s", name, a, b)
		}
	}
}

// A signal while xrestore reads into the store, from a pipe that stalls
// or from a file, stops it at once and leaves nothing in the store.
func TestRestoreInterrupted(t *testing.T) {
	file := filepath.Join(t.TempDir(), "big.xl")
	mustSh(t, "xstream-gen -m 512M > "+file) // more than 0.1 s of work
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP} {
		for _, from := range []string{"pipe", "file"} {
			st := newStoreDir(t)
			cmd := exec.Command(filepath.Join(bin, "xrestore"), "--store", st, "--name", "vm")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			var pw *os.File
			if from == "pipe" {
				var pr *os.File
				if pr, pw, err = os.Pipe(); err != nil {
					t.Fatal(err)
				}
				cmd.Stdin = pr
				defer pr.Close()
			} else {
				f, err := os.Open(file)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				cmd.Stdin = f
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if pw != nil {
				pw.Write(good[:12<<20]) // returns once most is read; then nothing more
			} else {
				// Signal once it reads (its signal handling is set up
				// by then): its standard input has moved on.
				fdinfo := fmt.Sprintf("/proc/%d/fdinfo/0", cmd.Process.Pid)
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
					b, _ := os.ReadFile(fdinfo)
					if m := regexp.MustCompile(`pos:\s+(\d+)`).FindSubmatch(b); m != nil && string(m[1]) != "0" {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("xrestore did not start reading: %s", stderr.String())
					}
				}
			}
			signalAndWait(t, cmd, sig, 5*time.Second, &stderr)
			if pw != nil {
				pw.Close()
			}
			if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), "interrupted; no domain was restored") {
				t.Fatalf("%v, %s: exit %d, stderr %q", sig, from, cmd.ProcessState.ExitCode(), stderr.String())
			}
			if left, _ := filepath.Glob(filepath.Join(st, ".d", "*")); len(left) != 0 {
				t.Fatalf("%v, %s: left in the store: %v", sig, from, left)
			}
		}
	}
}

// An xdomain create stopped by a signal leaves nothing in the store.
func TestCreateInterrupted(t *testing.T) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		st := newStoreDir(t)
		cmd := exec.Command(filepath.Join(bin, "xdomain"), "--store", st, "create", "big", "--memory", "4G", "--fill", "realistic")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Signal once the domain's memory is being written.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			mem, _ := filepath.Glob(filepath.Join(st, ".d", "big.*.tmp", "memory"))
			if len(mem) == 1 {
				if fi, err := os.Stat(mem[0]); err == nil && fi.Size() > 0 {
					break
				}
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("xdomain create wrote no memory: %s", stderr.String())
			}
		}
		signalAndWait(t, cmd, sig, 5*time.Second, &stderr)
		if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), "interrupted; no domain was created") {
			t.Fatalf("%v: exit %d, stderr %q", sig, cmd.ProcessState.ExitCode(), stderr.String())
		}
		if left, _ := filepath.Glob(filepath.Join(st, ".d", "*")); len(left) != 0 {
			t.Fatalf("%v: left in the store: %v", sig, left)
		}
	}
}

// A name in the stream's config that the store cannot take is for the
// command line to replace: exit 2, and a hint.
func TestBadNameInConfig(t *testing.T) {
	src := filepath.Join(t.TempDir(), "s.xl")
	mustSh(t, "xstream-gen -m 4M --name gen-pv > "+src)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(`"gen-pv"`))
	if i < 0 {
		t.Fatal("no name in the config")
	}
	copy(b[i+1:], "gen/pv")
	os.WriteFile(src, b, 0o644)
	dir := newStoreDir(t)
	r := sh(t, inStore(dir, "xrestore < "+src))
	if r.code != 2 || !strings.Contains(r.stderr, `invalid domain name "gen/pv"`) || !strings.Contains(r.stderr, "hint: give the domain a name with --name NAME") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	mustSh(t, inStore(dir, "xrestore -q --name ok < "+src))
}
