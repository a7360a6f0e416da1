package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Only a writer of that very name's leftovers are removed.
func TestIsTempOf(t *testing.T) {
	for _, c := range []struct {
		dir, name string
		want      bool
	}{
		{"a.0123456789ab.tmp", "a", true},
		{"a.b.0123456789ab.tmp", "a", false}, // a.b's
		{"a.b.0123456789ab.tmp", "a.b", true},
		{"a.0123456789ab", "a", false}, // a committed domain
		{"a.0123456789xy.tmp", "a", false},
		{"a.0123456789abc.tmp", "a", false},
		{"vm[1].0123456789ab.tmp", "vm[1]", true},
		{"vm1.0123456789ab.tmp", "vm[1]", false},
	} {
		if got := isTempOf(c.dir, c.name); got != c.want {
			t.Errorf("isTempOf(%q, %q) = %v", c.dir, c.name, got)
		}
	}
}

// A lock is taken once at a time, and leaves no file behind.
func TestLockLeavesNothing(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := s.lock("vm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.lock("vm"); err == nil {
		t.Fatal("a second lock of vm was taken")
	}
	unlock()
	if ents, _ := os.ReadDir(filepath.Join(s.root, lockDir)); len(ents) != 0 {
		t.Fatalf("left in the lock directory: %v", ents)
	}
	unlock, err = s.lock("vm")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}

func TestCheckName(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, name := range []string{"a", "vm1", "_x", "9", "web.example-01", "A_b.c-D", long} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", ".hidden", "-x", "a/b", "a b", "é", "a\x00", "vm:1", long + "a", "a\n"} {
		err := CheckName(name)
		if !errors.Is(err, ErrBadName) {
			t.Errorf("CheckName(%q) = %v, want ErrBadName", name, err)
		}
	}
}
