// Package cmdutil holds what the xstream commands share: exit codes mapped
// from errors in one place, the error line format, and input opening.
package cmdutil

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/xstream/xstream/lib/legacy"
	"github.com/xstream/xstream/lib/store"
	"github.com/xstream/xstream/lib/stream"
)

// Exit codes of every xstream command.
const (
	ExitOK      = 0
	ExitFailure = 1 // operational failure: I/O, permissions, a full disk
	ExitUsage   = 2 // bad command line, or a question only the user can answer
	ExitInvalid = 3 // invalid, corrupt or truncated stream
)

// ExitStatusHelp is the EXIT STATUS section for --help texts.
const ExitStatusHelp = `EXIT STATUS:
   0  success
   1  operational failure (I/O error, broken pipe, disk full)
   2  usage error (and, for the tools that take -w and -g, a legacy
      stream whose layout only they can settle)
   3  invalid, corrupt or truncated stream`

// UsageError marks an error as the user's to fix on the command line.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...)}
}

// Code maps an error to an exit code.
func Code(err error) int {
	var ue *UsageError
	var fe *stream.FormatError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue), errors.Is(err, legacy.ErrUndetermined), errors.Is(err, store.ErrBadName):
		// A legacy stream whose layout only the user can tell (-w, -g)
		// is a question for the command line, not a bad stream; so is
		// a domain name the store cannot take.
		return ExitUsage
	case isIOError(err):
		// A read that failed (EIO from a disk, a reset connection)
		// says nothing of the stream, even in the middle of a record.
		return ExitFailure
	case errors.As(err, &fe), errors.Is(err, stream.ErrCorrupt), errors.Is(err, stream.ErrUnsupported),
		errors.Is(err, stream.ErrLimit):
		return ExitInvalid
	case errors.Is(err, io.ErrUnexpectedEOF):
		return ExitInvalid
	}
	return ExitFailure
}

func onUsageError(_ *cli.Context, err error, _ bool) error {
	return &UsageError{Err: err}
}

// AtLeastOne refuses the named integer flags when they are set below 1
// (a zero would otherwise silently mean the default).
func AtLeastOne(c *cli.Context, names ...string) error {
	for _, n := range names {
		if c.IsSet(n) && c.Int(n) < 1 {
			return Usagef("--%s %d: must be at least 1", n, c.Int(n))
		}
	}
	return nil
}

// isIOError tells whether err comes from the system: an errno, bare or
// wrapped by the os package.
func isIOError(err error) bool {
	var errno syscall.Errno
	var pe *fs.PathError
	var se *os.SyscallError
	return errors.As(err, &errno) || errors.As(err, &pe) || errors.As(err, &se)
}

// Run runs app with os.Args and exits with the mapped code, printing the
// error as "name: message". urfave/cli's own exit handling is bypassed so
// that wrapped errors keep their codes.
func Run(app *cli.App) {
	// A reader that goes away (xstream-cat big.xl | head) makes writes
	// fail with EPIPE, an error reported with exit status 1, not a
	// silent death by SIGPIPE; xl, which some commands run, inherits it
	// ignored too, and fails and resumes a domain rather than die.
	signal.Ignore(syscall.SIGPIPE)
	app.ExitErrHandler = func(*cli.Context, error) {}
	app.HideHelpCommand = true
	// Without this urfave/cli gives every command a "help" subcommand
	// aliased "h", and "xdomain create h" would show help instead of
	// creating a domain named h.
	// A flag urfave/cli cannot parse is a usage error (exit 2), said in
	// one line, not with the whole help.
	app.OnUsageError = onUsageError
	for _, c := range app.Commands {
		c.HideHelpCommand = true
		c.OnUsageError = onUsageError
	}
	err := app.Run(Intersperse(app, os.Args))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", app.Name, describe(err))
		if h := hint(err); h != "" {
			fmt.Fprintf(os.Stderr, "%s: hint: %s\n", app.Name, h)
		}
	}
	os.Exit(Code(err))
}

func describe(err error) error {
	if errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("output closed early (broken pipe)")
	}
	return err
}

// Hinter is implemented by errors that carry a suggestion for the user.
type Hinter interface{ Hint() string }

