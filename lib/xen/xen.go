// Package xen is the backend for a real Xen host: domains are saved and
// restored through the host's own toolstack, the xl command, while the
// stream passes through our reader and verifier on its way.
//
//	xsave:    xl save -p DOM /proc/self/fd/3 ──pipe──► Saving (io.Reader)
//	              ──► sniff.Walker (verify) ──► rewrite ──► stdout / -o
//	xrestore: any stream ──► sniff.Walker (verify) ──► xlWriter
//	              ──pipe──► xl restore -p /proc/self/fd/3
//	          a file xl reads as it is: sniff.Walker (verify, pages
//	              skipped), then xl restore /proc/self/fd/3 on the file
//
// xl reads and writes the stream on a pipe passed as its file descriptor
// 3, so that nothing it prints can mix into the stream; what it prints on
// stdout and stderr is kept, and a failure comes back as an *Error
// holding xl's own message.
//
// The package owns nothing of the format: Xen's save stream is passed on
// exactly as xl wrote it (checked record by record on the way), and a
// stream to restore is only re-framed as xl restore reads it (see
// xlWriter): an xl header with the domain's config, libxl v2 around the
// libxc stream, little-endian, checkpoints flattened.
//
// Two rules keep a domain safe when something fails half-way:
//
//   - A save runs `xl save -p`: when the stream is complete xl leaves the
//     domain paused, not destroyed. Saving.Commit destroys it only after
//     the caller has the whole stream safely (verified, flushed, synced);
//     Saving.Abort unpauses it. A saver killed half-way leaves the domain
//     running (xl resumes it when its pipe breaks) or, at worst, paused.
//   - A restore hands xl only records that have checked out, and the END
//     record only when everything before it has: xl cannot finish
//     building a domain from a stream that fails. A failure found later
//     (octets after the end) still destroys the domain. When a domain
//     of the same name is still running (a save and a restore on one
//     host, `xsave vm | xrestore`), the new domain is built paused under
//     NAME--incoming, as `xl migrate` builds it, and renamed and
//     unpaused once the old one has gone.
//
// Every xl command costs a process start and a libxl context, dear under
// emulation: a save runs `xl save` and `xl destroy`, a restore `xl
// restore` (and `xl rename`, `xl unpause` beside a running namesake),
// nothing more; the names of the domains come from xenstored's socket
// (xl list when it does not answer).
package xen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xstream/xstream/lib/domain"
)

// Host is a Xen host driven through its xl command.
type Host struct {
	// XL is the path of the xl command.
	XL string
	// Verbose runs xl with -vvv.
	Verbose bool
	// Log, if set, receives everything xl prints, as it prints it.
	Log io.Writer
	// Trace, if set, receives a line for each step of a save or restore
	// (xl started, exited, ...) with the time since Start.
	Trace io.Writer
	// Start is when the times of Trace count from (default: the first
	// step traced).
	Start time.Time
	// AbortTimeout bounds the wait for xl to give up after its pipe has
	// been closed under it (default 2 minutes); only then is it killed.
	AbortTimeout time.Duration
	// NameTimeout bounds the wait, at the end of a restore, for an older
	// domain of the same name to go away (default 30 s).
	NameTimeout time.Duration
	// Xenstore are the sockets of xenstored to read the domains' names
	// from, instead of running `xl list`; when none answers, or with
	// none given, xl list is asked.
	Xenstore []string
}

// ProcCapabilities is the file whose "control_d" marks a Xen control
// domain (dom0), where the toolstack can work.
var ProcCapabilities = "/proc/xen/capabilities"

// Available reports whether this machine is a Xen control domain with the
// xl toolstack on the PATH: what the automatic backend choice looks for.
func Available() bool {
	b, err := os.ReadFile(ProcCapabilities)
	if err != nil || !bytes.Contains(b, []byte("control_d")) {
		return false
	}
	_, err = exec.LookPath("xl")
	return err == nil
}

