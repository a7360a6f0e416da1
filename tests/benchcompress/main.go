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
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

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

// stage is one process of a pipeline and what it used.
type stage struct {
	args []string
	rss  int64
	cpu  time.Duration
}

type result struct {
	wall   time.Duration
	out    int64 // octets out of the last stage
	stages []stage
}

// pipeline runs the commands connected by pipes, the last one's output
// counted and dropped, and measures the wall time and each process's
// rusage.
func pipeline(env []string, cmds ...[]string) (result, error) {
	res := result{}
	var procs []*exec.Cmd
	var errs []*bytes.Buffer
	var closers []*os.File
	var prev *os.File
	for _, args := range cmds {
		c := exec.Command(args[0], args[1:]...)
		c.Env = env
		var eb bytes.Buffer
		c.Stderr = &eb
		if prev != nil {
			c.Stdin = prev
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return res, err
		}
		c.Stdout = pw
		closers = append(closers, pw, pr)
		procs = append(procs, c)
		errs = append(errs, &eb)
		prev = pr
	}
	counted := make(chan int64)
	start := time.Now()
	go func() {
		n, _ := io.Copy(io.Discard, prev)
		counted <- n
	}()
	for _, c := range procs {
		if err := c.Start(); err != nil {
			return res, err
		}
	}
	// Our copies of the pipe ends, except the one the counter reads.
	for _, f := range closers {
		if f != prev {
			f.Close()
		}
	}
	var werr error
	for i, c := range procs {
		if err := c.Wait(); err != nil {
			werr = errors.Join(werr, fmt.Errorf("%s: %w: %s", strings.Join(cmds[i], " "), err, errs[i].String()))
		}
	}
	res.out = <-counted
	res.wall = time.Since(start)
	prev.Close()
	if werr != nil {
		return res, werr
	}
	for i, c := range procs {
		s := stage{args: cmds[i], cpu: c.ProcessState.UserTime() + c.ProcessState.SystemTime()}
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
			s.rss = ru.Maxrss << 10
		}
		res.stages = append(res.stages, s)
	}
	return res, nil
}

// best runs f runs times and keeps the fastest run, and the largest peak
// RSS of each stage over all runs.
func best(runs int, f func() (result, error)) (result, error) {
	var b result
	for i := 0; i < runs; i++ {
		r, err := f()
		if err != nil {
			return r, err
		}
		if i == 0 || r.wall < b.wall {
			rss := b.stages
			b = r
			for j := range rss {
				b.stages[j].rss = max(b.stages[j].rss, rss[j].rss)
			}
		} else {
			for j := range r.stages {
				b.stages[j].rss = max(b.stages[j].rss, r.stages[j].rss)
			}
		}
	}
	return b, nil
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
	tmp, err := os.MkdirTemp(o.dir, "xstream-benchcompress-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	bin := o.bin
	if bin == "" {
		bin = filepath.Join(tmp, "bin")
		build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/...")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build: %v\n%s", err, out)
		}
	}
	bin, _ = filepath.Abs(bin)
	cmd := func(name string, args ...string) []string { return append([]string{filepath.Join(bin, name)}, args...) }
	env := append(os.Environ(), "XSTREAM_STORE="+filepath.Join(tmp, "store"))
	sh := func(args ...string) error {
		c := exec.Command(args[0], args[1:]...)
		c.Env = env
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}

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
	ref, err := best(o.runs, func() (result, error) { return pipeline(env, xsave) })
	if err != nil {
		return err
	}
	streamSize := ref.out
	mib := func(d time.Duration) float64 { return float64(streamSize) / (1 << 20) / d.Seconds() }

	misses := 0
	mark := func(ok bool) string {
		if ok {
			return "ok"
		}
		misses++
		return "MISS"
	}
	fmt.Printf("stream:   %s (xsave a | the benchmark: %.2fs, %.0f MiB/s)\n", cmdutil.Size(streamSize), ref.wall.Seconds(), mib(ref.wall))

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
		ours, err := best(o.runs, func() (result, error) { return pipeline(env, xsave, p.ours) })
		if err != nil {
			return err
		}
		their, err := best(o.runs, func() (result, error) { return pipeline(env, xsave, p.their) })
		if err != nil {
			return err
		}
		for _, r := range []result{ours, their} {
			name := "xsave a | " + strings.Join(append([]string{filepath.Base(r.stages[1].args[0])}, r.stages[1].args[1:]...), " ")
			fmt.Printf("%-36s %7.2fs %9.0f %12s %7.3f %10s %8.2fs\n", name, r.wall.Seconds(), mib(r.wall), cmdutil.Size(r.out),
				float64(r.out)/float64(streamSize), cmdutil.Size(r.stages[1].rss), r.stages[1].cpu.Seconds())
		}
		speed := their.wall.Seconds() / ours.wall.Seconds()
		sizeRatio := float64(ours.out) / float64(their.out)
		fmt.Printf("  ours/theirs: speed %.2f, size %.3f", speed, sizeRatio)
		if p.name == "zstd" {
			fmt.Printf("   (targets: speed >= %.1f %s, size <= %.2f %s)", speedTarget, mark(speed >= speedTarget), sizeTarget, mark(sizeRatio <= sizeTarget))
		}
		fmt.Printf("   peak RSS < %d MiB: %s\n", rssTarget>>20, mark(ours.stages[1].rss < rssTarget))
	}

	// Whole pipelines into a restore; each restore's domain is destroyed
	// after it is timed.
	restore := func(cmds ...[]string) (result, error) {
		return best(o.runs, func() (result, error) {
			r, err := pipeline(env, cmds...)
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
	line := func(name string, r result, target float64) {
		ratio := plain.wall.Seconds() / r.wall.Seconds()
		t := "-"
		if target > 0 {
			t = fmt.Sprintf("%.1f %s", target, mark(ratio >= target))
		}
		fmt.Printf("%-66s %7.2fs %9.0f %7.2f %8s\n", name, r.wall.Seconds(), mib(r.wall), ratio, t)
	}
	line("xsave a | xrestore --name b", plain, 0)
	line("xsave a | xstream-compress | xstream-compress -d | xrestore", filters, pipelineTarget)
	line("xsave -z zstd a | xrestore --name b", inside, pipelineTarget)
	line("xsave a | xstream-compress --lz4 | xrestore --name b", lz, pipelineTarget)
	line("xsave a | zstd -1 -T0 | zstd -d | xrestore --name b (the tools)", tools, 0)

	fmt.Printf("\npeak RSS and CPU of each process (target < %d MiB in the compressed pipelines):\n", rssTarget>>20)
	for i, r := range []result{plain, filters, inside, lz} {
		for _, s := range r.stages {
			name := filepath.Base(s.args[0]) + " " + strings.Join(s.args[1:], " ")
			m := "-"
			if i > 0 {
				m = mark(s.rss < rssTarget)
			}
			fmt.Printf("  %-40s %10s  CPU %6.2fs  %s\n", name, cmdutil.Size(s.rss), s.cpu.Seconds(), m)
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
