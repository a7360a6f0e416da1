package xen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// SaveOptions tune Save.
type SaveOptions struct {
	// Keep leaves the domain running: a checkpoint (`xl save -c`).
	Keep bool
}

// Saving is a save in progress: read the stream from it to its end, then
// call Wait and, once the stream is safely stored, Commit; on any failure
// call Abort instead.
type Saving struct {
	h    *Host
	dom  Domain
	keep bool
	cmd  *exec.Cmd
	r    *os.File
	log  *outputLog

	done    chan struct{} // closed when xl has exited
	waitErr error         // how it exited

	closeOnce sync.Once
	finished  bool
}

// Save starts saving the named domain: `xl save -p` (or -c with Keep)
// writing into a pipe that the returned Saving reads.
func (h *Host) Save(ctx context.Context, name string, opts SaveOptions) (*Saving, error) {
	dom, err := h.Lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	if dom.ID == 0 {
		return nil, fmt.Errorf("xen: %s is the control domain (Domain-0), which cannot be saved", name)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	growPipe(r)
	mode := "-p"
	if opts.Keep {
		mode = "-c"
	}
	id := strconv.Itoa(dom.ID)
	log := &outputLog{tee: h.Log}
	cmd := h.command(log, "save", mode, id, "/proc/self/fd/3")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, &Error{Op: "xl save " + dom.Name, Err: err}
	}
	w.Close()
	s := &Saving{h: h, dom: dom, keep: opts.Keep, cmd: cmd, r: r, log: log, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// Domain returns the domain being saved, as it was listed before.
func (s *Saving) Domain() Domain { return s.dom }

// Read reads the stream xl writes.
func (s *Saving) Read(p []byte) (int, error) { return s.r.Read(p) }

func (s *Saving) op() string { return "xl save " + s.dom.Name }

func (s *Saving) closePipe() { s.closeOnce.Do(func() { s.r.Close() }) }

// Close closes the read end of the pipe, from any goroutine: xl, if it
// is still writing, fails and resumes the domain. Abort or Commit must
// still be called.
func (s *Saving) Close() error {
	s.closePipe()
	return nil
}

// Wait waits for xl to finish after the stream has been read to its end,
// and reports its failure as an *Error.
func (s *Saving) Wait() error {
	<-s.done
	s.closePipe()
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
	if err := s.h.Destroy(ctx, strconv.Itoa(s.dom.ID)); err != nil {
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
	s.closePipe()
	select {
	case <-s.done:
	case <-time.After(s.h.abortTimeout()):
		// xl did not give up on its broken pipe; kill it. The domain
		// may be left suspended: say so.
		s.cmd.Process.Kill()
		<-s.done
		return errors.Join(cause, fmt.Errorf("%s did not stop and was killed; domain %s (id %d) may be left suspended",
			s.op(), s.dom.Name, s.dom.ID))
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
		if err := s.h.unpause(context.Background(), s.dom.ID); err != nil {
			return errors.Join(cause, fmt.Errorf("domain %s (id %d) is left paused: %w", s.dom.Name, s.dom.ID, err))
		}
	}
	return cause
}

func (h *Host) unpause(ctx context.Context, id int) error {
	_, err := h.run(ctx, "unpause", strconv.Itoa(id))
	return err
}
