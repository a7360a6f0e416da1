package xen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Name of the new domain; empty means the name in the config.
	Name string
	// Config replaces the stream's own config. A stream without an xl
	// header (libxl or bare libxc) needs one.
	Config *Config
	// Paused leaves the restored domain paused.
	Paused bool
	// Replace destroys a running domain of the same name once the new
	// one is complete, instead of waiting for it to go away.
	Replace bool
	// Replayable says the input can be read again (a file): a domain
	// xl built from it is destroyed on a later failure, like any other,
	// where one from a pipe, perhaps its only copy, is left paused.
	Replayable bool
	// Progress, if set, is called now and then with the octets read.
	Progress func(read int64)
	// Filter, if set, turns the (decompressed) input into the v2/v3
	// stream to read: lib/restore's Filter, upgrading a legacy stream.
	Filter func(io.Reader) (io.Reader, error)
}

// Restored describes a restored domain.
type Restored struct {
	Name string
	Type stream.DomainType
	// Bytes is the size of the stream read.
	Bytes int64
}

// ErrNoName is returned when neither the config nor the options name the
// domain.
var ErrNoName = errors.New("the domain's config gives it no name; give a name")

// IncomingSuffix is added to the name of a domain restored while an older
// domain of the same name still runs, as `xl migrate` does.
const IncomingSuffix = "--incoming"

// ErrDomainLeft matches the error of a restore that failed but left a
// domain behind: a complete one, paused (it may be the only copy), or a
// half-built one that could not be destroyed.
var ErrDomainLeft = errors.New("xen: a domain was left behind")

type domainLeft struct{ error }

func (e domainLeft) Unwrap() error        { return e.error }
func (e domainLeft) Is(target error) bool { return target == ErrDomainLeft }

// pipeError marks a failed write to xl's pipe: xl has most likely
// stopped reading, and its own error says why.
type pipeError struct{ err error }

func (e *pipeError) Error() string { return "writing to xl restore: " + e.err.Error() }
func (e *pipeError) Unwrap() error { return e.err }

type pipeWriter struct{ f *os.File }

func (p pipeWriter) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	if err != nil {
		err = &pipeError{err}
	}
	return n, err
}

// restoring is a running `xl restore`.
type restoring struct {
	h       *Host
	cmd     *exec.Cmd
	w       *os.File
	log     *outputLog
	done    chan struct{}
	waitErr error
	killed  atomic.Bool // we killed xl: libxl had no chance to clean up
}

// kill kills xl and what it started.
func (rs *restoring) kill() {
	rs.killed.Store(true)
	killGroup(rs.cmd)
}

func (h *Host) startRestore(paused bool) (*restoring, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	growPipe(w)
	rs, err := h.startXLRestore(paused, r, "")
	r.Close()
	if err != nil {
		w.Close()
		return nil, err
	}
	rs.w = w
	return rs, nil
}

// startXLRestore starts `xl restore` reading in as its fd 3 (xl opens
// /proc/self/fd/3 anew: a file from its start, or a pipe); what, if not
// empty, says in the trace what in is.
func (h *Host) startXLRestore(paused bool, in *os.File, what string) (*restoring, error) {
	log := &outputLog{tee: h.Log}
	args := []string{"restore", "/proc/self/fd/3"}
	if paused {
		args = []string{"restore", "-p", "/proc/self/fd/3"}
	}
	cmd := h.command(log, args...)
	cmd.ExtraFiles = []*os.File{in}
	if err := cmd.Start(); err != nil {
		return nil, &Error{Op: "xl restore", Err: err}
	}
	h.Tracef("%s started%s", strings.Join(args, " "), what)
	rs := &restoring{h: h, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		rs.waitErr = exitError(cmd, cmd.Wait())
		h.Tracef("xl restore exited: %v", rs.waitErr)
		close(rs.done)
	}()
	return rs, nil
}

