package xen

import (
	"os"
	"syscall"
)

// fSetPipeSize is F_SETPIPE_SZ (F_LINUX_SPECIFIC_BASE + 7).
const fSetPipeSize = 1031

// pipeSize is the pipe buffer we ask for: a whole PAGE_DATA batch
// (4 MiB) and then some, so that xl's saver writes a batch with one
// wake-up of the reader instead of sixty-four. Under emulation (and in a
// PV dom0) every switch between writer and reader is dear: with Linux's
// default 64 KiB the pipe costs more than the save.
var pipeSize = []int{8 << 20, 4 << 20, 1 << 20}

// growPipe enlarges the pipe of f, as far as the kernel lets it; failure
// only costs speed.
func growPipe(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		for _, n := range pipeSize {
			if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSize, uintptr(n)); errno == 0 {
				return
			}
		}
	})
}
