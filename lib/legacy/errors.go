package legacy

import (
	"errors"
	"fmt"
	"io"

	"github.com/xstream/xstream/lib/stream"
)

var (
	// ErrUndetermined is wrapped by the error Detect returns when the
	// stream reads correctly in more than one layout and no option
	// settles it: only the user can say which (-w, -g).
	ErrUndetermined = errors.New("cannot tell the stream's layout")

	// ErrNotLegacy is wrapped by the error for input that is a migration
	// stream v2/v3 (or an xl header announcing one), not a legacy stream.
	ErrNotLegacy = errors.New("not a legacy stream")
)

// hinted is an error that carries a suggestion for the user, shown on its
// own "hint:" line by the commands.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }
func (h *hinted) Hint() string  { return h.hint }

// withHint attaches a hint to err, unless it has one already.
func withHint(err error, format string, args ...any) error {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return err
	}
	return &hinted{err: err, hint: fmt.Sprintf(format, args...)}
}

// truncated is the error for a stream that ends inside a part.
type truncated struct{ have, want int64 }

func (t truncated) Error() string {
	if t.want <= 0 {
		return "stream truncated"
	}
	return fmt.Sprintf("stream truncated: %d of %d octets present", t.have, t.want)
}
func (truncated) Unwrap() error { return io.ErrUnexpectedEOF }

// errWindow ends the look-ahead window a detection probe reads: reading
// past the window is "consistent so far", not truncation.
var errWindow = errors.New("end of the detection window")

// part names the piece of the stream being read, for error messages.
type part struct {
	off   int64
	index int    // chunk ordinal, -1 outside the body
	name  string // chunk type or part name
}

func (p part) errorf(err error) *stream.FormatError {
	return &stream.FormatError{Layer: "legacy", Offset: p.off, Index: p.index, Type: p.name, Err: err}
}
