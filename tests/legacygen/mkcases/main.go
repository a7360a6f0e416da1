// Command mkcases records what Xen's convert-legacy-stream makes of the
// generated cases (legacygen.Cases), so that the tests can hold our
// converter to it without Python.
//
//	go run ./tests/legacygen/mkcases -xen /path/to/xen [-python python2.7] [-keep DIR]
//
// For each case it generates the legacy stream, runs Xen's converter with
// the case's -w, -g, -x, -f and --skip-qemu, checks the output with Xen's
// verify-stream-v2, applies the case's documented deviation if it has
// one, and writes the size and SHA-256 of the result to
// tests/legacygen/testdata/xen-reference.json.
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/xstream/xstream/tests/legacygen"
)

// Reference is one case's entry in xen-reference.json.
type Reference struct {
	Size      int      `json:"size"`
	SHA256    string   `json:"sha256"`
	XenArgs   []string `json:"xen_args"`
	Deviation string   `json:"deviation,omitempty"`
}

func main() {
	xen := flag.String("xen", "/work/xen", "Xen source tree (tools/python)")
	python := flag.String("python", "python2.7", "interpreter for Xen's scripts (python2.7 handles -x)")
	keep := flag.String("keep", "", "keep the generated and converted files in this directory")
	out := flag.String("o", "tests/legacygen/testdata/xen-reference.json", "output file")
	flag.Parse()
	if err := run(*xen, *python, *keep, *out); err != nil {
		fmt.Fprintln(os.Stderr, "mkcases:", err)
		os.Exit(1)
	}
}

func run(xen, python, keep, out string) error {
	dir := keep
	if dir == "" {
		d, err := os.MkdirTemp("", "mkcases")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	refs := map[string]Reference{}
	for _, c := range legacygen.Cases() {
		in := filepath.Join(dir, c.Name+".legacy")
		v3 := filepath.Join(dir, c.Name+".v3")
		f, err := os.Create(in)
		if err != nil {
			return err
		}
		if err := legacygen.Write(f, c.Config); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		w, g := c.Layout()
		args := []string{"-w", w, "-g", g, "-f", c.Format}
		if c.Config.XL {
			args = append(args, "-x")
		}
		if c.SkipQemu {
			args = append(args, "--skip-qemu")
		}
		args = append(args, c.XenArgs...)
		if err := xenScript(xen, python, "convert-legacy-stream", append([]string{"-i", in, "-o", v3}, args...)...); err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		vf := c.Format
		if c.Config.XL {
			vf = "xl"
		}
		if err := xenScript(xen, python, "verify-stream-v2", "-i", v3, "-f", vf); err != nil && c.Deviation == "" {
			return fmt.Errorf("%s: Xen's verifier refuses Xen's output: %w", c.Name, err)
		}
		b, err := os.ReadFile(v3)
		if err != nil {
			return err
		}
		if c.Deviation == legacygen.DeviationEmptyPageData {
			if b, err = dropEmptyPageData(b); err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
			if err := os.WriteFile(v3+".adjusted", b, 0o644); err != nil {
				return err
			}
		}
		sum := sha256.Sum256(b)
		refs[c.Name] = Reference{Size: len(b), SHA256: hex.EncodeToString(sum[:]), XenArgs: args, Deviation: c.Deviation}
		fmt.Printf("%-30s %8d %x\n", c.Name, len(b), sum[:8])
	}
	j, err := json.MarshalIndent(refs, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(j, '\n'), 0o644)
}

func xenScript(xen, python, script string, args ...string) error {
	cmd := exec.Command(python, append([]string{filepath.Join(xen, "tools/python/scripts", script)}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(xen, "tools/python"))
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", script, err, o)
	}
	return nil
}

// dropEmptyPageData removes PAGE_DATA records with count 0 from a bare
// little-endian libxc stream (and keeps anything after its END as it is).
func dropEmptyPageData(b []byte) ([]byte, error) {
	const hdr = 24 + 16
	if len(b) < hdr {
		return nil, fmt.Errorf("stream too short")
	}
	out := append([]byte{}, b[:hdr]...)
	dropped := 0
	for off := hdr; ; {
		if off+8 > len(b) {
			return nil, fmt.Errorf("no END record")
		}
		typ := binary.LittleEndian.Uint32(b[off:])
		n := int(binary.LittleEndian.Uint32(b[off+4:]))
		end := off + 8 + (n+7)&^7
		if typ == 1 && n == 8 && binary.LittleEndian.Uint32(b[off+8:]) == 0 {
			dropped++
		} else {
			out = append(out, b[off:end]...)
		}
		off = end
		if typ == 0 {
			out = append(out, b[off:]...)
			break
		}
	}
	if dropped == 0 {
		return nil, fmt.Errorf("no PAGE_DATA record with count 0 to drop")
	}
	return out, nil
}
