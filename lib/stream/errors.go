package stream

import (
	"errors"
	"fmt"
)

// Sentinel errors, for errors.Is. A *FormatError wraps one of them (or
// io.ErrUnexpectedEOF for a stream that stops early, or a plain error
// describing the problem).
var (
	// ErrUnsupported marks a stream that is well formed but uses
	// something this implementation does not support: an unknown
	// mandatory record, an unknown domain type, a page size other than
	// 4 KiB. It is kept apart from corruption.
	ErrUnsupported = errors.New("unsupported")

	// ErrLimit marks a length or count over one of the package's limits.
	ErrLimit = errors.New("over limit")

	// ErrCorrupt marks a stream whose bytes break the specification.
	ErrCorrupt = errors.New("corrupt stream")
)

// FormatError describes where in a stream a problem was found.
type FormatError struct {
	Layer  string // "xl", "libxl", "libxc" or "legacy"; "" means "libxc"
	Offset int64  // byte offset of the header or record at fault
	Index  int    // record (legacy: chunk) ordinal within its layer, -1 for a header
	Type   string // record type name, or the header's name
	Err    error
}

func (e *FormatError) Error() string {
	where := ""
	if e.Layer != "" && e.Layer != "libxc" {
		where = e.Layer + " "
	}
	if e.Index < 0 {
		return fmt.Sprintf("%s%s at offset %#x: %v", where, e.Type, e.Offset, e.Err)
	}
	noun := "record"
	if e.Layer == "legacy" {
		noun = "chunk" // the legacy format has chunks, not records
	}
	return fmt.Sprintf("%s%s %d (%s) at offset %#x: %v", where, noun, e.Index, e.Type, e.Offset, e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }

// corrupt returns an error wrapping ErrCorrupt with a message.
func corrupt(format string, args ...any) error {
	return &wrapped{msg: fmt.Sprintf(format, args...), err: ErrCorrupt}
}

// unsupported returns an error wrapping ErrUnsupported with a message.
func unsupported(format string, args ...any) error {
	return &wrapped{msg: fmt.Sprintf(format, args...), err: ErrUnsupported}
}

// overLimit returns an error wrapping ErrLimit with a message.
func overLimit(format string, args ...any) error {
	return &wrapped{msg: fmt.Sprintf(format, args...), err: ErrLimit}
}

// wrapped is an error with its own message that still matches a sentinel.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// Corrupt, Unsupported and OverLimit are the constructors other format
// packages (libxl, xl, legacy) use so that their errors match the same
// sentinels.
func Corrupt(format string, args ...any) error     { return corrupt(format, args...) }
func Unsupported(format string, args ...any) error { return unsupported(format, args...) }
func OverLimit(format string, args ...any) error   { return overLimit(format, args...) }