func hint(err error) string {
	var h Hinter
	if errors.As(err, &h) {
		return h.Hint()
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && errors.Is(err, fs.ErrNotExist) {
		return "check the file name"
	}
	return ""
}

// OpenInput opens a file argument, "-" or "" meaning standard input. It
// returns the *os.File itself, so that readers can seek a file or splice
// a pipe.
func OpenInput(name string) (*os.File, error) {
	if name == "" || name == "-" {
		GrowPipe(os.Stdin)
		return os.Stdin, nil
	}
	return os.Open(name)
}

// Intersperse moves flags that follow positional arguments in front of
// them, so that "xstream-cat FILE --json" works like "xstream-cat --json
// FILE" (urfave/cli stops parsing flags at the first positional
// argument). Everything after "--" stays as it is.
func Intersperse(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	flags, rest := app.Flags, args[1:]
	// With subcommands, the app's own flags come before the command's
	// name and the command's flags after it.
	if len(app.Commands) > 0 {
		appValue := valueFlags(app.Flags)
		for i := 0; i < len(rest); i++ {
			a := rest[i]
			if len(a) > 1 && a[0] == '-' {
				if n := strings.TrimLeft(a, "-"); !strings.Contains(n, "=") && appValue[n] {
					i++ // skip the flag's value
				}
				continue
			}
			if cmd := app.Command(a); cmd != nil {
				out = append(out, rest[:i+1]...)
				flags, rest = cmd.Flags, rest[i+1:]
			}
			break
		}
	}
	takesValue := valueFlags(flags)
	var fl, pos []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			fl = append(fl, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(rest) {
				i++
				fl = append(fl, rest[i])
			}
			continue
		}
		pos = append(pos, a)
	}
	out = append(out, fl...)
	return append(out, pos...)
}

// valueFlags maps each flag name to whether the flag takes a value.
func valueFlags(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}

// StoreFlag is the --store flag every command that uses the store takes.
func StoreFlag() cli.Flag {
	return &cli.StringFlag{Name: "store", Usage: "the domain store `DIR` (default $XSTREAM_STORE, else $XDG_DATA_HOME/xstream, else ~/.local/share/xstream)"}
}

// ParseByteOrder reads a --byte-order value: little, big or native.
func ParseByteOrder(s string) (stream.ByteOrder, error) {
	switch s {
	case "little", "le":
		return binary.LittleEndian, nil
	case "big", "be":
		return binary.BigEndian, nil
	case "native", "":
		if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
			return binary.LittleEndian, nil
		}
		return binary.BigEndian, nil
	}
	return nil, Usagef("unknown byte order %q: want little, big or native", s)
}

// ParseSize reads a size such as "64MiB", "64M", "1g", "4096K" or a
// number of octets.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(s), "b"), "i")
	shift := 0
	if t != "" {
		switch t[len(t)-1] {
		case 'k':
			shift = 10
		case 'm':
			shift = 20
		case 'g':
			shift = 30
		case 't':
			shift = 40
		}
		if shift != 0 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("%q is not a size such as 512MiB or 4GiB", s)
	}
	return n << shift, nil
}

// LegacyFlags are the -w and -g overrides of legacy stream detection that
// every reader of streams takes.
func LegacyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "width", Aliases: []string{"w"}, Usage: "legacy input: the toolstack width, `32|64` (default: detected)"},
		&cli.StringFlag{Name: "guest-type", Aliases: []string{"g"}, Usage: "legacy input: the guest type, `pv|hvm` (default: detected)"},
	}
}

// LegacyOverrides reads the LegacyFlags: 0 and legacy.GuestAuto mean
// detect.
func LegacyOverrides(c *cli.Context) (width int, guest legacy.Guest, err error) {
	switch w := c.String("width"); w {
	case "":
	case "32", "64":
		width, _ = strconv.Atoi(w)
	default:
		return 0, 0, Usagef("-w %s: want 32 or 64", w)
	}
	if g := c.String("guest-type"); g != "" {
		if guest, err = legacy.ParseGuest(g); err != nil {
			return 0, 0, Usagef("-g: %v", err)
		}
	}
	return width, guest, nil
}
