package cmdutil

// ErrTerminal is returned when a binary stream would go to a terminal.
var ErrTerminal error = &UsageError{terminalError{}}

type terminalError struct{}

func (terminalError) Error() string { return "refusing to write a binary stream to a terminal" }
func (terminalError) Hint() string {
	return "redirect standard output to a file or a pipe, or give -o FILE"
}
