package main

import (
	"errors"
	"fmt"

	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/lib/domain"
	"github.com/xstream/xstream/lib/restore"
	"github.com/xstream/xstream/lib/store"
)

type options struct {
	store, input, name string
	force, quiet       bool
}

type hintError struct {
	err  error
	hint string
}

func (h *hintError) Error() string { return h.err.Error() }
func (h *hintError) Unwrap() error { return h.err }
func (h *hintError) Hint() string  { return h.hint }

func run(opts options) error {
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
	prog := cmdutil.NewProgress("xrestore", opts.quiet)
	info, err := restore.Restore(in, st, restore.Options{
		Name:     opts.name,
		Replace:  opts.force,
		Progress: func(read int64) { prog.Update(read, 0, 0, "") },
	})
	switch {
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
