//go:build !linux

package xen

import (
	"errors"
	"io"
	"time"
)

func dialUnix(string, time.Duration) (io.ReadWriteCloser, error) {
	return nil, errors.New("xenstore: only on Linux")
}
