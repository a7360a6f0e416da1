package cmdutil

import (
	"os"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/xstream/xstream/lib/xen"
)

// Backend names for --backend.
const (
	BackendAuto  = "auto"  // Xen on a Xen control domain, else the store
	BackendXen   = "xen"   // the Xen host's toolstack
	BackendStore = "store" // the embedded store
)

// BackendFlag is the --backend flag of the commands that reach domains.
func BackendFlag() cli.Flag {
	return &cli.StringFlag{Name: "backend", Value: BackendAuto, EnvVars: []string{"XSTREAM_BACKEND"},
		Usage: "where domains live: `auto` (Xen when this is a Xen host: /proc/xen says control_d and xl is installed; else the store), xen or store"}
}

// VerboseFlag shows the toolstack's own messages.
func VerboseFlag() cli.Flag {
	return &cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "on a Xen host, run xl with -vvv and show its messages on stderr"}
}

// Backend is a resolved --backend choice.
type Backend struct {
	// Xen is the Xen host, or nil for the store alone.
	Xen *xen.Host
	// Auto is set when the choice was made by looking at the machine.
	Auto bool
}

// ChooseBackend resolves a --backend value.
func ChooseBackend(name string, verbose bool) (Backend, error) {
	var b Backend
	switch name {
	case BackendStore:
		return b, nil
	case BackendXen:
	case BackendAuto, "":
		if !xen.Available() {
			return b, nil
		}
		b.Auto = true
	default:
		return b, Usagef("--backend %q: want auto, xen or store", name)
	}
	h, err := xen.New()
	if err != nil {
		return b, err
	}
	h.Verbose = verbose
	if verbose {
		h.Log = os.Stderr
	}
	// XSTREAM_XEN_TRACE=1 times each step on stderr.
	if verbose || os.Getenv("XSTREAM_XEN_TRACE") != "" {
		h.Trace, h.Start = os.Stderr, time.Now()
	}
	// How long a restore waits for an older domain of its name to go
	// away, in seconds (default 30).
	if v := os.Getenv("XSTREAM_XEN_NAME_TIMEOUT"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs < 0 {
			return b, Usagef("XSTREAM_XEN_NAME_TIMEOUT=%q: want seconds", v)
		}
		h.NameTimeout = time.Duration(secs * float64(time.Second))
	}
	// XSTREAM_XENSTORE: xenstored's socket to read domain names from
	// ("none": ask xl list).
	switch v := os.Getenv("XSTREAM_XENSTORE"); v {
	case "":
	case "none":
		h.Xenstore = nil
	default:
		h.Xenstore = []string{v}
	}
	b.Xen = h
	return b, nil
}