// ErrNoToolstack is returned by New when there is no xl command.
var ErrNoToolstack = errors.New("xen: the xl toolstack is not installed (no xl on the PATH)")

// New returns a Host using the xl on the PATH.
func New() (*Host, error) {
	p, err := exec.LookPath("xl")
	if err != nil {
		return nil, ErrNoToolstack
	}
	return &Host{XL: p, Xenstore: XenstoreSockets}, nil
}

// Tracef writes a Trace line.
func (h *Host) Tracef(format string, args ...any) {
	if h.Trace == nil {
		return
	}
	if h.Start.IsZero() {
		h.Start = time.Now()
	}
	fmt.Fprintf(h.Trace, "xen: %6.2fs %s\n", time.Since(h.Start).Seconds(), fmt.Sprintf(format, args...))
}

func (h *Host) abortTimeout() time.Duration {
	if h.AbortTimeout > 0 {
		return h.AbortTimeout
	}
	return 2 * time.Minute
}

func (h *Host) nameTimeout() time.Duration {
	if h.NameTimeout > 0 {
		return h.NameTimeout
	}
	return 30 * time.Second
}

// Error is a failure of the toolstack, with its own words.
type Error struct {
	// Op is the command, as "xl save vm".
	Op string
	// Msg is xl's most telling line: its first error line, else its last.
	Msg string
	// More counts the further error lines left out of Msg.
	More int
	// Lines are the last lines xl printed.
	Lines []string
	// Err is how xl ended (an *exec.ExitError) or what went wrong
	// around it.
	Err error
}

func (e *Error) Error() string {
	msg := e.Msg
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if e.More > 0 {
		msg += fmt.Sprintf(" (and %d more error lines; -v shows all of xl's output)", e.More)
	}
	return e.Op + ": " + msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes an xl failure that says the domain does not exist match
// domain.ErrNotFound.
func (e *Error) Is(target error) bool {
	return target == domain.ErrNotFound && noSuchDomain.MatchString(strings.Join(e.Lines, "\n"))
}

// errorLine matches the lines of xl's output that report a failure.
var errorLine = regexp.MustCompile(`(?i)\berror\b|\bfail|cannot|can't|unable|invalid|does not exist|not exist|no such|refus|denied|already exists`)

// newError builds an *Error from xl's output.
func newError(op string, lines []string, err error) *Error {
	e := &Error{Op: op, Lines: lines, Err: err}
	var found []string
	for _, l := range lines {
		if errorLine.MatchString(l) {
			found = append(found, l)
		}
	}
	switch {
	case len(found) > 0:
		e.Msg, e.More = found[0], len(found)-1
	case len(lines) > 0:
		e.Msg = lines[len(lines)-1]
	}
	if e.Msg == "" && err != nil {
		e.Msg = err.Error()
	} else if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() < 0 {
		e.Msg += " (" + ee.String() + ")"
	}
	return e
}

// outputLog keeps the last lines a command printed and copies everything
// to an optional writer.
type outputLog struct {
	mu      sync.Mutex
	tee     io.Writer
	lines   []string
	partial []byte
}

const keepLines = 200

func (l *outputLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tee != nil {
		l.tee.Write(p) // a failing log must not fail the command
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.add(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) > 64<<10 { // a line without end: keep its start
		l.add(string(l.partial[:4096]))
		l.partial = l.partial[:0]
	}
	return len(p), nil
}

func (l *outputLog) add(s string) {
	s = strings.TrimRight(s, "\r ")
	if strings.TrimSpace(s) == "" {
		return
	}
	if len(l.lines) == keepLines {
		copy(l.lines, l.lines[1:])
		l.lines = l.lines[:keepLines-1]
	}
	l.lines = append(l.lines, s)
}

// Lines returns the lines printed so far, the unfinished one included.
func (l *outputLog) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]string(nil), l.lines...)
	if s := strings.TrimSpace(string(l.partial)); s != "" {
		out = append(out, s)
	}
	return out
}

