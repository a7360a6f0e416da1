package cmdutil

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Output is where a command writes its stream: standard output, or a file
// written under a temporary name in the same directory and renamed into
// place only by Commit, after an fsync, so that a crash or an error never
// leaves a half-written file where the last good one was.
type Output struct {
	io.Writer
	f     *os.File
	tmp   string
	final string
}

// CreateOutput opens the output: path "" or "-" is standard output, which
// must not be a terminal.
func CreateOutput(path string) (*Output, error) {
	if path == "" || path == "-" {
		if IsTerminal(os.Stdout) {
			return nil, ErrTerminal
		}
		GrowPipe(os.Stdout)
		return &Output{Writer: os.Stdout}, nil
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, err
	}
	removeOnSignal(f.Name())
	return &Output{Writer: f, f: f, tmp: f.Name(), final: path}, nil
}

// TempPath returns the name of a file output's temporary file, which
// Commit renames into place, or "" for standard output.
func (o *Output) TempPath() string { return o.tmp }

// File returns a file output's temporary file, or nil for standard
// output.
func (o *Output) File() *os.File { return o.f }

// Commit finishes the output: for a file, fsync, close, rename into place
// and fsync the directory.
func (o *Output) Commit() error {
	if o.f == nil {
		return nil
	}
	// The mode a file made by the shell's > would have, or the one it
	// replaces keeps: the temporary file is 0600, and a saved domain's
	// memory holds its secrets.
	mode := 0o666 &^ umask
	if fi, err := os.Stat(o.final); err == nil && fi.Mode().IsRegular() {
		mode = fi.Mode().Perm()
	}
	err := o.f.Chmod(mode)
	if err == nil {
		err = o.f.Sync()
	}
	if err == nil {
		err = o.f.Close()
		o.f = nil
	}
	if err != nil {
		o.Abort()
		os.Remove(o.tmp)
		return err
	}
	done := forget(o.tmp)
	err = os.Rename(o.tmp, o.final)
	done()
	if err != nil {
		os.Remove(o.tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(o.final))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing the directory of %s: %w", o.final, err)
	}
	return nil
}

// SyncStdout flushes standard output to its disk when it is a regular
// file (`xsave vm > file`), as Commit does a file output; on a pipe it
// does nothing.
func SyncStdout() error {
	fi, err := os.Stdout.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	return os.Stdout.Sync()
}

// Abort removes a file output's temporary file.
func (o *Output) Abort() {
	if o.f != nil {
		o.f.Close()
		o.f = nil
		os.Remove(o.tmp)
		forget(o.tmp)()
	}
}

// Progress reports progress on stderr: a line rewritten in place when
// stderr is a terminal, a plain line every few seconds when it is not,
// nothing when quiet.
type Progress struct {
	name  string
	quiet bool
	tty   bool
	start time.Time
	mu    sync.Mutex
	last  time.Time
	every time.Duration
	shown bool
}

// NewProgress returns a Progress for the named command.
func NewProgress(name string, quiet bool) *Progress {
	p := &Progress{name: name, quiet: quiet, tty: IsTerminal(os.Stderr), start: time.Now(), every: 5 * time.Second}
	if p.tty {
		p.every = 200 * time.Millisecond
	}
	p.last = p.start
	return p
}

// Update shows done of total units (total 0 if unknown), at most every
// few seconds.
func (p *Progress) Update(bytes int64, done, total uint64, unit string) {
	if p == nil || p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	secs := now.Sub(p.start).Seconds()
	msg := fmt.Sprintf("%s: %s", p.name, Size(bytes))
	if total > 0 {
		msg += fmt.Sprintf(", %d/%d %s (%.0f%%)", done, total, unit, 100*float64(done)/float64(total))
	}
	msg += fmt.Sprintf(", %s/s", Size(int64(float64(bytes)/secs)))
	if p.tty {
		fmt.Fprintf(os.Stderr, "\r%s\x1b[K", msg)
		p.shown = true
	} else {
		fmt.Fprintln(os.Stderr, msg)
	}
}

// Done ends the progress display with a summary line (if not quiet).
func (p *Progress) Done(summary string) {
	if p == nil || p.quiet {
		return
	}
	if p.shown {
		fmt.Fprint(os.Stderr, "\r\x1b[K")
	}
	if summary != "" {
		fmt.Fprintf(os.Stderr, "%s: %s in %.2fs\n", p.name, summary, time.Since(p.start).Seconds())
	}
}

// Size formats octets with a binary unit.
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
