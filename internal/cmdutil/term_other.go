//go:build !linux

package cmdutil

import "os"

// IsTerminal reports whether f is a character device other than
// /dev/null, the best guess without a terminal ioctl.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
