package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/internal/gen"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

func TestParseHole(t *testing.T) {
	if h, err := parseHole("0xa0+0x20"); err != nil || *h != (gen.Hole{Start: 0xa0, Len: 0x20}) {
		t.Errorf("parseHole: %v, %v", h, err)
	}
	if h, err := parseHole("none"); err != nil || h.Len != 0 {
		t.Errorf("parseHole(none): %v, %v", h, err)
	}
	for _, in := range []string{"0xa0", "a0+20", "1+", "+1"} {
		if _, err := parseHole(in); err == nil {
			t.Errorf("parseHole(%q) succeeded", in)
		}
	}
}

func TestRunFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "dom.xl")
	if err := run(gen.Options{Type: stream.DomainX86HVM, Pages: 256}, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	wk, err := sniff.NewWalker(bytes.NewReader(b), &sniff.Options{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := wk.Next(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// Bad options are a usage error and leave no file.
	bad := filepath.Join(dir, "bad.xl")
	err = run(gen.Options{Pages: 4}, bad)
	if cmdutil.Code(err) != cmdutil.ExitUsage {
		t.Errorf("run with 4 PV pages: %v (exit %d), want a usage error", err, cmdutil.Code(err))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files left behind: %v", ents)
	}
}
