package xen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// SaveOptions tune Save.
type SaveOptions struct {
	// Keep leaves the domain running: a checkpoint (`xl save -c`).
	Keep bool
	// File, if set, is the file xl writes the stream into itself (the
	// caller's temporary output file, open for writing), which the
	// caller checks once Wait returns: the stream reaches its file with
	// one copy, as with xl save alone, instead of three through a pipe.
	// The Saving then has nothing to read. Only for a stream stored as
	// xl writes it. xl gets the file, not its name: it opens
	// /proc/self/fd/3, the same file whatever happens meanwhile to the
	// name (a symbolic link put in its place, say).
	File *os.File
}

// Saving is a save in progress: read the stream from it to its end (when
// xl writes into a pipe), then call Wait and, once the stream is safely
// stored, Commit; on any failure call Abort instead.
type Saving struct {
	h    *Host
	name string
	keep bool
	cmd  *exec.Cmd
	pipe *os.File // what xl writes into; nil when it writes a file
	log  *outputLog

	done    chan struct{} // closed when xl has exited
	waitErr error         // how it exited

	closeOnce sync.Once
	finished  bool
}

// Save starts saving the named domain: `xl save -p` (or -c with Keep)
// writing into a pipe that the returned Saving reads, or into the file
// opts.File. xl itself finds the domain (a name or an id); one it does not
// have fails the save with an *Error that matches domain.ErrNotFound.
func (h *Host) Save(ctx context.Context, name string, opts SaveOptions) (*Saving, error) {
	if name == "Domain-0" || name == "0" {
		return nil, fmt.Errorf("xen: %s is the control domain, which cannot be saved", name)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mode := "-p"
	if opts.Keep {
		mode = "-c"
	}
	s := &Saving{h: h, name: name, keep: opts.Keep, log: &outputLog{tee: h.Log}, done: make(chan struct{})}
	// xl must see EPIPE, and fail and resume the domain, when the
	// reader of its pipe goes away, not die of SIGPIPE (it has no
	// handler of its own) with the domain suspended: it inherits the
	// signal ignored.
	signal.Ignore(syscall.SIGPIPE)
	var w *os.File
	if opts.File != nil {
		s.cmd = h.command(s.log, "save", mode, name, "/proc/self/fd/3")
		s.cmd.ExtraFiles = []*os.File{opts.File}
	} else {
		r, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		growPipe(r)
		s.pipe, w = r, pw
		s.cmd = h.command(s.log, "save", mode, name, "/proc/self/fd/3")
		s.cmd.ExtraFiles = []*os.File{w}
	}
	h.Tracef("xl save %s %s started", mode, name)
	if err := s.cmd.Start(); err != nil {
		s.closeReader()
		if w != nil {
			w.Close()
		}
		return nil, &Error{Op: "xl save " + name, Err: err}
	}
	if w != nil {
		w.Close()
	}
	go func() {
		s.waitErr = exitError(s.cmd, s.cmd.Wait())
		h.Tracef("xl save exited: %v", s.waitErr)
		close(s.done)
	}()
	return s, nil
}

// errNoPipe is the error of Read when xl writes a file.
var errNoPipe = errors.New("xen: xl writes the file itself: check it once Wait returns")

// Read reads the stream xl writes into the pipe.
func (s *Saving) Read(p []byte) (int, error) {
	if s.pipe == nil {
		return 0, errNoPipe
	}
	return s.pipe.Read(p)
}

// Pipe returns the pipe xl writes into, for a reader that moves the
// stream on without reading it all (splice(2)), or nil when xl writes a
// file. Close closes it.
func (s *Saving) Pipe() *os.File { return s.pipe }

func (s *Saving) op() string { return "xl save " + s.name }

func (s *Saving) closeReader() {
	s.closeOnce.Do(func() {
		if s.pipe != nil {
			s.pipe.Close()
		}
	})
}

// Close stops the reading, from any goroutine. With a pipe, xl, if it is
// still writing, fails and resumes the domain; a file xl finishes. Abort
// or Commit must still be called.
func (s *Saving) Close() error {
	s.closeReader()
	return nil
}

// Wait waits for xl to finish after the stream has been read to its end,
// and reports its failure as an *Error.
func (s *Saving) Wait() error {
	<-s.done
	s.closeReader()
	if s.waitErr != nil {
		return newError(s.op(), s.log.Lines(), s.waitErr)
	}
	return nil
}

// Commit ends a save whose stream is safely stored: the domain, which xl
// left paused, is destroyed (with Keep it runs on and nothing is done).
func (s *Saving) Commit(ctx context.Context) error {
	if err := s.Wait(); err != nil {
		return s.Abort(err)
	}
	s.finished = true
	if s.keep {
		return nil
	}
	if err := s.h.Destroy(ctx, s.name); err != nil {
		return fmt.Errorf("the stream is saved, but the domain could not be destroyed (it is paused): %w", err)
	}
	return nil
}

// Abort ends a failed save and leaves the domain as it was: the pipe is
// closed so that xl fails (and resumes the domain) if it has not
// finished, and a domain xl left paused is unpaused. cause is the
// pipeline's error; Abort returns the error to report: xl's own, when
// xl failed and the stream merely stopped short because of it.
func (s *Saving) Abort(cause error) error {
	if s.finished {
		return cause
	}
	s.finished = true
	s.closeReader()
	var timeout <-chan time.Time
	if s.pipe != nil {
		// xl writing into a file cannot be stopped but by killing it,
		// which would leave the domain suspended: let it finish.
		timeout = time.After(s.h.abortTimeout())
	}
	select {
	case <-s.done:
	case <-timeout:
		// xl did not give up on its broken pipe; kill it. The domain
		// may be left suspended: say so.
		killGroup(s.cmd)
		<-s.done
		return errors.Join(cause, notRunning{fmt.Errorf("%s did not stop and was killed; domain %s may be left suspended", s.op(), s.name)})
	}
	if s.waitErr != nil {
		xlErr := newError(s.op(), s.log.Lines(), s.waitErr)
		if cause == nil || errors.Is(cause, io.ErrUnexpectedEOF) {
			return xlErr // the stream stopped short because xl failed
		}
		return cause
	}
	// xl succeeded: with -p it left the domain paused for us.
	if !s.keep {
		if err := s.h.unpause(context.Background(), s.name); err != nil {
			return errors.Join(cause, notRunning{fmt.Errorf("domain %s is left paused: %w", s.name, err)})
		}
	}
	return cause
}

// ErrNotRunning matches the error of an Abort that could not leave the
// domain running.
var ErrNotRunning = errors.New("xen: the domain is not running")

type notRunning struct{ error }

func (e notRunning) Unwrap() error        { return e.error }
func (e notRunning) Is(target error) bool { return target == ErrNotRunning }

func (h *Host) unpause(ctx context.Context, name string) error {
	_, err := h.run(ctx, "unpause", name)
	return err
}
