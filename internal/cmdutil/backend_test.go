package cmdutil

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/xstream/xstream/lib/xen"
)

func TestChooseBackend(t *testing.T) {
	dir := t.TempDir()
	caps := filepath.Join(dir, "capabilities")
	old := xen.ProcCapabilities
	xen.ProcCapabilities = caps
	defer func() { xen.ProcCapabilities = old }()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "xl"), []byte("#!/bin/sh\nexit 0\n"), 0o755)
	t.Setenv("PATH", bin)

	choose := func(name string) Backend {
		t.Helper()
		b, err := ChooseBackend(name, false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return b
	}
	if b := choose("auto"); b.Xen != nil {
		t.Fatal("auto chose Xen without /proc/xen")
	}
	os.WriteFile(caps, nil, 0o644) // a domU: xenfs, but not the control domain
	if b := choose("auto"); b.Xen != nil {
		t.Fatal("auto chose Xen in a domU")
	}
	os.WriteFile(caps, []byte("control_d\n"), 0o644)
	if b := choose("auto"); b.Xen == nil || !b.Auto || b.Xen.XL != filepath.Join(bin, "xl") {
		t.Fatalf("auto in dom0: %+v", b)
	}
	if b := choose("store"); b.Xen != nil {
		t.Fatal("store chose Xen")
	}
	if b := choose("xen"); b.Xen == nil || b.Auto {
		t.Fatalf("xen: %+v", b)
	}
	var ue *UsageError
	if _, err := ChooseBackend("kvm", false); !errors.As(err, &ue) {
		t.Fatalf("kvm: %v", err)
	}
	t.Setenv("PATH", dir)
	if b := choose("auto"); b.Xen != nil {
		t.Fatal("auto chose Xen without xl")
	}
	if _, err := ChooseBackend("xen", false); !errors.Is(err, xen.ErrNoToolstack) {
		t.Fatalf("xen without xl: %v", err)
	}
}
