// Command benchlegacy measures xstream-upgrade on a large legacy stream:
//
//	go run ./tests/benchlegacy [-size 1GiB] [-guest pv|hvm] [-width 32|64] [-runs 3] [-keep DIR]
//
// It generates the stream (tests/legacygen) in a temporary directory,
// builds xstream-upgrade, and in the same run times
//
//	cat in | cat >/dev/null                      (the reference: pipe speed)
//	cat in | cat | cat >/dev/null
//	cat in | xstream-upgrade | cat >/dev/null
//	cat in | convert-legacy-stream ... | cat >/dev/null   (if Python and Xen's tools are here)
//
// each through bash -c, interleaved in -runs rounds so that load from
// elsewhere on the machine falls on all alike, the best of each counting.
// cat | cat | cat is shown too: what any filter in the middle of the pipe
// costs. It prints the throughputs, their ratios to the reference,
// xstream-upgrade's peak RSS and CPU time (from /usr/bin/time, or the RSS
// from wait4's rusage when that is missing), and, when Xen's converter is
// present, checks that both outputs are identical.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xstream/xstream/tests/legacygen"
)

func main() {
	size := flag.String("size", "1GiB", "approximate stream size (KiB, MiB, GiB suffixes)")
	guest := flag.String("guest", "pv", "guest type: pv or hvm")
	width := flag.Int("width", 64, "toolstack width: 32 or 64")
	runs := flag.Int("runs", 5, "rounds of timed runs (the best of each pipeline counts)")
	keep := flag.String("keep", "", "generate into this directory and keep the files")
	xen := flag.String("xen", "/work/xen", "Xen source tree for convert-legacy-stream (skipped if missing)")
	flag.Parse()
	if err := run(*size, *guest, *width, *runs, *keep, *xen); err != nil {
		fmt.Fprintln(os.Stderr, "benchlegacy:", err)
		os.Exit(1)
	}
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	return int64(n * float64(mult)), err
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run it inside the repository (no go.mod found)")
		}
		dir = parent
	}
}

