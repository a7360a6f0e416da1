package cmdutil

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
)

// The signals that end a command: Ctrl-C, kill, and the hang-up of an ssh
// session or terminal that went away; but not one the process was started
// with ignored (nohup, a background job of a script), which Notify would
// turn back on. Read once, before anything calls Notify.
var stopSignals = notIgnored(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)

func notIgnored(sigs ...os.Signal) []os.Signal {
	var out []os.Signal
	for _, s := range sigs {
		if !signal.Ignored(s) {
			out = append(out, s)
		}
	}
	return out
}

// sigs keeps what a signal must clean up. While an Output's temporary
// file exists, a signal removes it before the process exits, so that an
// interrupted `xstream-compress -o f` leaves neither f nor a
// half-written .f.tmp-*. While a SignalContext is in force its work
// stops itself (a Xen domain must be resumed first) and cleans up
// through its own error path.
var sigs struct {
	sync.Mutex
	temps     map[string]bool
	graceful  int
	watching  bool
	committed bool // an Output was renamed into place
}

// createRemovedOnSignal creates a temporary file (os.CreateTemp) that
// a signal removes until forget is called.
func createRemovedOnSignal(dir, pattern string) (*os.File, error) {
	sigs.Lock()
	defer sigs.Unlock()
	watchSignals()
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	if sigs.temps == nil {
		sigs.temps = map[string]bool{}
	}
	sigs.temps[f.Name()] = true
	return f, nil
}

// forget undoes createRemovedOnSignal; with the lock held until done is
// called, so that a signal waits for what done finishes (a rename).
func forget(path string) (done func()) {
	sigs.Lock()
	delete(sigs.temps, path)
	return sigs.Unlock
}

// watchSignals starts, once, the goroutine that cleans up on a signal.
// sigs must be locked.
func watchSignals() {
	if sigs.watching {
		return
	}
	sigs.watching = true
	if len(stopSignals) == 0 {
		return // Notify with none would take every signal
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, stopSignals...)
	go func() {
		for s := range c {
			sigs.Lock()
			if sigs.graceful > 0 {
				sigs.Unlock()
				continue
			}
			what := "nothing was written"
			if len(sigs.temps) == 0 && sigs.committed {
				// It came as the output was renamed into place.
				what = "the output was complete"
			}
			for p := range sigs.temps {
				os.Remove(p)
			}
			fmt.Fprintf(os.Stderr, "%s: %v; %s\n", filepath.Base(os.Args[0]), s, what)
			os.Exit(128 + int(s.(syscall.Signal)))
		}
	}()
}

// SignalContext returns a context cancelled by SIGINT, SIGTERM or
// SIGHUP, for work that must stop cleanly (a domain half-saved must be
// resumed). While it is in force the signals do not kill the process:
// call stop as soon as the work is done.
func SignalContext() (ctx context.Context, stop func()) {
	sigs.Lock()
	sigs.graceful++
	sigs.Unlock()
	var cancel context.CancelFunc
	if len(stopSignals) > 0 {
		ctx, cancel = signal.NotifyContext(context.Background(), stopSignals...)
	} else { // NotifyContext with none would take every signal
		ctx, cancel = context.WithCancel(context.Background())
	}
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			cancel()
			sigs.Lock()
			sigs.graceful--
			sigs.Unlock()
		})
	}
}