// wait closes the pipe and waits for xl, at most timeout (0: no limit).
func (rs *restoring) wait(timeout time.Duration) error {
	if rs.w != nil {
		rs.w.Close()
	}
	if timeout > 0 {
		select {
		case <-rs.done:
		case <-time.After(timeout):
			rs.kill()
			<-rs.done
		}
	}
	<-rs.done
	if rs.waitErr != nil {
		return newError("xl restore", rs.log.Lines(), rs.waitErr)
	}
	return nil
}

// Restore reads a stream of any framing from r, compressed or not,
// verifying every record, and restores it into Xen through `xl
// restore`. Xen sees only verified records, and on any failure no new
// domain is left behind.
func (h *Host) Restore(ctx context.Context, r io.Reader, opts RestoreOptions) (res Restored, err error) {
	if f, ok := r.(*os.File); ok {
		if res, err := h.restoreFile(ctx, f, opts); err != errNotDirect {
			return res, err
		}
	}
	// The edge, as for the store (lib/restore): compressed input is
	// decompressed, a legacy stream upgraded by the Filter.
	in, err := sniff.Open(r)
	if err != nil {
		return res, err
	}
	defer in.Close()
	var rr io.Reader = in.Source
	if opts.Filter != nil {
		if rr, err = opts.Filter(rr); err != nil {
			return res, err
		}
	}
	wk, err := sniff.NewWalker(rr, &sniff.Options{Verify: true})
	if err != nil {
		return res, err
	}
	first, err := wk.Next()
	if err != nil {
		return res, err
	}
	var cfg Config
	if first.Kind == sniff.XLHeader {
		cfg = Config{Data: bytes.Clone(first.XL.Config), JSON: first.XL.MandatoryFlags&xl.FlagJSON != 0}
	}
	if opts.Config != nil {
		cfg = *opts.Config
	}
	if len(cfg.Data) == 0 {
		return res, ErrNeedConfig
	}
	name := opts.Name
	if name == "" {
		name = cfg.Name()
	}
	if name == "" {
		return res, ErrNoName
	}

	// The names taken: from xenstore at once when it answers. Else xl
	// restore, which takes as long to start as xl list takes to run,
	// starts at once, guessing that the name is free, while xl list
	// tells. Xen reads only records that have been verified, and xl
	// gets the libxl END record only once the whole input has checked
	// out to its very end (the last CHECKSUM, the decompressor's last
	// frame check, no trailing octets); so unless it must wait for its
	// name, the domain may start as soon as xl has built it.
	var rs *restoring
	names, err := h.xenstoreNames()
	if err != nil {
		if rs, err = h.startRestore(opts.Paused); err != nil {
			return res, err
		}
		names, err = h.xlNames(ctx)
	}
	// A domain of that name still running is, most often, the one
	// being saved into our input on this very host: build the new one
	// beside it, paused, and take the name at the end.
	target := name
	if err == nil && names.has(name) {
		target = name + IncomingSuffix
		if names.has(target) {
			err = fmt.Errorf("xen: domains %s and %s both exist (another restore in progress?)", name, target)
		}
	}
	if err == nil && target != cfg.Name() {
		cfg, err = cfg.WithName(target)
	}
	pause := opts.Paused || target != name
	if rs != nil && (err != nil || pause != opts.Paused) {
		// The guess was wrong: that xl finds no header and builds
		// nothing.
		rs.wait(h.abortTimeout())
		rs = nil
	}
	if err != nil {
		return res, err
	}
	if rs == nil {
		if rs, err = h.startRestore(pause); err != nil {
			return res, err
		}
	}
	// built is the name of the domain xl built from the whole,
	// verified stream, once xl has finished. A failure after that (the
	// name, the unpause, Ctrl-C) leaves it paused rather than
	// destroying it, unless the input can be read again: in `xsave vm
	// | xrestore` on one host the domain it came from has gone by then,
	// and this is the only copy.
	built := ""
	defer func() {
		switch {
		case err == nil:
		case built != "" && !opts.Replayable:
			err = domainLeft{fmt.Errorf("%w (the domain was restored; it is left paused as %s)", err, built)}
		default:
			err = h.abortRestore(ctx, rs, target, names, err)
		}
	}()
	stop := context.AfterFunc(ctx, func() { rs.w.Close() })
	defer stop()

	// A small buffer: a page batch's body goes into the pipe whole,
	// not copied through it.
	x := newXLWriter(bufio.NewWriterSize(pipeWriter{rs.w}, 64<<10), cfg)
	var lastRep int64
	for it := first; ; {
		if it.Kind == sniff.LibxcHeaders {
			res.Type = it.Domain.Type
		}
		if err := x.Write(it); err != nil {
			return res, err
		}
		if opts.Progress != nil && wk.Offset()-lastRep >= 16<<20 {
			lastRep = wk.Offset()
			opts.Progress(lastRep)
		}
		next, err := wk.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
		it = next
	}
	if err := x.Close(); err != nil {
		return res, err
	}
	res.Bytes = wk.Offset()
	h.Tracef("stream verified and written: %d octets", res.Bytes)
	if err := rs.wait(0); err != nil {
		return res, err
	}
	built = target

	if target != name {
		if err := h.takeName(ctx, name, opts.Replace); err != nil {
			return res, err
		}
		if _, err := h.run(ctx, "rename", target, name); err != nil {
			return res, err
		}
		built = name
	}
	if pause && !opts.Paused {
		if err := h.unpause(ctx, name); err != nil {
			return res, err
		}
	}
	res.Name = name
	return res, nil
}

