// Command bench measures xstream-cat against cat on one large generated
// stream, in one run: `make bench`, or `go run ./tests/bench [flags]`.
//
// It writes a realistic xl stream of -size into a temporary directory,
// then times three pipelines, each -runs times, keeping the best:
//
//	cat FILE | cat >/dev/null          the reference
//	cat FILE | xstream-cat --verify    target: at least 0.8 of its throughput
//	cat FILE | xstream-cat --digest    target: at least 0.5 of its throughput
//
// The consumer is started directly (not through a shell) with its stdin
// the pipe from cat, so that its rusage, and so its peak RSS (target:
// under 64 MiB), is its own. A missed target is printed as MISS; the
// exit status is 0 unless something fails to run.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/xstream/xstream/internal/benchutil"
	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/internal/gen"
	"github.com/xstream/xstream/lib/stream"
)

type options struct {
	size string
	keep bool
	bin  string
	runs int
	dir  string
}

func main() {
	var o options
	flag.StringVar(&o.size, "size", "1GiB", "guest memory of the generated domain (the stream is a little larger)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory with the stream and binaries")
	flag.StringVar(&o.bin, "bin", "", "directory with the commands (default: build them into the temporary directory)")
	flag.IntVar(&o.runs, "runs", 3, "runs of each pipeline; the best counts")
	flag.StringVar(&o.dir, "dir", "", "parent of the temporary directory (default: $TMPDIR)")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// Targets.
const (
	verifyTarget = 0.8
	digestTarget = 0.5
	rssTarget    = 64 << 20
)

type measurement struct {
	name    string
	args    []string // consumer command; nil for the reference
	target  float64  // minimum throughput ratio; 0 for none
	best    time.Duration
	cpu     time.Duration // consumer's user+sys time in the best run
	maxRSS  int64         // largest peak RSS over the runs, octets
	lastOut string
}

func run(o options, out io.Writer) error {
	size, err := cmdutil.ParseSize(o.size)
	if err != nil || size < stream.PageSize {
		return fmt.Errorf("-size %q: want a size such as 256MiB or 4GiB", o.size)
	}
	if o.runs < 1 {
		return fmt.Errorf("-runs %d: want at least 1", o.runs)
	}
	ws, err := benchutil.NewWorkspace(o.dir, "xstream-bench-", o.bin, o.keep, out)
	if err != nil {
		return err
	}
	defer ws.Close()
	tmp, xcat := ws.Dir, ws.Cmd("xstream-cat")[0]
	if _, err := os.Stat(xcat); err != nil {
		return err
	}

	file := filepath.Join(tmp, "domain.xl")
	gopts := gen.Options{Pages: int(size / stream.PageSize), Fill: gen.FillRealistic, Format: gen.FormatXL, Seed: 1}
	start := time.Now()
	if err := writeStream(file, gopts); err != nil {
		return err
	}
	genTime := time.Since(start)
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "stream:   %s, realistic x86 PV domain of %s in an xl save file, %d octets (%.2f GiB), generated in %.1fs\n",
		file, o.size, fi.Size(), float64(fi.Size())/(1<<30), genTime.Seconds())
	fmt.Fprintf(out, "binary:   %s\n", xcat)
	fmt.Fprintf(out, "machine:  %s/%s, %d CPUs, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())

	ms := []*measurement{
		{name: "cat FILE | cat >/dev/null"},
		{name: "cat FILE | xstream-cat --verify", args: []string{xcat, "--verify"}, target: verifyTarget},
		{name: "cat FILE | xstream-cat --digest", args: []string{xcat, "--digest"}, target: digestTarget},
	}
	// One unmeasured pass brings the file into the page cache.
	if _, err := pipe(file, nil); err != nil {
		return err
	}
	// Interleave the runs so that a slow moment of the machine hits
	// every pipeline alike.
	for i := 0; i < o.runs; i++ {
		for _, m := range ms {
			r, err := pipe(file, m.args)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if m.best == 0 || r.wall < m.best {
				m.best, m.cpu = r.wall, r.cpu
			}
			m.maxRSS = max(m.maxRSS, r.maxRSS)
			m.lastOut = r.stdout
		}
	}
	if !strings.HasPrefix(ms[1].lastOut, "valid: ") {
		return fmt.Errorf("xstream-cat --verify printed %q", ms[1].lastOut)
	}
	if !strings.HasPrefix(ms[2].lastOut, "xsd1:") {
		return fmt.Errorf("xstream-cat --digest printed %q", ms[2].lastOut)
	}

	ref := ms[0].best
	fmt.Fprintf(out, "\nbest of %d runs; ratio = throughput / throughput of the cat pipe in this run\n\n", o.runs)
	fmt.Fprintf(out, "%-33s %8s %10s %7s %8s %10s  %s\n", "pipeline", "time", "MiB/s", "ratio", "target", "peak RSS", "consumer CPU")
	misses := 0
	for _, m := range ms {
		mibs := float64(fi.Size()) / (1 << 20) / m.best.Seconds()
		ratio := ref.Seconds() / m.best.Seconds()
		target, rss := "-", "-"
		if m.target > 0 {
			target = fmt.Sprintf("%.1f", m.target)
			if ratio < m.target {
				target += " MISS"
				misses++
			} else {
				target += " ok"
			}
		}
		if m.args != nil {
			rss = fmt.Sprintf("%.1f MiB", float64(m.maxRSS)/(1<<20))
			if m.maxRSS >= rssTarget {
				rss += " MISS"
				misses++
			}
		}
		fmt.Fprintf(out, "%-33s %7.2fs %10.0f %7.2f %8s %10s  %.2fs\n", m.name, m.best.Seconds(), mibs, ratio, target, rss, m.cpu.Seconds())
	}
	fmt.Fprintf(out, "\ntargets: --verify >= %.1f, --digest >= %.1f of the cat pipe; peak RSS < %d MiB\n", verifyTarget, digestTarget, rssTarget>>20)
	if misses > 0 {
		fmt.Fprintf(out, "MISS: %d target(s) missed\n", misses)
	} else {
		fmt.Fprintf(out, "all targets met\n")
	}
	return nil
}

func writeStream(name string, o gen.Options) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := gen.Write(f, o); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type result struct {
	wall   time.Duration
	cpu    time.Duration // consumer's user+sys
	maxRSS int64         // consumer's peak RSS, octets
	stdout string
}

// pipe runs `cat file | consumer`, the consumer being `cat` writing to
// /dev/null when args is nil.
func pipe(file string, args []string) (result, error) {
	var stdout bytes.Buffer
	w := io.Writer(&stdout)
	if args == nil {
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return result{}, err
		}
		defer devnull.Close()
		w, args = devnull, []string{"cat"}
	}
	r, err := benchutil.Pipeline(nil, w, []string{"cat", file}, args)
	if err != nil {
		return result{}, err
	}
	c := r.Stages[1]
	return result{wall: r.Wall, cpu: c.CPU, maxRSS: c.RSS, stdout: stdout.String()}, nil
}
