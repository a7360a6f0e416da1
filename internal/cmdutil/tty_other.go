//go:build !linux

package cmdutil

import "os"

// IsTerminal reports whether f is a character device, the nearest this
// platform gets without an ioctl.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
