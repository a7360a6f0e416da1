//go:build linux

package xen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xstream/xstream/internal/gen"
	"github.com/xstream/xstream/lib/rewrite"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

func writeFile(t *testing.T, b []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.xl")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// An xl save file xl can read as it is: verified first, then read by xl
// itself, with the names from xenstore and no xl list.
func TestRestoreFileDirect(t *testing.T) {
	f := newFake(t)
	f.host.Xenstore = []string{fakeXenstore(t, map[string]string{"/local/domain": "0", "/local/domain/0/name": "Domain-0"})}
	src := genStream(t, gen.Options{Pages: 2048, Name: "vm"})
	res, err := f.host.Restore(context.Background(), writeFile(t, src), RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.read("restored.stream"), src) {
		t.Fatal("xl restore got other octets than the file")
	}
	if res.Name != "vm" || res.Type != stream.DomainX86PV || res.Bytes != int64(len(src)) {
		t.Fatalf("result %+v", res)
	}
	if got := f.calls(); got != "restore /proc/self/fd/3\n" {
		t.Fatalf("xl calls:\n%s", got)
	}
	if f.domains()["vm"] != "7 -b---- pv 128" {
		t.Fatalf("domains %v", f.domains())
	}
	// Without xenstore, xl list tells the names.
	f = newFake(t)
	if _, err := f.host.Restore(context.Background(), writeFile(t, src), RestoreOptions{Name: "vm", Paused: true}); err != nil {
		t.Fatal(err)
	}
	if got := f.calls(); got != "list\nrestore -p /proc/self/fd/3\n" {
		t.Fatalf("xl calls:\n%s", got)
	}
	if !bytes.Equal(f.read("restored.stream"), src) || f.domains()["vm"] != "7 --p--- pv 128" {
		t.Fatalf("domains %v", f.domains())
	}
}

// A bad file is refused before xl restore starts at all.
func TestRestoreFileCorrupt(t *testing.T) {
	f := newFake(t)
	src := genStream(t, gen.Options{Pages: 2048, Name: "vm"})
	bad := bytes.Clone(src)
	i := bytes.LastIndex(bad, []byte{1, 0, 0, 0, 0x08, 0x20, 0x40, 0}) // PAGE_DATA, 1024 pages
	if i < 0 {
		t.Fatal("no PAGE_DATA record found")
	}
	bad[i+8+8+7] |= 0x01
	for name, b := range map[string][]byte{"reserved pfn bits": bad, "cut short": src[:len(src)-4096], "trailing octets": append(bytes.Clone(src), 0)} {
		t.Run(name, func(t *testing.T) {
			_, err := f.host.Restore(context.Background(), writeFile(t, b), RestoreOptions{})
			var fe *stream.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a FormatError", err)
			}
			if strings.Contains(f.calls(), "restore") || len(f.domains()) != 0 {
				t.Fatalf("xl calls:\n%s\ndomains %v", f.calls(), f.domains())
			}
		})
	}
}

// Files xl cannot read as they are go through the pipe, re-framed, and
// their CHECKSUM records are checked: the first look skips no check.
func TestRestoreFileThroughPipe(t *testing.T) {
	src := genStream(t, gen.Options{Pages: 2048, Name: "vm"})
	var summed bytes.Buffer
	if _, err := rewrite.Copy(&summed, bytes.NewReader(src), &sniff.Options{Verify: true}, &rewrite.Options{Checksum: true}); err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(summed.Bytes())
	damaged[len(damaged)/2] ^= 0x40 // inside a page
	offset := append([]byte("junk"), src...)
	for _, tc := range []struct {
		name  string
		b     []byte
		skip  int64
		opts  RestoreOptions
		taken bool
		err   string
	}{
		{name: "checkpointed", b: genStream(t, gen.Options{Pages: 1024, Checkpoints: 2, Name: "vm"})},
		{name: "big-endian", b: genStream(t, gen.Options{Pages: 1024, ByteOrder: be, Name: "vm"})},
		{name: "checksummed", b: summed.Bytes()},
		{name: "checksummed, damaged", b: damaged, err: "checksum mismatch"},
		{name: "not from its start", b: offset, skip: 4},
		{name: "another name", b: src, opts: RestoreOptions{Name: "other"}},
		{name: "name taken", b: src, taken: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			if tc.taken {
				f.addDomain("vm", 3, "--p---")
				f.write("restore.gone", []byte("vm"))
			}
			in := writeFile(t, tc.b)
			in.Seek(tc.skip, io.SeekStart)
			_, err := f.host.Restore(context.Background(), in, tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				if len(f.domains()) != 0 {
					t.Fatalf("domains %v", f.domains())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := f.read("restored.stream")
			if bytes.Equal(got, tc.b[tc.skip:]) && tc.name != "not from its start" {
				t.Fatal("the file reached xl unchanged")
			}
			if digestOf(t, got) != digestOf(t, tc.b[tc.skip:]) {
				t.Fatal("the domain changed on its way to xl")
			}
			if !strings.Contains(f.calls(), "restore /proc/self/fd/3") && !strings.Contains(f.calls(), "restore -p /proc/self/fd/3") {
				t.Fatalf("xl calls:\n%s", f.calls())
			}
		})
	}
}
