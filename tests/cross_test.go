package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildArch builds xsave, xrestore and xdomain for GOARCH into a temp dir.
func buildArch(t *testing.T, arch string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/xsave", "./cmd/xrestore", "./cmd/xdomain")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOARCH="+arch, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building for %s: %v\n%s", arch, err, out)
	}
	return dir
}

// TestCrossArch: the seed's own failure was a 32-bit saver and a 64-bit
// restorer disagreeing. Here the 386 build saves and the amd64 build
// restores and the reverse, and the big-endian s390x build (under
// qemu-user) saves natively big-endian for amd64 to restore.
func TestCrossArch(t *testing.T) {
	dir := newStoreDir(t)
	mustSh(t, inStore(dir, "xdomain create a --type pv --memory 8M --vcpus 2 && xdomain create h --type hvm --memory 8M"))
	want := map[string]string{"a": domainDigest(t, dir, "a"), "h": domainDigest(t, dir, "h")}
	b386 := buildArch(t, "386")
	for _, name := range []string{"a", "h"} {
		mustSh(t, inStore(dir, b386+"/xsave -q "+name+" | xrestore -q --name "+name+"-from386"))
		mustSh(t, inStore(dir, "xsave -q "+name+" | "+b386+"/xrestore -q --name "+name+"-on386"))
		for _, n := range []string{name + "-from386", name + "-on386"} {
			if got := domainDigest(t, dir, n); got != want[name] {
				t.Fatalf("%s: %s, want %s", n, got, want[name])
			}
		}
		if got := strings.TrimSpace(mustSh(t, inStore(dir, b386+"/xdomain digest "+name))); got != want[name] {
			t.Fatalf("386 xdomain digest %s: %s", name, got)
		}
	}
	// 2^32 pages do not fit the 386 build's int: refused, not wrapped
	// round to a small domain.
	for _, size := range []string{"8T", "16T"} {
		cmd := exec.Command(filepath.Join(b386, "xdomain"), "--store", dir, "create", "big", "--memory", size)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "more than") {
			t.Fatalf("386 xdomain create --memory %s: exit %d, %s", size, cmd.ProcessState.ExitCode(), out)
		}
	}

	qemu, err := exec.LookPath("qemu-s390x-static")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("qemu-s390x-static missing in CI (.ci/run installs qemu-user-static)")
		}
		t.Skip("qemu-s390x-static not installed: the big-endian half needs qemu-user-static")
	}
	bs390 := buildArch(t, "s390x")
	for _, name := range []string{"a", "h"} {
		stream := filepath.Join(t.TempDir(), name+".xl")
		mustSh(t, inStore(dir, qemu+" "+bs390+"/xsave -q -o "+stream+" "+name))
		if out := mustSh(t, "xstream-cat "+stream+" | sed -n 4p"); !strings.Contains(out, "big-endian") {
			t.Fatalf("s390x xsave wrote %q, want a big-endian libxc stream", out)
		}
		mustSh(t, inStore(dir, "xrestore -q --name "+name+"-froms390x "+stream))
		if got := domainDigest(t, dir, name+"-froms390x"); got != want[name] {
			t.Fatalf("%s from s390x: %s, want %s", name, got, want[name])
		}
		mustSh(t, inStore(dir, "xsave -q "+name+" | "+qemu+" "+bs390+"/xrestore -q --name "+name+"-ons390x"))
		if got := domainDigest(t, dir, name+"-ons390x"); got != want[name] {
			t.Fatalf("%s restored on s390x: %s, want %s", name, got, want[name])
		}
	}
}
