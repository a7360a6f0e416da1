package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/lib/domain"
	"github.com/xstream/xstream/lib/legacy"
	"github.com/xstream/xstream/lib/restore"
	"github.com/xstream/xstream/lib/store"
	"github.com/xstream/xstream/lib/upgrade"
	"github.com/xstream/xstream/lib/xen"
)

type options struct {
	store, input, name, backend, config string
	force, quiet, storeOnly, paused     bool
	verbose                             bool
	width                               int
	guest                               legacy.Guest
}

type hintError struct {
	err  error
	hint string
}

func (h *hintError) Error() string { return h.err.Error() }
func (h *hintError) Unwrap() error { return h.err }
func (h *hintError) Hint() string  { return h.hint }

func run(opts options) error {
	backend := opts.backend
	if opts.storeOnly {
		backend = cmdutil.BackendStore
	}
	be, err := cmdutil.ChooseBackend(backend, opts.verbose)
	if err != nil {
		return err
	}
	if be.Xen != nil {
		return runXen(be.Xen, opts)
	}
	if opts.config != "" || opts.paused {
		return cmdutil.Usagef("--config and --paused are for restores into Xen")
	}
	if opts.name != "" {
		if err := store.CheckName(opts.name); err != nil {
			return cmdutil.Usagef("%v", err)
		}
	}
	st, err := store.Open(opts.store)
	if err != nil {
		return err
	}
	in, err := cmdutil.OpenInput(opts.input)
	if err != nil {
		return err
	}
	defer in.Close()
	// A signal stops the reading; the half-built domain is removed.
	ctx, stop := cmdutil.SignalContext()
	defer stop()
	in, release := cmdutil.Interruptible(ctx, in)
	defer release()
	prog := cmdutil.NewProgress("xrestore", opts.quiet)
	up := upgrader{opts: opts}
	info, err := restore.Restore(in, st, restore.Options{
		Name:     opts.name,
		Replace:  opts.force,
		Progress: func(read int64) { prog.Update(read, 0, 0, "") },
		Filter:   up.filter,
	})
	err = up.close(err)
	switch {
	case err != nil && ctx.Err() != nil:
		return errors.New("interrupted; no domain was restored")
	case errors.Is(err, store.ErrBadName):
		// The name in the stream's config: the command line can give
		// another.
		return &hintError{&cmdutil.UsageError{Err: err}, "give the domain a name with --name NAME"}
	case errors.Is(err, restore.ErrNoName):
		return &cmdutil.UsageError{Err: err}
	case errors.Is(err, domain.ErrExists):
		return &hintError{err, "add --force to replace it, or --name to restore under another name"}
	case err != nil:
		return err
	}
	prog.Done(fmt.Sprintf("restored %s", restore.Describe(info)))
	return nil
}

// upgrader upgrades a legacy stream on the fly, to libxl framing so that
// its device model state and libxl's xenstore data come along (other
// toolstacks' data, which no libxl restorer can use, is dropped, as Xen's
// converter drops it for the libxc format). The store and Xen restores
// share it.
type upgrader struct {
	opts options
	up   *upgrade.Reader
}

func (u *upgrader) filter(r io.Reader) (io.Reader, error) {
	up, uinfo, err := upgrade.Open(r, &upgrade.Options{LegacyOnly: true, Format: upgrade.FormatLibxl, LenientToolstack: true, Width: u.opts.width, Guest: u.opts.guest})
	if err != nil {
		return nil, err
	}
	u.up = up
	if uinfo.Legacy && !u.opts.quiet {
		fmt.Fprintf(os.Stderr, "xrestore: %v\n", uinfo)
	}
	return up, nil
}

// close ends the upgrade and returns the error to report: the
// conversion's, which names the legacy input's offset, before the
// restore's, which names only the upgraded stream's.
func (u *upgrader) close(err error) error {
	if u.up != nil {
		u.up.Close()
		if uerr := u.up.Err(); uerr != nil {
			return uerr
		}
	}
	return err
}

// runXen restores into the Xen host through xl restore.
func runXen(host *xen.Host, opts options) error {
	var cfg *xen.Config
	if opts.config != "" {
		b, err := os.ReadFile(opts.config)
		if err != nil {
			return err
		}
		c := xen.TextConfig(b)
		if bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
			c.JSON = true // libxl's JSON, as xl save writes it
		}
		cfg = &c
	}
	in, err := cmdutil.OpenInput(opts.input)
	if err != nil {
		return err
	}
	defer in.Close()
	ctx, stop := cmdutil.SignalContext()
	defer stop()
	in, release := cmdutil.Interruptible(ctx, in) // Ctrl-C while upstream stalls
	defer release()
	prog := cmdutil.NewProgress("xrestore", opts.quiet)
	up := upgrader{opts: opts}
	fi, err := in.Stat()
	replayable := err == nil && fi.Mode().IsRegular()
	res, err := host.Restore(ctx, in, xen.RestoreOptions{
		Name:       opts.name,
		Config:     cfg,
		Paused:     opts.paused,
		Replace:    opts.force,
		Replayable: replayable,
		Progress:   func(read int64) { prog.Update(read, 0, 0, "") },
		Filter:     up.filter,
	})
	err = up.close(err)
	switch {
	case err != nil && ctx.Err() != nil && errors.Is(err, xen.ErrDomainLeft):
		return fmt.Errorf("interrupted: %w", err)
	case err != nil && ctx.Err() != nil:
		return errors.New("interrupted; no domain was restored")
	case errors.Is(err, xen.ErrNeedConfig):
		return &hintError{&cmdutil.UsageError{Err: err}, "add --config FILE (the domain's xl config), or restore with --store-only"}
	case errors.Is(err, xen.ErrNoName):
		return &cmdutil.UsageError{Err: err}
	case errors.Is(err, xen.ErrDomainLeft):
		return &hintError{err, "once the old domain is gone, xl rename the paused one to its name and xl unpause it (or xl destroy it)"}
	case errors.Is(err, xen.ErrExists):
		return &hintError{err, "add --force to replace it, or --name to restore under another name"}
	case err != nil:
		return err
	}
	state := "running"
	if opts.paused {
		state = "paused"
	}
	prog.Done(fmt.Sprintf("restored %s into Xen: %v, %s (%s read)", res.Name, res.Type, state, cmdutil.Size(res.Bytes)))
	return nil
}
