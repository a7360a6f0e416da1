//go:build !unix

package cmdutil

import "io/fs"

// umask is the usual mask where the process's cannot be read.
const umask fs.FileMode = 0o022