// takeName waits for the older domain of that name to go away, or with
// replace destroys it.
func (h *Host) takeName(ctx context.Context, name string, replace bool) error {
	deadline := time.Now().Add(h.nameTimeout())
	for {
		exists, err := h.exists(ctx, name)
		if err != nil || !exists {
			return err
		}
		if replace {
			return h.Destroy(ctx, name)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: a domain named %s is still running (replace it, or restore under another name)", ErrExists, name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ErrExists is returned when the name stays taken by another domain.
var ErrExists = errors.New("xen: domain exists")

// abortRestore stops a failed restore and destroys what it built. It
// returns the error to report: xl's own when xl stopped reading first.
//
// What it built is found by id, not by name: a domain of that name that
// was there before xl started is not ours (nor is one whose name made
// xl fail: libxl then destroys the domain it had begun itself), and a
// name may look like an id.
func (h *Host) abortRestore(ctx context.Context, rs *restoring, target string, before domainIDs, cause error) error {
	xlErr := rs.wait(h.abortTimeout())
	var xe *Error
	nameTaken := errors.As(xlErr, &xe) && nameExists.MatchString(strings.Join(xe.Lines, "\n"))
	// libxl destroys a domain whose restore failed: only one xl
	// finished (paused) before we failed, or one we killed, is ours to
	// destroy. Looking for another would risk one that took the name
	// meanwhile.
	var left error
	if (xlErr == nil || rs.killed.Load()) && !nameTaken {
		now, err := h.names(context.Background())
		if err != nil {
			left = domainLeft{fmt.Errorf("a half-restored domain %s may be left: looking for it: %w", target, err)}
		} else if id, ok := now[target]; ok && !before.hasID(id) {
			if _, err := h.run(context.Background(), "destroy", strconv.Itoa(id)); err != nil {
				left = domainLeft{fmt.Errorf("the half-restored domain %s (id %d) could not be destroyed: %w", target, id, err)}
			}
		}
	}
	var pe *pipeError
	switch {
	case ctx.Err() != nil:
		cause = ctx.Err()
	case xlErr != nil && errors.As(cause, &pe):
		cause = xlErr
	}
	if left != nil {
		return errors.Join(cause, left)
	}
	return cause
}

// nameExists matches libxl's refusal of a name another domain has.
var nameExists = regexp.MustCompile(`(?i)with name .* already exists`)
