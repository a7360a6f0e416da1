//go:build linux && !arm

package writeback

import (
	"os"
	"path/filepath"
	"testing"
)

// Start reaches the kernel: a file takes it, a pipe, which has no pages
// to write, is refused.
func TestStart(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 1<<16)); err != nil {
		t.Fatal(err)
	}
	if err := Start(f); err != nil {
		t.Fatalf("Start of a file: %v", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := Start(w); err == nil {
		t.Fatal("Start of a pipe succeeded")
	}
	f.Close()
	if err := Start(f); err == nil {
		t.Fatal("Start of a closed file succeeded")
	}
}
