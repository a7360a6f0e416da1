//go:build linux && !arm

package writeback

import (
	"os"
	"syscall"
)

// Start asks the kernel to begin writing f's dirty pages out now, without
// waiting for them.
func Start(f *os.File) error {
	const syncFileRangeWrite = 2 // SYNC_FILE_RANGE_WRITE
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	// Control holds the file open for the call, so a Close meanwhile
	// cannot hand its descriptor to another file.
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SyncFileRange(int(fd), 0, 0, syncFileRangeWrite)
	}); err != nil {
		return err
	}
	return serr
}
