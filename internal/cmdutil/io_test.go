//go:build unix

package cmdutil

import (
	"io/fs"
	"os"
	"path/filepath"
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
