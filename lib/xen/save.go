package xen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xstream/xstream/lib/stream"
)

// SaveOptions tune Save.
type SaveOptions struct {
	// Keep leaves the domain running: a checkpoint (`xl save -c`).
	Keep bool
	// File, if set, is where xl writes the stream itself (the caller's
	// temporary output file): the Saving then reads the file as it
	// grows, and the stream reaches its file with one copy, as with xl
	// save alone, instead of three through a pipe. Only for a stream
	// stored as xl writes it.
	File string
}

// Saving is a save in progress: read the stream from it to its end, then
// call Wait and, once the stream is safely stored, Commit; on any failure
// call Abort instead.
type Saving struct {
	h    *Host
	name string
	keep bool
	cmd  *exec.Cmd
	r    io.Reader // the pipe, or a followReader of the file
	c    io.Closer // what Close closes
	pipe bool      // xl writes into a pipe (not a file)
	log  *outputLog

	done    chan struct{} // closed when xl has exited
	waitErr error         // how it exited

	closeOnce sync.Once
	finished  bool
}

// Save starts saving the named domain: `xl save -p` (or -c with Keep)
// writing into a pipe, or the file opts.File, that the returned Saving
// reads. xl itself finds the domain (a name or an id); one it does not
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
	var w *os.File
	if opts.File != "" {
		f, err := os.Open(opts.File)
		if err != nil {
			return nil, err
		}
		fr := &followReader{f: f, done: s.done}
		s.r, s.c = fr, fr
		s.cmd = h.command(s.log, "save", mode, name, opts.File)
	} else {
		r, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		growPipe(r)
		s.r, s.c, s.pipe, w = r, r, true, pw
		s.cmd = h.command(s.log, "save", mode, name, "/proc/self/fd/3")
		s.cmd.ExtraFiles = []*os.File{w}
	}
	h.Tracef("xl save %s %s started", mode, name)
	if err := s.cmd.Start(); err != nil {
		s.c.Close()
		if w != nil {
			w.Close()
		}
		return nil, &Error{Op: "xl save " + name, Err: err}
	}
	if w != nil {
		w.Close()
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		h.Tracef("xl save exited: %v", s.waitErr)
		close(s.done)
	}()
	return s, nil
}

// followReader reads a file that xl is still writing: at its end it waits
// for more until xl has exited.
type followReader struct {
	f      *os.File
	done   <-chan struct{}
	closed atomic.Bool
	pos    int64 // the file offset
}

var errClosed = errors.New("xen: save interrupted")

func (r *followReader) Read(p []byte) (int, error) {
	for {
		if r.closed.Load() {
			return 0, errClosed
		}
		n, err := r.f.Read(p)
		r.pos += int64(n)
		if n > 0 || err != io.EOF {
			return n, err
		}
		select {
		case <-r.done:
			// xl has exited: what the file holds now is all there is.
			n, err := r.f.Read(p)
			r.pos += int64(n)
			return n, err
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Skip passes over n octets once the file has them (a stream.Skipper:
// the verifier skips the pages it does not look at), or up to its end
// once xl has exited.
func (r *followReader) Skip(n int64) (int64, error) {
	for {
		if r.closed.Load() {
			return 0, errClosed
		}
		exited := false
		select {
		case <-r.done:
			exited = true
		default:
		}
		fi, err := r.f.Stat()
		if err != nil {
			return 0, err
		}
		to := r.pos + n
		if fi.Size() < to {
			if !exited {
				time.Sleep(2 * time.Millisecond)
				continue
			}
			to = max(fi.Size(), r.pos)
		}
		if _, err := r.f.Seek(to, io.SeekStart); err != nil {
			return 0, err
		}
		k := to - r.pos
		r.pos = to
		return k, nil
	}
}

func (r *followReader) Close() error {
	r.closed.Store(true)
	return nil
}

// Read reads the stream xl writes.
func (s *Saving) Read(p []byte) (int, error) { return s.r.Read(p) }

// Pipe returns the pipe xl writes into, for a reader that moves the
// stream on without reading it all (splice(2)), or nil when xl writes a
// file. Close closes it.
func (s *Saving) Pipe() *os.File {
	if !s.pipe {
		return nil
	}
	return s.r.(*os.File)
}

// Skip passes over n octets of the stream without reading them, where
// xl writes a file; elsewhere it reads them.
func (s *Saving) Skip(n int64) (int64, error) {
	if sk, ok := s.r.(stream.Skipper); ok {
		return sk.Skip(n)
	}
	k, err := io.CopyN(io.Discard, s.r, n)
	if err == io.EOF {
		err = nil // short: the caller's io.ErrUnexpectedEOF
	}
	return k, err
}

func (s *Saving) op() string { return "xl save " + s.name }

func (s *Saving) closeReader() { s.closeOnce.Do(func() { s.c.Close() }) }

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
	if s.pipe {
		// xl writing into a file cannot be stopped but by killing it,
		// which would leave the domain suspended: let it finish.
		timeout = time.After(s.h.abortTimeout())
	}
	select {
	case <-s.done:
	case <-timeout:
		// xl did not give up on its broken pipe; kill it. The domain
		// may be left suspended: say so.
		s.cmd.Process.Kill()
		<-s.done
		return errors.Join(cause, fmt.Errorf("%s did not stop and was killed; domain %s may be left suspended", s.op(), s.name))
	}
	if s.waitErr != nil {
		xlErr := newError(s.op(), s.log.Lines(), s.waitErr)
		if cause == nil || errors.Is(cause, io.ErrUnexpectedEOF) || errors.Is(cause, errClosed) {
			return xlErr // the stream stopped short because xl failed
		}
		return cause
	}
	// xl succeeded: with -p it left the domain paused for us.
	if !s.keep {
		if err := s.h.unpause(context.Background(), s.name); err != nil {
			return errors.Join(cause, fmt.Errorf("domain %s is left paused: %w", s.name, err))
		}
	}
	return cause
}

func (h *Host) unpause(ctx context.Context, name string) error {
	_, err := h.run(ctx, "unpause", name)
	return err
}
