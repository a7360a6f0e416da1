package stream

import (
	"errors"
	"os"
	"sync"
	"syscall"
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
