// Package cmdutil holds what the xstream commands share: exit codes mapped
// from errors in one place, the error line format, and input opening.
package cmdutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/xstream/xstream/lib/legacy"
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
   2  usage error, or a legacy stream whose layout needs -w or -g
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
	case errors.As(err, &ue), errors.Is(err, legacy.ErrUndetermined):
		// A legacy stream whose layout only the user can tell (-w, -g)
		// is a question for the command line, not a bad stream.
		return ExitUsage
	case errors.As(err, &fe), errors.Is(err, stream.ErrCorrupt), errors.Is(err, stream.ErrUnsupported),
		errors.Is(err, stream.ErrLimit):
		return ExitInvalid
	case errors.Is(err, io.ErrUnexpectedEOF):
		return ExitInvalid
	}
	return ExitFailure
}

// Run runs app with os.Args and exits with the mapped code, printing the
// error as "name: message". urfave/cli's own exit handling is bypassed so
// that wrapped errors keep their codes.
func Run(app *cli.App) {
	app.ExitErrHandler = func(*cli.Context, error) {}
	app.HideHelpCommand = true
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

// OpenInput opens a file argument, "-" or "" meaning standard input.
func OpenInput(name string) (io.ReadCloser, error) {
	if name == "" || name == "-" {
		return io.NopCloser(os.Stdin), nil
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
	takesValue := map[string]bool{}
	for _, f := range app.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, pos []string
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(rest) {
				i++
				flags = append(flags, rest[i])
			}
			continue
		}
		pos = append(pos, a)
	}
	out := append([]string{args[0]}, flags...)
	return append(out, pos...)
}
