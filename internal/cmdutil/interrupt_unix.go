//go:build unix

package cmdutil

import (
	"context"
	"os"
	"syscall"
	"time"
)

// Interruptible returns f, or for a pipe or socket a new handle on it
// whose reads end (with os.ErrDeadlineExceeded) as soon as ctx is done:
// a read of a pipe in blocking mode, as standard input usually is, would
// otherwise wait for the writer, so that Ctrl-C did nothing while ssh or
// the command upstream stalled. The handle is a duplicate put in
// non-blocking mode, which Go's poller can wake; stop releases it.
func Interruptible(ctx context.Context, f *os.File) (r *os.File, stop func()) {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) == 0 {
		return f, func() {}
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return f, func() {}
	}
	fd := -1
	sc.Control(func(raw uintptr) { fd, err = syscall.Dup(int(raw)) })
	if fd < 0 || err != nil {
		return f, func() {}
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return f, func() {}
	}
	nf := os.NewFile(uintptr(fd), f.Name())
	cancel := context.AfterFunc(ctx, func() { nf.SetReadDeadline(time.Now()) })
	return nf, func() {
		cancel()
		nf.Close()
	}
}
