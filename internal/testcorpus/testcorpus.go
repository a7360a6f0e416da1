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

	"github.com/xstream/xstream/internal/testutil"
)

// Root returns the repository root (testutil.RepoRoot).
func Root(t testing.TB) string { return testutil.RepoRoot(t) }

// Dir returns the corpus directory ../shared/corpus/<sub> beside the
// repository, failing the test if it is missing (testutil.Corpus).
func Dir(t testing.TB, sub string) string { return testutil.Corpus(t, sub) }

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