// command prepares an xl command. xl runs in its own process group, so
// that a Ctrl-C at the terminal reaches us, who stop xl cleanly, and not
// xl in the middle of a save.
func (h *Host) command(log *outputLog, args ...string) *exec.Cmd {
	if h.Verbose {
		args = append([]string{"-vvv"}, args...)
	}
	cmd := exec.Command(h.XL, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// xl restore leaves a daemon behind that may hold on to the output
	// pipes for a moment: do not wait for it.
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// killGroup kills cmd, started by command in a process group of its own,
// and what it started (libxl's save/restore helper).
func killGroup(cmd *exec.Cmd) { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

// exitError is cmd's error from Wait or Run. A process xl leaves
// behind (xl restore's daemon) may hold xl's output for a moment; when
// it does longer than WaitDelay, os/exec stops copying it and reports
// ErrWaitDelay, but xl's own exit status is what counts.
func exitError(cmd *exec.Cmd, err error) error {
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		return nil
	}
	return err
}

// run runs a short xl command and returns its standard output alone.
func (h *Host) run(ctx context.Context, args ...string) ([]byte, error) {
	h.Tracef("xl %s", strings.Join(args, " "))
	defer h.Tracef("xl %s done", args[0])
	log := &outputLog{tee: h.Log}
	var stdout bytes.Buffer
	cmd := h.command(log, args...)
	cmd.Stdout = &stdout
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := exitError(cmd, cmd.Run()); err != nil {
		lines := log.Lines()
		if len(lines) == 0 {
			lines = splitLines(stdout.String())
		}
		return stdout.Bytes(), newError("xl "+strings.Join(args, " "), lines, err)
	}
	return stdout.Bytes(), nil
}

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, strings.TrimRight(l, "\r "))
		}
	}
	return out
}

// Domain is a domain of the Xen host as xl lists it.
type Domain struct {
	Name      string `json:"name"`
	ID        int    `json:"domid"`
	MemoryMiB int64  `json:"memory_mib"`
	VCPUs     int    `json:"vcpus"`
	// State is xl's six state letters, as "-b----" or "--p---".
	State string `json:"state"`
	// Type is pv, pvh or hvm, or empty when xl does not say.
	Type string `json:"type,omitempty"`
}

// Paused reports whether the domain is paused.
func (d Domain) Paused() bool { return len(d.State) > 2 && d.State[2] == 'p' }

// Describe returns the domain's state in words.
func (d Domain) Describe() string {
	var w []string
	for i, name := range []string{"running", "blocked", "paused", "shutdown", "crashed", "dying"} {
		if i < len(d.State) && d.State[i] != '-' {
			w = append(w, name)
		}
	}
	if len(w) == 0 {
		return "idle"
	}
	return strings.Join(w, ",")
}

// ErrNotFound is returned for a domain Xen does not have; it wraps
// domain.ErrNotFound.
var ErrNotFound = fmt.Errorf("xen: %w", domain.ErrNotFound)

// List returns the host's domains (Domain-0 included), with their types
// when `xl list -l` tells them.
func (h *Host) List(ctx context.Context) ([]Domain, error) {
	out, err := h.run(ctx, "list")
	if err != nil {
		return nil, err
	}
	doms, err := parseList(out)
	if err != nil {
		return nil, err
	}
	if long, err := h.run(ctx, "list", "-l"); err == nil {
		types := parseLongTypes(long)
		for i := range doms {
			doms[i].Type = types[doms[i].ID]
		}
	}
	return doms, nil
}

