// Command benchcompress measures compression of a saved domain in one
// run (go run ./tests/benchcompress; make bench runs it): on a realistic
// domain of -size (1 GiB), against the command-line tools on the same
// bytes, each pipeline -runs times, the best counting:
//
//	xsave a | xstream-compress          vs  xsave a | zstd -1 -T0
//	xsave a | xstream-compress --lz4    vs  xsave a | lz4 -1
//
// throughput (octets of the uncompressed stream per second) and output
// size (target: our zstd at least as fast as zstd -1 -T0, at no more than
// 1.02 times its size); then the whole pipeline
//
//	xsave a | xstream-compress | xstream-compress -d | xrestore --name b
//
// against an uncompressed xsave a | xrestore --name b (target: at least
// 0.5 of its throughput), and the same with compression inside xsave and
// xrestore. Peak RSS of every compressing or decompressing process is
// reported (target: under 128 MiB). A missed target prints MISS; the exit
// status is 0 unless something fails to run.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/xstream/xstream/internal/benchutil"
	"github.com/xstream/xstream/internal/cmdutil"
)

const (
	speedTarget    = 1.0  // our zstd's throughput over zstd -1 -T0's
	sizeTarget     = 1.02 // our zstd's output size over zstd -1 -T0's, at most
	pipelineTarget = 0.5  // compressed pipeline over the uncompressed one
	rssTarget      = 128 << 20
)

type options struct {
	size, bin, dir string
	runs           int
	keep           bool
}

