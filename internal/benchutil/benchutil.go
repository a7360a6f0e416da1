// Package benchutil is what the benchmark commands under tests/ share: a
// temporary workspace with the commands built into it, pipelines of
// processes timed as a whole with each process's own rusage, and the best
// of several runs.
package benchutil

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Workspace is a temporary directory and the directory of the commands
// being measured.
type Workspace struct {
	Dir  string // the temporary directory
	Bin  string // absolute directory of the commands
	keep bool
}

// NewWorkspace makes a temporary directory under parent ("" for
// $TMPDIR) named after prefix. With bin "", the module's commands are
// built into it (run from the module root). keep leaves the directory
// behind on Close, and says so on out.
func NewWorkspace(parent, prefix, bin string, keep bool, out io.Writer) (*Workspace, error) {
	tmp, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return nil, err
	}
	w := &Workspace{Dir: tmp, keep: keep}
	if keep {
		fmt.Fprintln(out, "keeping", tmp)
	}
	if bin == "" {
		bin = filepath.Join(tmp, "bin")
		build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/...")
		if b, err := build.CombinedOutput(); err != nil {
			w.Close()
			return nil, fmt.Errorf("building the commands (run from the module root): %v\n%s", err, b)
		}
	}
	if w.Bin, err = filepath.Abs(bin); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// Close removes the directory unless it is to be kept.
func (w *Workspace) Close() {
	if !w.keep {
		os.RemoveAll(w.Dir)
	}
}

// Cmd returns the command line of one of the commands.
func (w *Workspace) Cmd(name string, args ...string) []string {
	return append([]string{filepath.Join(w.Bin, name)}, args...)
}

// Run runs a command line to its end with env, its output kept for the
// error.
func Run(env []string, args ...string) error {
	c := exec.Command(args[0], args[1:]...)
	c.Env = env
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Stage is one process of a pipeline and what it used.
type Stage struct {
	Args []string
	RSS  int64 // peak RSS, octets
	CPU  time.Duration
}

// Result is one run of a pipeline.
type Result struct {
	Wall   time.Duration // from the start of the first process to the end of the last
	Out    int64         // octets out of the last process, when Pipeline counted them
	Stages []Stage
}

// Pipeline runs the command lines connected by pipes, with env (nil: this
// process's), and measures the wall time and each process's rusage. The
// last one writes to stdout when it is not nil (an *os.File directly);
// otherwise its output is counted (Result.Out) and dropped.
func Pipeline(env []string, stdout io.Writer, cmds ...[]string) (Result, error) {
	var res Result
	var procs []*exec.Cmd
	var errs []*bytes.Buffer
	var ends []*os.File // our copies of the pipes' ends, closed once the processes have theirs
	defer func() {
		for _, f := range ends {
			f.Close()
		}
	}()
	var prev *os.File
	for i, args := range cmds {
		c := exec.Command(args[0], args[1:]...)
		c.Env = env
		var eb bytes.Buffer
		c.Stderr = &eb
		if prev != nil {
			c.Stdin = prev
		}
		if i < len(cmds)-1 || stdout == nil {
			pr, pw, err := os.Pipe()
			if err != nil {
				return res, err
			}
			c.Stdout = pw
			ends = append(ends, pw, pr)
			prev = pr
		} else {
			c.Stdout = stdout
			prev = nil
		}
		procs = append(procs, c)
		errs = append(errs, &eb)
	}
	counted := make(chan int64, 1)
	start := time.Now()
	for _, c := range procs {
		if err := c.Start(); err != nil {
			for _, s := range procs {
				if s.Process != nil {
					s.Process.Kill()
					s.Wait()
				}
			}
			return res, err
		}
	}
	for _, f := range ends {
		if f != prev {
			f.Close()
		}
	}
	ends = ends[:0]
	if prev != nil {
		ends = append(ends, prev)
		go func() {
			n, _ := io.Copy(io.Discard, prev)
			counted <- n
		}()
	} else {
		counted <- 0
	}
	var werr error
	for i, c := range procs {
		if err := c.Wait(); err != nil {
			werr = errors.Join(werr, fmt.Errorf("%s: %w: %s", strings.Join(cmds[i], " "), err, strings.TrimSpace(errs[i].String())))
		}
	}
	res.Out = <-counted
	res.Wall = time.Since(start)
	if werr != nil {
		return res, werr
	}
	for i, c := range procs {
		s := Stage{Args: cmds[i], CPU: c.ProcessState.UserTime() + c.ProcessState.SystemTime()}
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
			s.RSS = int64(ru.Maxrss) << 10 // KiB on Linux
		}
		res.Stages = append(res.Stages, s)
	}
	return res, nil
}

// Best runs f runs times and keeps the fastest run, with each stage's
// largest peak RSS over all the runs.
func Best(runs int, f func() (Result, error)) (Result, error) {
	var b Result
	for i := 0; i < runs; i++ {
		r, err := f()
		if err != nil {
			return r, err
		}
		if i == 0 || r.Wall < b.Wall {
			b, r = r, b // b the fastest so far, r the other run
		}
		for j := range r.Stages {
			b.Stages[j].RSS = max(b.Stages[j].RSS, r.Stages[j].RSS)
		}
	}
	return b, nil
}
