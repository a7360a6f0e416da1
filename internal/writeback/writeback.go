// Package writeback has the kernel write a file out to its disk while the
// file is still being written. A saved domain is written once, start to
// end, and its pages are not read again: left to the kernel, gigabytes of
// them would sit dirty in the page cache until the kernel throttled every
// writer on the machine to flush them, or until the closing fsync wrote
// most of them at once. Written out as they come, they leave that fsync
// little to do: for a 1 GiB xsave -o on the build machine's disk it took
// 0.01-0.03 s instead of 0.56-0.58 s; the whole save, bound by the disk,
// took as long either way.
package writeback

import (
	"os"
	"sync"
	"time"
)

// Every is how much a followed file grows between two writebacks.
const Every = 32 << 20

// tick is how often a followed file's size is looked at.
const tick = 250 * time.Millisecond

// Follow starts f's writeback whenever f has grown by Every since the
// last one, however f is written (by this process, with splice(2), or by
// another process it was handed to), until stop is called. stop waits
// for the follower, so f may be closed once it returns. Only a regular
// file is followed.
func Follow(f *os.File) (stop func()) {
	return follow(f, tick, Every, func(f *os.File) { Start(f) })
}

func follow(f *os.File, tick time.Duration, every int64, start func(*os.File)) (stop func()) {
	if !followable(f) {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(tick)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			st, err := f.Stat()
			if err != nil {
				return // closed
			}
			if size := st.Size(); size-last >= every {
				start(f)
				last = size
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
		})
	}
}

// followable tells whether f is a file to follow: a regular one. A pipe,
// a socket or a device has no pages of its own to write out.
func followable(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode().IsRegular()
}