// Lookup returns the domain of that name or id.
func (h *Host) Lookup(ctx context.Context, name string) (Domain, error) {
	out, err := h.run(ctx, "list", name)
	if err != nil {
		var xe *Error
		if errors.As(err, &xe) && noSuchDomain.MatchString(strings.Join(xe.Lines, "\n")) {
			return Domain{}, fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		return Domain{}, err
	}
	doms, err := parseList(out)
	if err != nil {
		return Domain{}, err
	}
	if len(doms) != 1 {
		return Domain{}, fmt.Errorf("xen: xl list %s listed %d domains", name, len(doms))
	}
	return doms[0], nil
}

// noSuchDomain matches what xl says of a domain it does not have.
var noSuchDomain = regexp.MustCompile(`(?i)not exist|invalid domain identifier|no such domain`)

// names returns the names of the host's domains: from xenstore when it
// answers, else with one `xl list`, much cheaper than a look-up by name
// (which lists every domain's name from xenstore).
func (h *Host) names(ctx context.Context) (domainIDs, error) {
	if names, err := h.xenstoreNames(); err == nil {
		return names, nil
	}
	return h.xlNames(ctx)
}

// xenstoreNames returns the names of the host's domains from xenstore,
// or an error when there is none to ask or it does not answer.
func (h *Host) xenstoreNames() (domainIDs, error) {
	if len(h.Xenstore) == 0 {
		return nil, errors.New("xen: no xenstore to ask")
	}
	names, err := xenstoreNames(h.Xenstore)
	if err != nil {
		h.Tracef("xenstore: %v; asking xl list", err)
		return nil, err
	}
	h.Tracef("xenstore: %d domain names", len(names))
	return names, nil
}

// xlNames returns the names of the host's domains as xl list has them.
func (h *Host) xlNames(ctx context.Context) (domainIDs, error) {
	out, err := h.run(ctx, "list")
	if err != nil {
		return nil, err
	}
	doms, err := parseList(out)
	if err != nil {
		return nil, err
	}
	names := domainIDs{}
	for _, d := range doms {
		names[d.Name] = d.ID
	}
	return names, nil
}

// exists reports whether a domain of that name exists.
func (h *Host) exists(ctx context.Context, name string) (bool, error) {
	names, err := h.names(ctx)
	return names.has(name), err
}

// domainIDs maps the names of a host's domains to their ids.
type domainIDs map[string]int

func (d domainIDs) has(name string) bool {
	_, ok := d[name]
	return ok
}

func (d domainIDs) hasID(id int) bool {
	for _, i := range d {
		if i == id {
			return true
		}
	}
	return false
}

// Destroy destroys a domain.
func (h *Host) Destroy(ctx context.Context, name string) error {
	_, err := h.run(ctx, "destroy", name)
	return err
}

// parseList reads the table `xl list` prints:
//
//	Name                                        ID   Mem VCPUs	State	Time(s)
//	Domain-0                                     0  1024     2     r-----      12.3
func parseList(out []byte) ([]Domain, error) {
	var doms []Domain
	sc := bufio.NewScanner(bytes.NewReader(out))
	header := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if !header {
			if f[0] != "Name" {
				return nil, fmt.Errorf("xen: unexpected xl list output %q", sc.Text())
			}
			header = true
			continue
		}
		// The name may hold spaces in theory; the last five fields are fixed.
		if len(f) < 6 {
			return nil, fmt.Errorf("xen: unexpected xl list line %q", sc.Text())
		}
		n := len(f)
		id, err1 := strconv.Atoi(f[n-5])
		mem, err2 := strconv.ParseInt(f[n-4], 10, 64)
		vcpus, err3 := strconv.Atoi(f[n-3])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("xen: unexpected xl list line %q: %v", sc.Text(), err)
		}
		doms = append(doms, Domain{Name: strings.Join(f[:n-5], " "), ID: id, MemoryMiB: mem, VCPUs: vcpus, State: f[n-2]})
	}
	if !header {
		return nil, errors.New("xen: xl list printed nothing")
	}
	return doms, nil
}

// parseLongTypes reads the guest types out of `xl list -l`'s JSON.
func parseLongTypes(out []byte) map[int]string {
	var doms []struct {
		DomID  int `json:"domid"`
		Config struct {
			CInfo struct {
				Type string `json:"type"`
			} `json:"c_info"`
		} `json:"config"`
	}
	types := map[int]string{}
	if json.Unmarshal(out, &doms) != nil {
		return types
	}
	for _, d := range doms {
		types[d.DomID] = d.Config.CInfo.Type
	}
	return types
}
