package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xstream/xstream/internal/gen"
	"github.com/xstream/xstream/lib/domain"
	"github.com/xstream/xstream/lib/restore"
	"github.com/xstream/xstream/lib/store"
	"github.com/xstream/xstream/lib/xen"
)

// TestAutoBackend: on a Xen host, xsave NAME saves Xen's domain NAME, and
// a stored domain when Xen has none of that name; xl is asked about the
// name only when the store has it too.
func TestAutoBackend(t *testing.T) {
	dir := t.TempDir()
	caps := filepath.Join(dir, "capabilities")
	os.WriteFile(caps, []byte("control_d\n"), 0o644)
	old := xen.ProcCapabilities
	xen.ProcCapabilities = caps
	defer func() { xen.ProcCapabilities = old }()
	fake, _ := filepath.Abs("../../lib/xen/testdata/fakexl")
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	os.Symlink(fake, filepath.Join(bin, "xl"))
	t.Setenv("PATH", bin+string(filepath.ListSeparator)+os.Getenv("PATH"))
	xlDir := filepath.Join(dir, "xl")
	os.MkdirAll(filepath.Join(xlDir, "dom"), 0o755)
	t.Setenv("FAKEXL_DIR", xlDir)
	os.WriteFile(filepath.Join(xlDir, "dom", "vm"), []byte("3 -b---- pv 128\n"), 0o644)
	xenStream := genBytes(t, gen.Options{Pages: 256, Name: "vm", Seed: 1})
	os.WriteFile(filepath.Join(xlDir, "save.stream"), xenStream, 0o644)

	root := filepath.Join(dir, "store")
	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "vm"} {
		if _, err := restore.Restore(bytes.NewReader(genBytes(t, gen.Options{Pages: 128, Name: name, Seed: 2})), st, restore.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	calls := func() string {
		b, _ := os.ReadFile(filepath.Join(xlDir, "calls"))
		os.Remove(filepath.Join(xlDir, "calls"))
		return string(b)
	}
	save := func(name string) ([]byte, error) {
		out := filepath.Join(dir, name+".xl")
		err := run(options{store: root, name: name, output: out, format: "xl", byteOrder: "native", backend: "auto", quiet: true})
		b, _ := os.ReadFile(out)
		return b, err
	}

	got, err := save("a")
	if err != nil || calls() != "list a\n" || len(got) == 0 || bytes.Equal(got, xenStream) {
		t.Fatalf("a, only in the store: err %v", err)
	}
	got, err = save("vm")
	if c := calls(); err != nil || c != "list vm\nsave -p vm /proc/self/fd/3\ndestroy vm\n" || !bytes.Equal(got, xenStream) {
		t.Fatalf("vm, in Xen and the store: err %v, xl calls %q", err, c)
	}
	// vm is gone from Xen now: the store's.
	if got, err = save("vm"); err != nil || bytes.Equal(got, xenStream) || len(got) == 0 {
		t.Fatalf("vm, now only in the store: err %v", err)
	}
	calls()
	_, err = save("nosuch")
	if c := calls(); !errors.Is(err, domain.ErrNotFound) || !strings.HasPrefix(c, "save -p nosuch /") || !strings.Contains(err.Error(), "invalid domain identifier") {
		t.Fatalf("nosuch: %v, xl calls %q", err, c)
	}
}

func genBytes(t *testing.T, o gen.Options) []byte {
	t.Helper()
	d, err := gen.New(o)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := d.Write(io.Writer(&b)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
