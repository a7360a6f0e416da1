package stream

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// splice moves n octets (all, if n < 0) from in to out, one of them a
// pipe, with splice(2): the kernel moves page references and nothing
// passes through user memory. handled is false when splice(2) refused
// the descriptors before moving anything, and the caller should copy.
func splice(out, in *os.File, n int64) (moved int64, handled bool, err error) {
	return spliceFrom(out, in, nil, n)
}

// spliceAt is splice reading in, a regular file, from offset off on,
// without moving its file offset; it stops early at the end of the file.
func spliceAt(out, in *os.File, off, n int64) (moved int64, handled bool, err error) {
	return spliceFrom(out, in, &off, n)
}

func spliceFrom(out, in *os.File, off *int64, n int64) (moved int64, handled bool, err error) {
	const chunk = 1 << 20
	ifd, ofd := int(in.Fd()), int(out.Fd())
	for n < 0 || moved < n {
		want := chunk
		if n >= 0 {
			want = int(min(int64(chunk), n-moved))
		}
		k, err := syscall.Splice(ifd, off, ofd, nil, want, spliceMove)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			if moved == 0 && (errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EAGAIN)) {
				return 0, false, nil
			}
			if errors.Is(err, syscall.EAGAIN) {
				return moved, false, nil // the caller's copy waits properly
			}
			return moved, true, &os.SyscallError{Syscall: "splice", Err: err}
		}
		if k == 0 {
			break // end of input
		}
		moved += int64(k)
	}
	return moved, true, nil
}

// SPLICE_F_MOVE: a hint to move pages rather than copy.
const spliceMove = 1

var devNull struct {
	once sync.Once
	f    *os.File
}

// discardPipe drops n octets of the pipe in by splicing them into
// /dev/null. handled is false when that is not possible; moved says how
// much went before it stopped.
func discardPipe(in *os.File, n int64) (moved int64, handled bool, err error) {
	devNull.once.Do(func() { devNull.f, _ = os.OpenFile(os.DevNull, os.O_WRONLY, 0) })
	if devNull.f == nil {
		return 0, false, nil
	}
	return splice(devNull.f, in, n)
}

// SPLICE_F_NONBLOCK: the pipe ends of a splice do not block.
const spliceNonblock = 2

// spliceFromPipe moves up to n octets from the pipe in to out (n < 0: to
// the end of in) with splice(2), like splice, but waits for in through
// Go's poller and never puts it in blocking mode, so that closing in
// from another goroutine (to stop a copy, and tell in's writer) ends a
// wait on either side at once instead of leaving the copy blocked with
// the pipe held open. out must be a pipe or a regular file, and stay
// open for the call: into a socket, which blocks whatever the splice's
// flags say, the caller copies. in must be non-blocking (as os.Pipe
// makes it); a blocking in gives handled false. inErr is an error of in
// (closed); outErr one of writing out. handled is as for splice.
func spliceFromPipe(out, in *os.File, n int64) (moved int64, handled bool, inErr, outErr error) {
	irc, err1 := in.SyscallConn()
	orc, err2 := out.SyscallConn()
	if err1 != nil || err2 != nil {
		return 0, false, nil, nil
	}
	// Only a non-blocking in is in the poller (os.NewFile's rule).
	nonblock := false
	irc.Control(func(fd uintptr) {
		fl, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		nonblock = errno == 0 && fl&syscall.O_NONBLOCK != 0
	})
	ofd := -1
	orc.Control(func(fd uintptr) { ofd = int(fd) })
	if !nonblock || ofd < 0 {
		return 0, false, nil, nil
	}
	const chunk = 1 << 20
	for n < 0 || moved < n {
		want := chunk
		if n >= 0 {
			want = int(min(int64(chunk), n-moved))
		}
		var (
			k    int64
			serr error
			full bool // EAGAIN with data to move: out is full
		)
		inErr = irc.Read(func(ifd uintptr) bool {
			for {
				m, err := syscall.Splice(int(ifd), nil, ofd, nil, want, spliceMove|spliceNonblock)
				k, serr = int64(m), err
				if serr != syscall.EINTR {
					break
				}
			}
			if serr == syscall.EAGAIN {
				if !ready(int(ifd), pollIn, 0) {
					return false // no data yet: wait for it
				}
				full = true
			}
			return true
		})
		if inErr != nil {
			return moved, true, inErr, nil
		}
		if full {
			// Wait for room in out, looking every so often whether in
			// has been closed meanwhile.
			for !ready(ofd, pollOut, 100*time.Millisecond) {
				if err := irc.Control(func(uintptr) {}); err != nil {
					return moved, true, err, nil
				}
			}
			continue
		}
		if serr != nil {
			if moved == 0 && errors.Is(serr, syscall.EINVAL) {
				return 0, false, nil, nil
			}
			return moved, true, nil, &os.SyscallError{Syscall: "splice", Err: serr}
		}
		if k == 0 {
			break // end of input
		}
		moved += k
	}
	return moved, true, nil, nil
}

// poll(2) events.
const (
	pollIn   = 0x1
	pollOut  = 0x4
	pollErr  = 0x8
	pollHup  = 0x10
	pollNval = 0x20
)

// ready tells whether fd is ready for events (or has an error, a hang-up
// or a closed descriptor to report, which the next operation then
// returns), waiting at most timeout.
func ready(fd int, events int16, timeout time.Duration) bool {
	pfd := struct {
		fd             int32
		events, revent int16
	}{int32(fd), events, 0}
	ts := syscall.NsecToTimespec(int64(timeout))
	for {
		n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		return errno == 0 && n == 1 && pfd.revent&(events|pollErr|pollHup|pollNval) != 0
	}
}
