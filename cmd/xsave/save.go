package main

import (
	"bufio"
	"fmt"

	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/lib/save"
	"github.com/xstream/xstream/lib/store"
	"github.com/xstream/xstream/lib/stream"
)

type options struct {
	store, name, output, format, byteOrder string
	quiet                                  bool
}

func run(opts options) error {
	f, err := save.ParseFormat(opts.format)
	if err != nil {
		return cmdutil.Usagef("%v", err)
	}
	order, err := cmdutil.ParseByteOrder(opts.byteOrder)
	if err != nil {
		return err
	}
	st, err := store.Open(opts.store)
	if err != nil {
		return err
	}
	src, err := st.Open(opts.name)
	if err != nil {
		return err
	}
	defer src.Close()
	out, err := cmdutil.CreateOutput(opts.output)
	if err != nil {
		return err
	}
	defer out.Abort()
	prog := cmdutil.NewProgress("xsave", opts.quiet)
	bw := bufio.NewWriterSize(out, 1<<20)
	stats, err := save.Save(bw, src, save.Options{Format: f, Order: order, Progress: func(done, total uint64) {
		prog.Update(int64(done)*stream.PageSize, done, total, "pfns")
	}})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("saving %s: %w", opts.name, err)
	}
	if err := out.Commit(); err != nil {
		return err
	}
	prog.Done(fmt.Sprintf("saved %s: %d pages, %d records, %s", opts.name, stats.Pages, stats.Records, cmdutil.Size(stats.Bytes)))
	return nil
}
