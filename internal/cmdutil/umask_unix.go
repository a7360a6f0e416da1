//go:build unix

package cmdutil

import (
	"io/fs"
	"syscall"
)

// umask is the process's file mode creation mask, read once at start
// (reading it means setting it, so it is done before any file is made).
var umask = func() fs.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return fs.FileMode(m)
}()
