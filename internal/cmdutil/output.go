package cmdutil

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrTerminal is returned when a binary stream would go to a terminal.
var ErrTerminal error = &UsageError{terminalError{}}

type terminalError struct{}

func (terminalError) Error() string { return "refusing to write a binary stream to a terminal" }
func (terminalError) Hint() string {
	return "redirect standard output to a file or a pipe, or give -o FILE"
}

// Output is where a command writes a binary stream: standard output, or
// a file that appears only when complete. Create it when the input and
// options have been checked, so that a failure leaves no file behind.
type Output struct {
	io.Writer
	f    *os.File
	name string // final name; "" for standard output
}

// CreateOutput opens name for writing a stream ("" or "-" meaning
// standard output, which must not be a terminal). A file is written
// under a temporary name in the same directory; Commit syncs and
// renames it, Abort removes it.
func CreateOutput(name string) (*Output, error) {
	if name == "" || name == "-" {
		if IsTerminal(os.Stdout) {
			return nil, ErrTerminal
		}
		return &Output{Writer: os.Stdout}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return nil, err
	}
	return &Output{Writer: f, f: f, name: name}, nil
}

// Commit makes the output final: for a file, sync, close and rename over
// name.
func (o *Output) Commit() error {
	if o.f == nil {
		return nil
	}
	err := o.f.Sync()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(o.f.Name(), o.name)
	}
	if err != nil {
		os.Remove(o.f.Name())
		return fmt.Errorf("writing %s: %w", o.name, err)
	}
	return nil
}

// Abort removes a file output's temporary file. It is safe after Commit.
func (o *Output) Abort() {
	if o.f != nil {
		o.f.Close()
		os.Remove(o.f.Name())
	}
}
