//go:build !linux

package stream

import "os"

// splice is Linux's; elsewhere the caller copies.
func splice(out, in *os.File, n int64) (int64, bool, error) { return 0, false, nil }

// spliceAt is Linux's; elsewhere the caller copies.
func spliceAt(out, in *os.File, off, n int64) (int64, bool, error) { return 0, false, nil }

// discardPipe is Linux's; elsewhere the caller reads.
func discardPipe(in *os.File, n int64) (int64, bool, error) { return 0, false, nil }

// spliceFromPipe is Linux's; elsewhere the caller copies.
func spliceFromPipe(out, in *os.File, n int64) (int64, bool, error, error) { return 0, false, nil, nil }
