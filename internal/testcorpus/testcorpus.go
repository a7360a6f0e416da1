// Package testcorpus finds the shared test corpus for tests: the
// directory ../shared/corpus beside the repository (the worktrees, and CI's
// checkout, sit next to shared/). Tests fail, rather than skip, when it is
// missing: the corpus is what the legacy conversion is judged against.
package testcorpus

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Root returns the repository root: the nearest directory above the
// working directory that holds go.mod.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testcorpus: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Dir returns the corpus directory ../shared/corpus/<sub> relative to the
// repository root, failing the test if it is missing.
func Dir(t testing.TB, sub string) string {
	t.Helper()
	dir := filepath.Join(Root(t), "..", "shared", "corpus", sub)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("test corpus %s is missing (it must sit at ../shared/corpus beside the repository): %v", dir, err)
	}
	return dir
}

// LegacyCase is one case of the legacy corpus manifest.
type LegacyCase struct {
	Name          string   `json:"name"`
	Width         int      `json:"width"`
	Guest         string   `json:"guest"`
	PVGuestBits   int      `json:"pv_guest_bits"`
	InputFraming  string   `json:"input_framing"`
	OutputFormat  string   `json:"output_format"`
	ConverterArgs []string `json:"converter_args"`
	Description   string   `json:"description"`
}

// Legacy returns the legacy corpus directory and its cases.
func Legacy(t testing.TB) (string, []LegacyCase) {
	t.Helper()
	dir := Dir(t, "legacy")
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Cases []LegacyCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s/manifest.json: %v", dir, err)
	}
	if len(m.Cases) == 0 {
		t.Fatalf("%s/manifest.json lists no cases", dir)
	}
	return dir, m.Cases
}

// OutputArgs returns the case's converter arguments that choose the
// output (-f FORMAT, --skip-qemu), without the input, output and the
// layout arguments (-i, -o, -w, -g, -x) that xstream-upgrade works out.
func (c LegacyCase) OutputArgs() []string {
	var out []string
	a := c.ConverterArgs
	for i := 0; i < len(a); i++ {
		switch a[i] {
		case "-f", "--format":
			if i+1 < len(a) {
				out = append(out, "-f", a[i+1])
				i++
			}
		case "--skip-qemu":
			out = append(out, a[i])
		case "-i", "-o", "-w", "-g", "--in", "--out", "--width", "--guest-type":
			i++
		}
	}
	return out
}
