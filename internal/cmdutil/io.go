package cmdutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xstream/xstream/internal/writeback"
)

// Output is where a command writes its stream: standard output, or a file
// written under a temporary name in the same directory and renamed into
// place only by Commit, after an fsync, so that a crash or an error never
// leaves a half-written file where the last good one was. A path that
// names a device, a FIFO or a socket (-o /dev/null, a named pipe) is
// written in place, as the shell's > would, and a symbolic link is
// followed: the file it points to is replaced, not the link.
type Output struct {
	io.Writer
	f     *os.File // the temporary file
	tmp   string
	final string
	dev   *os.File // a file that is not a regular one, written in place
	// stopWriteback stops the writeback that follows a file output or
	// a standard output that is a file (writeback.Follow).
	stopWriteback func()
}

// CreateOutput opens the output: path "" or "-" is standard output, which
// must not be a terminal.
func CreateOutput(path string) (*Output, error) {
	if path == "" || path == "-" {
		if IsTerminal(os.Stdout) {
			return nil, ErrTerminal
		}
		GrowPipe(os.Stdout)
		return &Output{Writer: os.Stdout, stopWriteback: writeback.Follow(os.Stdout)}, nil
	}
	// The kernel resolves the path (/dev/stdout and /dev/fd/N too,
	// whose links name no file); a regular file is replaced through
	// its links.
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return nil, Usagef("-o %s: a directory; give a file name", path)
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		if IsTerminal(f) {
			f.Close()
			return nil, ErrTerminal
		}
		return &Output{Writer: f, dev: f}, nil
	}
	if strings.HasSuffix(path, "/") {
		return nil, Usagef("-o %s: a directory; give a file name", path)
	}
	final := resolveLinks(path)
	dir, base := filepath.Split(final)
	if dir == "" {
		dir = "."
	}
	// Made and registered under the lock: a signal finds it registered.
	f, err := createRemovedOnSignal(dir, "."+base+".tmp-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) { // name the file asked for, not ours
			err = &fs.PathError{Op: "create", Path: path, Err: pe.Err}
		}
		return nil, err
	}
	return &Output{Writer: f, f: f, tmp: f.Name(), final: final, stopWriteback: writeback.Follow(f)}, nil
}

// resolveLinks returns the file path names through any symbolic links,
// which need not exist yet.
func resolveLinks(path string) string {
	for range 40 { // as the kernel's limit on links followed
		target, err := os.Readlink(path)
		if err != nil {
			return path
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return path
}

// Discards tells whether the output is a device that throws away what it
// is given: /dev/null (-o /dev/null, > /dev/null), or /dev/zero, whose
// writes succeed as well.
func (o *Output) Discards() bool {
	f := o.dev
	if f == nil && o.f == nil {
		f, _ = o.Writer.(*os.File) // standard output
	}
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	for _, sink := range []string{os.DevNull, "/dev/zero"} {
		if sfi, err := os.Stat(sink); err == nil && os.SameFile(fi, sfi) {
			return true
		}
	}
	return false
}

// TempPath returns the name of a file output's temporary file, which
// Commit renames into place, or "" for standard output.
func (o *Output) TempPath() string { return o.tmp }

// File returns a file output's temporary file, or nil for standard
// output.
func (o *Output) File() *os.File { return o.f }

// Commit finishes the output: for a file, fsync, close, rename into place
// and fsync the directory; a device is synced (a disk) and closed.
func (o *Output) Commit() error {
	o.stopFollowing()
	if o.dev != nil {
		err := syncUnlessStream(o.dev)
		if cerr := o.dev.Close(); err == nil {
			err = cerr
		}
		o.dev = nil
		return err
	}
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
		err = syncFile(o.f)
	}
	if err == nil {
		err = o.f.Close()
	}
	if err != nil {
		o.Abort() // closes (again), removes and forgets the temporary file
		return err
	}
	o.f = nil
	done := forget(o.tmp)
	err = renameFile(o.tmp, o.final)
	if err == nil {
		sigs.committed = true
	}
	done()
	if err != nil {
		os.Remove(o.tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(o.final))
	if err == nil {
		err = syncFile(d)
		d.Close()
	}
	if err != nil {
		return &NotDurableError{Path: o.final, Err: err}
	}
	return nil
}

// The syncs and the rename of Commit, which must come in their order:
// variables, so that a test can watch the order, and make one fail.
var (
	syncFile   = (*os.File).Sync
	renameFile = os.Rename
)

// NotDurableError is Commit's error when the file is in place, complete,
// but its directory could not be synced: a crash might yet lose the new
// name. The file is not removed.
type NotDurableError struct {
	Path string
	Err  error
}

func (e *NotDurableError) Error() string {
	return fmt.Sprintf("%s is written, but its directory could not be synced: %v", e.Path, e.Err)
}
func (e *NotDurableError) Unwrap() error { return e.Err }

// SyncStdout flushes standard output to its disk when it is a file or a
// block device (`xsave vm > file`), as Commit does a file output; on a
// pipe, a socket or a terminal it does nothing.
func SyncStdout() error { return syncUnlessStream(os.Stdout) }

// syncUnlessStream syncs f unless it is a pipe, a socket or a character
// device, which have nothing to sync.
func syncUnlessStream(f *os.File) error {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&(os.ModeNamedPipe|os.ModeSocket|os.ModeCharDevice) != 0 {
		return nil
	}
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// stopFollowing stops the output's writeback, if it has one.
func (o *Output) stopFollowing() {
	if o.stopWriteback != nil {
		o.stopWriteback()
	}
}

// Abort removes a file output's temporary file.
func (o *Output) Abort() {
	o.stopFollowing()
	if o.dev != nil {
		o.dev.Close()
		o.dev = nil
	}
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
