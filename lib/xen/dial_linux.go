package xen

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// dialUnix connects to a unix socket with a deadline on the whole
// conversation. It uses the socket calls directly: the net package
// would add to every command's size and start-up what one connection
// does not need.
func dialUnix(path string, timeout time.Duration) (io.ReadWriteCloser, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("connecting to %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	if err := f.SetDeadline(time.Now().Add(timeout)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