func run(sizeArg, guest string, width, runs int, keep, xen string) error {
	size, err := parseSize(sizeArg)
	if err != nil {
		return fmt.Errorf("-size %s: %v", sizeArg, err)
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir := keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "benchlegacy"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}

	bin := filepath.Join(dir, "xstream-upgrade")
	build := exec.Command("go", "build", "-o", bin, "./cmd/xstream-upgrade")
	build.Dir, build.Stderr = root, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building xstream-upgrade: %w", err)
	}

	in := filepath.Join(dir, fmt.Sprintf("w%d-%s.legacy", width, guest))
	cfg := legacygen.Config{Width: width, HVM: guest == "hvm", Pages: int(size / 4096), Extended: true,
		VCPUs: []int{0, 1, 2, 3}, Rounds: 1, ResendEvery: 50, QemuTail: 64 << 10, Seed: 42}
	if cfg.HVM {
		cfg.HVMParams = true
	}
	start := time.Now()
	f, err := os.Create(in)
	if err != nil {
		return err
	}
	if err := legacygen.Write(f, cfg); err != nil {
		return err
	}
	// Write it back now, so that writeback does not slow the runs.
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fi, err := os.Stat(in)
	if err != nil {
		return err
	}
	fmt.Printf("input:   %s, %d octets (%.2f GiB), generated in %v\n", filepath.Base(in), fi.Size(), float64(fi.Size())/(1<<30), time.Since(start).Round(time.Millisecond))
	// Warm the page cache so that every pipeline reads from memory.
	if _, _, err := timeIt("cat "+q(in)+" > /dev/null", 1); err != nil {
		return err
	}

	rssFile := filepath.Join(dir, "rss")
	timeCmd := ""
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		timeCmd = "/usr/bin/time -f '%M %U %S' -o " + q(rssFile) + " "
	}
	py := xenPython(xen)
	g := "pv"
	if cfg.HVM {
		g = "hvm"
	}
	conv := ""
	if py != nil {
		conv = fmt.Sprintf("%s %s -i /dev/stdin -o /dev/stdout -w %d -g %s", py.cmd, q(filepath.Join(xen, "tools/python/scripts/convert-legacy-stream")), width, g)
	}
	pipelines := []struct{ name, script string }{
		{"cat | cat", fmt.Sprintf("cat %s | cat > /dev/null", q(in))},
		{"cat | cat | cat", fmt.Sprintf("cat %s | cat | cat > /dev/null", q(in))},
		{"cat | xstream-upgrade | cat", fmt.Sprintf("cat %s | %s%s | cat > /dev/null", q(in), timeCmd, q(bin))},
	}
	if conv != "" {
		pipelines = append(pipelines, struct{ name, script string }{"cat | convert-legacy-stream | cat", fmt.Sprintf("cat %s | %s | cat > /dev/null", q(in), conv)})
	}
	// Interleaved rounds, so that load from elsewhere on the machine hits
	// every pipeline alike; the best of each counts.
	best := make([]time.Duration, len(pipelines))
	var rss int64
	cpu := time.Duration(0)
	for i := 0; i < runs; i++ {
		for k, p := range pipelines {
			d, ru, err := timeIt(p.script, 1)
			if err != nil {
				return err
			}
			if best[k] == 0 || d < best[k] {
				best[k] = d
			}
			if k != 2 {
				continue
			}
			if timeCmd == "" {
				rss = max(rss, ru) // wait4 of bash: the largest of its descendants
				continue
			}
			b, err := os.ReadFile(rssFile)
			if err != nil {
				return err
			}
			var kib int64
			var user, sys float64
			if _, err := fmt.Sscan(string(b), &kib, &user, &sys); err == nil {
				rss = max(rss, kib)
				if c := time.Duration((user + sys) * float64(time.Second)); cpu == 0 || c < cpu {
					cpu = c
				}
			}
		}
	}
	for k, p := range pipelines {
		report(p.name, fi.Size(), best[k], best[0])
	}
	fmt.Printf("xstream-upgrade: peak RSS %.1f MiB (target < 64 MiB)", float64(rss)/1024)
	if cpu > 0 {
		fmt.Printf(", CPU (user+sys) %.2f s", cpu.Seconds())
	}
	fmt.Println()
	if conv == "" {
		fmt.Println("Xen's converter: not measured (no python3/python2.7 or no Xen tools at " + xen + ")")
		return nil
	}
	fmt.Printf("xstream-upgrade vs Xen's converter (%s): %.2f× the throughput\n", py.name, best[3].Seconds()/best[2].Seconds())

	// Same output?
	sumOurs, err := output(fmt.Sprintf("cat %s | %s | sha256sum", q(in), q(bin)))
	if err != nil {
		return err
	}
	sumXen, err := output(fmt.Sprintf("cat %s | %s | sha256sum", q(in), conv))
	if err != nil {
		return err
	}
	if sumOurs != sumXen {
		return fmt.Errorf("outputs differ: ours %s, Xen's %s", sumOurs, sumXen)
	}
	fmt.Printf("outputs identical: sha256 %s\n", strings.Fields(sumOurs)[0])
	return nil
}

type python struct{ name, cmd string }

// xenPython finds an interpreter for Xen's converter.
func xenPython(xen string) *python {
	if _, err := os.Stat(filepath.Join(xen, "tools/python/scripts/convert-legacy-stream")); err != nil {
		return nil
	}
	env := "PYTHONPATH=" + q(filepath.Join(xen, "tools/python")) + " "
	for _, p := range []struct{ name, cmd string }{
		{"python3", "python3"},
		{"python2.7", "PYENV_VERSION=2.7.18 python2.7"},
	} {
		if err := exec.Command("bash", "-c", env+p.cmd+" -c 'import xen.migration.legacy'").Run(); err == nil {
			return &python{p.name, env + p.cmd}
		}
	}
	return nil
}

// timeIt runs script with bash -c runs times and returns the best wall
// time and the largest maximum RSS (KiB) wait4 reported.
func timeIt(script string, runs int) (time.Duration, int64, error) {
	best, rss := time.Duration(0), int64(0)
	for i := 0; i < runs; i++ {
		cmd := exec.Command("bash", "-c", "set -o pipefail; "+script)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, 0, fmt.Errorf("%s: %v: %s", script, err, stderr.String())
		}
		d := time.Since(start)
		if best == 0 || d < best {
			best = d
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = max(rss, int64(ru.Maxrss))
		}
	}
	return best, rss, nil
}

func output(script string) (string, error) {
	cmd := exec.Command("bash", "-c", "set -o pipefail; "+script)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	return string(b), err
}

func report(name string, size int64, d, ref time.Duration) {
	fmt.Printf("%-36s %7.3f s  %7.1f MB/s  %.2f× cat|cat\n", name, d.Seconds(), float64(size)/d.Seconds()/1e6, ref.Seconds()/d.Seconds())
}

func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