func main() {
	var o options
	flag.StringVar(&o.size, "size", "1GiB", "guest memory of the domain")
	flag.StringVar(&o.bin, "bin", "", "directory with the commands (default: build them)")
	flag.StringVar(&o.dir, "dir", "", "parent of the temporary directory")
	flag.IntVar(&o.runs, "runs", 3, "runs of each pipeline; the best counts")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "benchcompress:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	size, err := cmdutil.ParseSize(o.size)
	if err != nil {
		return err
	}
	for _, tool := range []string{"zstd", "lz4"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install %s)", tool, tool)
		}
	}
	ws, err := benchutil.NewWorkspace(o.dir, "xstream-benchcompress-", o.bin, o.keep, os.Stdout)
	if err != nil {
		return err
	}
	defer ws.Close()
	cmd := ws.Cmd
	env := append(os.Environ(), "XSTREAM_STORE="+filepath.Join(ws.Dir, "store"))
	sh := func(args ...string) error { return benchutil.Run(env, args...) }

	t0 := time.Now()
	if err := sh(cmd("xdomain", "create", "a", "--memory", o.size, "--vcpus", "2")...); err != nil {
		return err
	}
	fmt.Printf("domain:   realistic x86 PV, %s of memory, created in %.1fs\n", cmdutil.Size(size), time.Since(t0).Seconds())
	fmt.Printf("machine:  %s/%s, %d CPUs, %s; best of %d runs\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), o.runs)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load:     %s", la)
	}
	xsave := cmd("xsave", "-q", "a")
	ref, err := benchutil.Best(o.runs, func() (benchutil.Result, error) { return benchutil.Pipeline(env, nil, xsave) })
	if err != nil {
		return err
	}
	streamSize := ref.Out
	mib := func(d time.Duration) float64 { return float64(streamSize) / (1 << 20) / d.Seconds() }

	misses := 0
	mark := func(ok bool) string {
		if ok {
			return "ok"
		}
		misses++
		return "MISS"
	}
	fmt.Printf("stream:   %s (xsave a | the benchmark: %.2fs, %.0f MiB/s)\n", cmdutil.Size(streamSize), ref.Wall.Seconds(), mib(ref.Wall))

	// Compression against the tools, on the same bytes from xsave.
	fmt.Printf("\n%-36s %8s %9s %12s %7s %10s %9s\n", "compression", "time", "MiB/s", "output", "ratio", "peak RSS", "CPU")
	type pair struct {
		name        string
		ours, their []string
	}
	for _, p := range []pair{
		{"zstd", cmd("xstream-compress"), []string{"zstd", "-q", "-1", "-T0"}},
		{"lz4", cmd("xstream-compress", "--lz4"), []string{"lz4", "-q", "-1"}},
	} {
		ours, err := benchutil.Best(o.runs, func() (benchutil.Result, error) { return benchutil.Pipeline(env, nil, xsave, p.ours) })
		if err != nil {
			return err
		}
		their, err := benchutil.Best(o.runs, func() (benchutil.Result, error) { return benchutil.Pipeline(env, nil, xsave, p.their) })
		if err != nil {
			return err
		}
		for _, r := range []benchutil.Result{ours, their} {
			name := "xsave a | " + strings.Join(append([]string{filepath.Base(r.Stages[1].Args[0])}, r.Stages[1].Args[1:]...), " ")
			fmt.Printf("%-36s %7.2fs %9.0f %12s %7.3f %10s %8.2fs\n", name, r.Wall.Seconds(), mib(r.Wall), cmdutil.Size(r.Out),
				float64(r.Out)/float64(streamSize), cmdutil.Size(r.Stages[1].RSS), r.Stages[1].CPU.Seconds())
		}
		speed := their.Wall.Seconds() / ours.Wall.Seconds()
		sizeRatio := float64(ours.Out) / float64(their.Out)
		fmt.Printf("  ours/theirs: speed %.2f, size %.3f", speed, sizeRatio)
		if p.name == "zstd" {
			fmt.Printf("   (targets: speed >= %.1f %s, size <= %.2f %s)", speedTarget, mark(speed >= speedTarget), sizeTarget, mark(sizeRatio <= sizeTarget))
		}
		fmt.Printf("   peak RSS < %d MiB: %s\n", rssTarget>>20, mark(ours.Stages[1].RSS < rssTarget))
	}

	// Whole pipelines into a restore; each restore's domain is destroyed
	// after it is timed.
	restore := func(cmds ...[]string) (benchutil.Result, error) {
		return benchutil.Best(o.runs, func() (benchutil.Result, error) {
			r, err := benchutil.Pipeline(env, nil, cmds...)
			if err == nil {
				err = sh(cmd("xdomain", "destroy", "b")...)
			}
			return r, err
		})
	}
	xrestore := cmd("xrestore", "-q", "--name", "b")
	plain, err := restore(xsave, xrestore)
	if err != nil {
		return err
	}
	filters, err := restore(xsave, cmd("xstream-compress"), cmd("xstream-compress", "-d"), xrestore)
	if err != nil {
		return err
	}
	inside, err := restore(cmd("xsave", "-q", "-z", "zstd", "a"), xrestore)
	if err != nil {
		return err
	}
	lz, err := restore(xsave, cmd("xstream-compress", "--lz4"), xrestore)
	if err != nil {
		return err
	}
	tools, err := restore(xsave, []string{"zstd", "-q", "-1", "-T0"}, []string{"zstd", "-q", "-d"}, xrestore)
	if err != nil {
		return err
	}
	fmt.Printf("\n%-66s %8s %9s %7s %8s\n", "save and restore", "time", "MiB/s", "ratio", "target")
	line := func(name string, r benchutil.Result, target float64) {
		ratio := plain.Wall.Seconds() / r.Wall.Seconds()
		t := "-"
		if target > 0 {
			t = fmt.Sprintf("%.1f %s", target, mark(ratio >= target))
		}
		fmt.Printf("%-66s %7.2fs %9.0f %7.2f %8s\n", name, r.Wall.Seconds(), mib(r.Wall), ratio, t)
	}
	line("xsave a | xrestore --name b", plain, 0)
	line("xsave a | xstream-compress | xstream-compress -d | xrestore", filters, pipelineTarget)
	line("xsave -z zstd a | xrestore --name b", inside, pipelineTarget)
	line("xsave a | xstream-compress --lz4 | xrestore --name b", lz, pipelineTarget)
	line("xsave a | zstd -1 -T0 | zstd -d | xrestore --name b (the tools)", tools, 0)

	fmt.Printf("\npeak RSS and CPU of each process (target < %d MiB in the compressed pipelines):\n", rssTarget>>20)
	for i, r := range []benchutil.Result{plain, filters, inside, lz} {
		for _, s := range r.Stages {
			name := filepath.Base(s.Args[0]) + " " + strings.Join(s.Args[1:], " ")
			m := "-"
			if i > 0 {
				m = mark(s.RSS < rssTarget)
			}
			fmt.Printf("  %-40s %10s  CPU %6.2fs  %s\n", name, cmdutil.Size(s.RSS), s.CPU.Seconds(), m)
		}
		fmt.Println()
	}
	if misses > 0 {
		fmt.Printf("\nMISS: %d target(s) missed\n", misses)
	} else {
		fmt.Printf("\nall targets met\n")
	}
	return nil
}
