//go:build unix

package cmdutil

import (
	"context"
	"os"
	"syscall"
	"time"
)

// Interruptible returns a new handle on f whose reads end as soon as ctx
// is done. A read of a pipe in blocking mode, as standard input usually
// is, would otherwise wait for the writer, so that Ctrl-C did nothing
// while ssh or the command upstream stalled; and work on a file would go
// on to its end. The handle is a duplicate: of a pipe or socket, put in
// non-blocking mode, which Go's poller can wake (the read fails with
// os.ErrDeadlineExceeded); of anything else, closed (os.ErrClosed). stop
// releases it, and puts a pipe that was in blocking mode back in it.
// Should anything fail, f itself is returned.
func Interruptible(ctx context.Context, f *os.File) (r *os.File, stop func()) {
	fi, err := f.Stat()
	if err != nil {
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
	polled := fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0
	wasBlocking := false
	if polled {
		fl, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
		wasBlocking = errno == 0 && fl&syscall.O_NONBLOCK == 0
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			return f, func() {}
		}
	}
	nf := os.NewFile(uintptr(fd), f.Name())
	cancel := context.AfterFunc(ctx, func() {
		if polled {
			nf.SetReadDeadline(time.Now())
		} else {
			nf.Close()
		}
	})
	return nf, func() {
		cancel()
		if wasBlocking {
			// The mode belongs to the pipe's open file, which others
			// (the shell's next command) may read after us.
			if sc, err := nf.SyscallConn(); err == nil {
				sc.Control(func(fd uintptr) { syscall.SetNonblock(int(fd), false) })
			}
		}
		nf.Close()
	}
}
