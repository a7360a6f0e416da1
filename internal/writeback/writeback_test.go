package writeback

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond for up to two seconds.
func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// A followed file is written out each time it has grown by every, and
// not before; stop ends the following.
func TestFollow(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var starts atomic.Int32
	const tick = 2 * time.Millisecond
	stop := follow(f, tick, 1000, func(*os.File) { starts.Add(1) })
	write := func(n int) {
		if _, err := f.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	size := 0
	for _, step := range []struct{ write, want int }{
		{999, 0},  // not yet grown by every
		{1, 1},    // grown by every
		{500, 1},  // not again
		{2000, 2}, // again, once
	} {
		write(step.write)
		size += step.write
		waitFor(func() bool { return starts.Load() == int32(step.want) })
		time.Sleep(20 * tick) // and no more
		if n := starts.Load(); n != int32(step.want) {
			t.Fatalf("%d writebacks after %d octets, want %d", n, size, step.want)
		}
	}
	stop()
	write(5000)
	time.Sleep(20 * tick)
	if n := starts.Load(); n != 2 {
		t.Fatalf("%d writebacks after stop, want 2", n)
	}
	stop() // a second stop is harmless
}

// Only a regular file is followed: not a pipe, nor a device.
func TestFollowable(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, c := range []struct {
		f    *os.File
		want bool
	}{{f, true}, {w, false}, {null, false}} {
		if got := followable(c.f); got != c.want {
			t.Errorf("followable(%s) = %v", c.f.Name(), got)
		}
	}
}

// The follower stops by itself when its file is closed under it.
func TestFollowClosed(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	stop := follow(f, time.Millisecond, 1, func(*os.File) {})
	f.Close()
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("stop did not return")
	}
}
