//go:build linux && !arm

package store

import (
	"os"
	"syscall"
)

// startWriteback asks the kernel to begin writing f's dirty pages out now,
// without waiting, so that the disk works while the stream is still
// arriving and the fsync at Commit has little left to do.
func startWriteback(f *os.File) {
	const syncFileRangeWrite = 2 // SYNC_FILE_RANGE_WRITE
	_ = syscall.SyncFileRange(int(f.Fd()), 0, 0, syncFileRangeWrite)
}
