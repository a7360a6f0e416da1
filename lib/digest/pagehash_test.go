package digest

import (
	"crypto/sha256"
	"testing"

	"github.com/xstream/xstream/lib/stream"
)

// TestPageHash: the zero-page shortcut gives what hashing gives.
func TestPageHash(t *testing.T) {
	p := make([]byte, stream.PageSize)
	for _, i := range []int{-1, 0, 1, stream.PageSize / 2, stream.PageSize - 1} {
		clear(p)
		if i >= 0 {
			p[i] = 1
		}
		sum := sha256.Sum256(p)
		if got := pageHash(p); string(got[:]) != string(sum[:16]) {
			t.Errorf("page with octet %d set: hash %x, want %x", i, got, sum[:16])
		}
	}
}
