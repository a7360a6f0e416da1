//go:build !unix

package cmdutil

import (
	"context"
	"os"
)

// Interruptible returns f: reads are not made interruptible here.
func Interruptible(ctx context.Context, f *os.File) (*os.File, func()) { return f, func() {} }
