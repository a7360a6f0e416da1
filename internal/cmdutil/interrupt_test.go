//go:build unix

package cmdutil

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// A read of a pipe whose writer stalls, or of a file, ends when the
// context does; and the pipe is left in blocking mode for whoever reads
// it next.
func TestInterruptible(t *testing.T) {
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil { // blocking, as standard input is
		t.Fatal(err)
	}
	f, pw := os.NewFile(uintptr(fds[0]), "pipe"), os.NewFile(uintptr(fds[1]), "pipe")
	defer f.Close()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	r, release := Interruptible(ctx, f)
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("read of a stalled pipe: %v after %v", err, time.Since(start))
	}
	release()
	fl, err := fcntl(f, syscall.F_GETFL)
	if err != nil || fl&syscall.O_NONBLOCK != 0 {
		t.Fatalf("the pipe is left with flags %#x (%v)", fl, err)
	}

	file, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	ctx, cancel = context.WithCancel(context.Background())
	r, release = Interruptible(ctx, file)
	defer release()
	if _, err := r.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	cancel() // the file is closed by another goroutine, soon
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		_, err := r.Read(make([]byte, 10))
		if errors.Is(err, os.ErrClosed) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("read of a file after the context ended: %v", err)
		}
	}
	if _, err := file.Read(make([]byte, 10)); err != nil {
		t.Fatalf("the caller's file: %v", err)
	}
}

func fcntl(f *os.File, cmd int) (int, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var v uintptr
	var errno syscall.Errno
	sc.Control(func(fd uintptr) { v, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, uintptr(cmd), 0) })
	if errno != 0 {
		return 0, errno
	}
	return int(v), nil
}
