//go:build !linux || arm

package store

import "os"

// startWriteback does nothing where sync_file_range(2) is not available;
// Commit's fsync does all the work.
func startWriteback(*os.File) {}
