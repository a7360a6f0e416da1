// Command benchstore measures xsave and xrestore on the embedded store
// against cat of the domain's memory file through the same kind of pipe,
// in one run (go run ./tests/benchstore; make bench runs it):
//
//	cat MEMFILE | cat >/dev/null       the reference
//	xsave a | cat >/dev/null           target: at least 0.9 of its throughput
//	cat STREAM | xrestore --name b     target: at least 0.8
//
// and the peak RSS of xsave and xrestore for a larger domain (default
// 4 GiB; target under 64 MiB each). Each pipeline runs a few times and
// the best counts. A missed target prints MISS; it does not fail.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/xstream/xstream/internal/benchutil"
	"github.com/xstream/xstream/internal/cmdutil"
)

const (
	saveTarget    = 0.9
	restoreTarget = 0.8
	rssTarget     = 64 << 20
)

type options struct {
	size, rssSize, bin, dir string
	runs                    int
	keep                    bool
}

func main() {
	var o options
	flag.StringVar(&o.size, "size", "1GiB", "guest memory of the throughput domain")
	flag.StringVar(&o.rssSize, "rss-size", "4GiB", "guest memory of the domain whose peak RSS is measured (0 to skip)")
	flag.StringVar(&o.bin, "bin", "", "directory with the commands (default: build them)")
	flag.StringVar(&o.dir, "dir", "", "parent of the temporary directory")
	flag.IntVar(&o.runs, "runs", 3, "runs of each pipeline; the best counts")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "benchstore:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	size, err := cmdutil.ParseSize(o.size)
	if err != nil {
		return err
	}
	rssSize, err := cmdutil.ParseSize(o.rssSize)
	if err != nil {
		return err
	}
	ws, err := benchutil.NewWorkspace(o.dir, "xstream-benchstore-", o.bin, o.keep, os.Stdout)
	if err != nil {
		return err
	}
	defer ws.Close()
	cmd, tmp := ws.Cmd, ws.Dir
	env := append(os.Environ(), "XSTREAM_STORE="+filepath.Join(tmp, "store"))
	sh := func(args ...string) error { return benchutil.Run(env, args...) }
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()

	t0 := time.Now()
	if err := sh(cmd("xdomain", "create", "a", "--memory", o.size, "--vcpus", "2")...); err != nil {
		return err
	}
	fmt.Printf("domain:   realistic x86 PV, %s of memory, created in %.1fs\n", cmdutil.Size(size), time.Since(t0).Seconds())
	fmt.Printf("machine:  %s/%s, %d CPUs, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	link, err := os.Readlink(filepath.Join(tmp, "store", "a"))
	if err != nil {
		return err
	}
	memfile := filepath.Join(tmp, "store", link, "memory")
	streamFile := filepath.Join(tmp, "a.xl")
	f, err := os.Create(streamFile)
	if err != nil {
		return err
	}
	if _, err := benchutil.Pipeline(env, f, cmd("xsave", "-q", "a"), []string{"cat"}); err != nil {
		return err
	}
	f.Close()
	st, _ := os.Stat(streamFile)

	ref, err := benchutil.Best(o.runs, func() (benchutil.Result, error) {
		return benchutil.Pipeline(env, devnull, []string{"cat", memfile}, []string{"cat"})
	})
	if err != nil {
		return err
	}
	sv, err := benchutil.Best(o.runs, func() (benchutil.Result, error) {
		return benchutil.Pipeline(env, devnull, cmd("xsave", "-q", "a"), []string{"cat"})
	})
	if err != nil {
		return err
	}
	// Each restore makes a new domain, removed after it is timed: deleting
	// a replaced domain's files is the file system's work, not the
	// restore's.
	rs, err := benchutil.Best(o.runs, func() (benchutil.Result, error) {
		r, err := benchutil.Pipeline(env, devnull, []string{"cat", streamFile}, cmd("xrestore", "-q", "--name", "b"))
		if err == nil {
			err = sh(cmd("xdomain", "destroy", "b")...)
		}
		return r, err
	})
	if err != nil {
		return err
	}
	// The same octets written to a file on the same disk and synced: what
	// any store on this disk must pay.
	copyFile := filepath.Join(tmp, "copy")
	cp, err := benchutil.Best(o.runs, func() (benchutil.Result, error) {
		defer os.Remove(copyFile)
		return benchutil.Pipeline(env, devnull, []string{"cat", streamFile}, []string{"dd", "of=" + copyFile, "bs=4M", "conv=fsync", "status=none"})
	})
	if err != nil {
		return err
	}
	misses := 0
	check := func(ratio, target float64) string {
		if ratio < target {
			misses++
			return fmt.Sprintf("%.1f MISS", target)
		}
		return fmt.Sprintf("%.1f ok", target)
	}
	mib := func(n int64, d time.Duration) float64 { return float64(n) / (1 << 20) / d.Seconds() }
	fmt.Printf("\n%-34s %8s %9s %7s %9s %10s\n", "pipeline", "time", "MiB/s", "ratio", "target", "peak RSS")
	fmt.Printf("%-34s %7.2fs %9.0f %7.2f %9s %10s\n", "cat MEMFILE | cat >/dev/null", ref.Wall.Seconds(), mib(size, ref.Wall), 1.0, "-", "-")
	fmt.Printf("%-34s %7.2fs %9.0f %7.2f %9s %10s\n", "xsave a | cat >/dev/null", sv.Wall.Seconds(), mib(size, sv.Wall), ref.Wall.Seconds()/sv.Wall.Seconds(),
		check(ref.Wall.Seconds()/sv.Wall.Seconds(), saveTarget), cmdutil.Size(sv.Stages[0].RSS))
	fmt.Printf("%-34s %7.2fs %9.0f %7.2f %9s %10s\n", "cat STREAM | xrestore --name b", rs.Wall.Seconds(), mib(size, rs.Wall), ref.Wall.Seconds()/rs.Wall.Seconds(),
		check(ref.Wall.Seconds()/rs.Wall.Seconds(), restoreTarget), cmdutil.Size(rs.Stages[1].RSS))
	fmt.Printf("%-34s %7.2fs %9.0f %7.2f %9s %10s\n", "cat STREAM | dd conv=fsync (disk)", cp.Wall.Seconds(), mib(size, cp.Wall), ref.Wall.Seconds()/cp.Wall.Seconds(), "-", "-")
	fmt.Printf("(stream %s; throughput counts guest memory; xsave CPU %.2fs, xrestore CPU %.2fs;\n", cmdutil.Size(st.Size()), sv.Stages[0].CPU.Seconds(), rs.Stages[1].CPU.Seconds())
	fmt.Printf(" xrestore against writing the stream to this disk: %.2f)\n", cp.Wall.Seconds()/rs.Wall.Seconds())

	if rssSize > 0 {
		t0 = time.Now()
		if err := sh(cmd("xdomain", "create", "big", "--memory", o.rssSize, "--seed", "2")...); err != nil {
			return err
		}
		fmt.Printf("\npeak RSS for a %s domain (created in %.1fs):\n", cmdutil.Size(rssSize), time.Since(t0).Seconds())
		r, err := benchutil.Pipeline(env, devnull, cmd("xsave", "-q", "big"), cmd("xrestore", "-q", "--name", "big2"))
		if err != nil {
			return err
		}
		for i, name := range []string{"xsave big", "xrestore --name big2"} {
			mark := "ok"
			if r.Stages[i].RSS >= rssTarget {
				mark = "MISS"
				misses++
			}
			fmt.Printf("  %-22s %10s  (target < %d MiB: %s)\n", name, cmdutil.Size(r.Stages[i].RSS), rssTarget>>20, mark)
		}
		fmt.Printf("  xsave big | xrestore: %.2fs, %.0f MiB/s of guest memory\n", r.Wall.Seconds(), mib(rssSize, r.Wall))
	}
	if misses > 0 {
		fmt.Printf("\nMISS: %d target(s) missed\n", misses)
	} else {
		fmt.Printf("\nall targets met\n")
	}
	return nil
}
