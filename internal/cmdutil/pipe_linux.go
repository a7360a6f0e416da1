package cmdutil

import (
	"os"
	"syscall"
)

// pipeSize is what GrowPipe asks for: Linux's default limit for an
// unprivileged process (/proc/sys/fs/pipe-max-size).
const pipeSize = 1 << 20

// fSetPipeSize is F_SETPIPE_SZ (fcntl.h), which package syscall lacks.
const fSetPipeSize = 1031

// GrowPipe enlarges the kernel buffer of f if f is a pipe, from 64 KiB to
// 1 MiB: a stream of gigabytes then crosses the pipe in sixteen times
// fewer reads, writes and context switches, which counts when several
// stages share few CPUs. Failure is harmless and ignored.
func GrowPipe(f *os.File) {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), fSetPipeSize, pipeSize)
}
