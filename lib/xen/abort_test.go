package xen

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pierrec/lz4/v4"

	"github.com/xstream/xstream/internal/gen"
	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/rewrite"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

// wrapXL puts a shell script in front of fakexl: before runs first, with
// xl's arguments in "$@" and $d the fake's directory.
func wrapXL(t *testing.T, f *fake, before string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "xl")
	script := "#!/bin/sh\nd=$FAKEXL_DIR\n" + before + "\nexec " + f.host.XL + " \"$@\"\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	f.host.XL = p
}

// Another domain takes the name between our look-up and xl restore's
// (another restore, an xl create): xl fails, and that domain, not ours,
// must live on.
func TestRestoreSparesAnotherDomain(t *testing.T) {
	f := newFake(t)
	wrapXL(t, f, `[ "$1" = restore ] && { sleep 0.5; mkdir -p $d/dom; echo "42 -b---- pv 128" > $d/dom/vm; }`)
	_, err := restoreBytes(f, genStream(t, gen.Options{Pages: 256, Name: "vm"}), RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("error %v, want xl's", err)
	}
	if d := f.domains(); len(d) != 1 || d["vm"] != "42 -b---- pv 128" {
		t.Fatalf("domains %v: the other vm is gone\nxl calls:\n%s", d, f.calls())
	}
}

// A half-built domain is destroyed by its id, as a name can look like
// another domain's id: here the stream is cut, and fakexl, unlike libxl,
// leaves the domain it built from it for us to destroy.
func TestRestoreAbortsByID(t *testing.T) {
	f := newFake(t)
	f.addDomain("0x", 9, "-b----") // xl destroy 9 would find it first
	src := genStream(t, gen.Options{Pages: 256, Name: "9"})
	_, err := restoreBytes(f, src[:len(src)-100], RestoreOptions{})
	if err == nil {
		t.Fatal("no error")
	}
	if d := f.domains(); len(d) != 1 || d["0x"] != "9 -b---- pv 128" {
		t.Fatalf("domains %v\nxl calls:\n%s", d, f.calls())
	}
	if !strings.HasSuffix(f.calls(), "destroy 7\n") {
		t.Fatalf("xl calls:\n%s", f.calls())
	}
}

// xsave vm | xrestore on one host: once the old vm has gone (xsave
// destroyed it), the restored copy is the only one, and a failure after
// xl built it (here, of xl rename) must leave it, paused, and say so.
func TestRestoreKeepsTheOnlyCopy(t *testing.T) {
	f := newFake(t)
	f.addDomain("vm", 3, "--p---")
	f.write("restore.gone", []byte("vm"))
	wrapXL(t, f, `[ "$1" = rename ] && { echo "libxl: error: rename failed" >&2; exit 1; }`)
	_, err := restoreBytes(f, genStream(t, gen.Options{Pages: 256, Name: "vm"}), RestoreOptions{})
	if !errors.Is(err, ErrDomainLeft) || !strings.Contains(err.Error(), "left paused as vm--incoming") {
		t.Fatalf("error %v, want the rename's, saying where the domain is", err)
	}
	if d := f.domains(); len(d) != 1 || !strings.Contains(d["vm--incoming"], "--p---") {
		t.Fatalf("domains %v\nxl calls:\n%s", d, f.calls())
	}
}

// xl gets the libxl END record, on which it finishes the domain and
// starts it, only once the input has checked out to its end: here a
// damaged EMULATOR_CONTEXT that only the last CHECKSUM covers, and a
// damaged last zstd frame, whose check comes after the stream's octets.
func TestRestoreHoldsEnd(t *testing.T) {
	plain := genStream(t, gen.Options{Pages: 512, Name: "vm", Type: stream.DomainX86HVM})
	var sum bytes.Buffer
	if _, err := rewrite.Copy(&sum, bytes.NewReader(plain), &sniff.Options{Verify: true}, &rewrite.Options{Checksum: true}); err != nil {
		t.Fatal(err)
	}
	checked := sum.Bytes()
	at := int64(-1)
	wk, err := sniff.NewWalker(bytes.NewReader(checked), nil)
	if err != nil {
		t.Fatal(err)
	}
	for {
		it, err := wk.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if it.Kind == sniff.LibxlRecord && it.Libxl.Type == libxl.RecEmulatorContext {
			at = it.Offset + it.Size - 9
		}
	}
	if at < 0 {
		t.Fatal("no EMULATOR_CONTEXT record")
	}
	badTail := bytes.Clone(checked)
	badTail[at] ^= 0x40

	// One lz4 frame, as the lz4 tool writes: its content checksum comes
	// after all its blocks.
	var z bytes.Buffer
	zw := lz4.NewWriter(&z)
	if err := zw.Apply(lz4.ChecksumOption(true), lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	badFrame := z.Bytes()
	badFrame[len(badFrame)-1] ^= 1

	for name, in := range map[string][]byte{"checksum": badTail, "lz4": badFrame} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t)
			_, err := restoreBytes(f, in, RestoreOptions{})
			if err == nil {
				t.Fatal("no error")
			}
			got := f.read("restored.stream")
			wk, err := sniff.NewWalker(bytes.NewReader(got), nil)
			if err != nil {
				t.Fatal(err)
			}
			for {
				_, err := wk.Next()
				if err == io.EOF {
					t.Fatalf("xl got the whole stream, END included (%d octets)", len(got))
				}
				if err != nil {
					break // cut before END, as it should be
				}
			}
			if d := f.domains(); len(d) != 0 {
				t.Fatalf("domains %v", d)
			}
		})
	}
}

// xl restore exits 0 but leaves a process holding its output for longer
// than WaitDelay (as its daemon may): that is a success, not a failure
// that destroys the domain.
func TestRestoreWaitDelay(t *testing.T) {
	f := newFake(t)
	wrapXL(t, f, `[ "$1" = restore ] && { "`+f.host.XL+`" "$@" || exit; (sleep 3) & exit 0; }`)
	if _, err := restoreBytes(f, genStream(t, gen.Options{Pages: 256, Name: "vm"}), RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := f.domains(); !strings.Contains(d["vm"], "-b----") {
		t.Fatalf("domains %v", d)
	}
}
