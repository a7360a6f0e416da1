//go:build unix

package cmdutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// A new output file gets the mode the umask gives (a backup holds a
// domain's secrets), and one that replaces a file keeps that file's.
func TestCommitMode(t *testing.T) {
	defer func(m fs.FileMode) { umask = m }(umask)
	umask = 0o077
	dir := t.TempDir()
	path := filepath.Join(dir, "vm.xl")
	commit := func() {
		t.Helper()
		o, err := CreateOutput(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.Write([]byte("stream")); err != nil {
			t.Fatal(err)
		}
		if err := o.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	commit()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new file: %v %v, want -rw-------", fi.Mode(), err)
	}
	os.Chmod(path, 0o640)
	commit()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("replacing file: %v %v, want -rw-r-----", fi.Mode(), err)
	}
	umask = 0o022
	os.Remove(path)
	commit()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("new file under umask 022: %v %v", fi.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// -o to a device, a FIFO or through a symbolic link writes where the
// shell's > would, and never replaces the device, the FIFO or the link
// with a regular file; a directory is refused.
func TestOutputInPlace(t *testing.T) {
	write := func(path string) error {
		o, err := CreateOutput(path)
		if err != nil {
			return err
		}
		if _, err := o.Write([]byte("stream")); err != nil {
			o.Abort()
			return err
		}
		return o.Commit()
	}
	if err := write(os.DevNull); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(os.DevNull); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("%s is now %v (%v)", os.DevNull, fi.Mode(), err)
	}

	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- b
	}()
	if err := write(fifo); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "stream" {
		t.Fatalf("the FIFO's reader got %q", b)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the FIFO is now %v (%v)", fi.Mode(), err)
	}

	// /dev/fd/N (and /dev/stdout) name a pipe through a magic link.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		b, _ := io.ReadAll(pr)
		got <- b
	}()
	if err := write(fmt.Sprintf("/proc/self/fd/%d", pw.Fd())); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if b := <-got; string(b) != "stream" {
		t.Fatalf("the pipe's reader got %q", b)
	}

	target, link := filepath.Join(dir, "target.xl"), filepath.Join(dir, "link.xl")
	os.Symlink("target.xl", link) // dangling until written
	for range 2 {
		if err := write(link); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("the link is now %v (%v)", fi.Mode(), err)
		}
		if b, _ := os.ReadFile(target); string(b) != "stream" {
			t.Fatalf("the link's target holds %q", b)
		}
	}

	var ue *UsageError
	for _, d := range []string{dir, dir + "/new/"} {
		if err := write(d); !errors.As(err, &ue) {
			t.Fatalf("-o %s: %v, want a usage error", d, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// Only the devices that throw writes away discard: not another device,
// nor a file.
func TestDiscards(t *testing.T) {
	for _, c := range []struct {
		path string
		want bool
	}{
		{os.DevNull, true},
		{"/dev/zero", true},
		{"/dev/full", false}, // its writes fail
		{"/dev/urandom", false},
		{filepath.Join(t.TempDir(), "out"), false},
	} {
		o, err := CreateOutput(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.Discards(); got != c.want {
			t.Errorf("%s: Discards() = %v", c.path, got)
		}
		o.Abort()
	}
}

// Commit syncs the file before its rename and the directory after it; a
// failed file sync leaves nothing, a failed directory sync leaves the
// file in place and says it may not last.
func TestCommitOrder(t *testing.T) {
	defer func(s func(*os.File) error, r func(string, string) error) { syncFile, renameFile = s, r }(syncFile, renameFile)
	var log []string
	failSync := func(name string) bool { return false }
	syncFile = func(f *os.File) error {
		name := filepath.Base(f.Name())
		log = append(log, "sync "+name)
		if failSync(name) {
			return errors.New("injected sync failure")
		}
		return f.Sync()
	}
	renameFile = func(from, to string) error {
		log = append(log, "rename to "+filepath.Base(to))
		return os.Rename(from, to)
	}
	dir := t.TempDir()
	final := filepath.Join(dir, "out")
	commit := func() (tmp string, err error) {
		log = nil
		o, err := CreateOutput(final)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.Write([]byte("stream")); err != nil {
			t.Fatal(err)
		}
		tmp = filepath.Base(o.TempPath())
		return tmp, o.Commit()
	}

	tmp, err := commit()
	if want := []string{"sync " + tmp, "rename to out", "sync " + filepath.Base(dir)}; err != nil || !slices.Equal(log, want) {
		t.Fatalf("%v: %q, want %q", err, log, want)
	}
	os.Remove(final)

	failSync = func(name string) bool { return name == filepath.Base(dir) }
	_, err = commit()
	var nd *NotDurableError
	if !errors.As(err, &nd) {
		t.Fatalf("directory sync fails: %v, want a NotDurableError", err)
	}
	if b, _ := os.ReadFile(final); string(b) != "stream" {
		t.Fatalf("directory sync fails: the file holds %q", b)
	}
	os.Remove(final)

	failSync = func(name string) bool { return strings.HasPrefix(name, ".out.tmp-") }
	if _, err = commit(); err == nil {
		t.Fatal("file sync fails: Commit succeeded")
	}
	if slices.Contains(log, "rename to out") {
		t.Fatalf("file sync fails: renamed anyway: %q", log)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("file sync fails: left %v", left)
	}
}
