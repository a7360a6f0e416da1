package main

import (
	"bufio"
	"fmt"
	"io"

	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/lib/compress"
	"github.com/xstream/xstream/lib/save"
	"github.com/xstream/xstream/lib/store"
	"github.com/xstream/xstream/lib/stream"
)

type options struct {
	store, name, output, format, byteOrder string
	compress                               string
	level                                  int
	checksum, quiet                        bool
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
	codec, err := compress.ParseCodec(opts.compress)
	if err != nil {
		return cmdutil.Usagef("%v", err)
	}
	zopts := &compress.WriterOptions{Level: opts.level}
	if codec != compress.None {
		// Check the level before anything is opened.
		if _, err := compress.NewWriter(io.Discard, codec, &compress.WriterOptions{Level: opts.level, Concurrency: 1}); err != nil {
			return cmdutil.Usagef("%v", err)
		}
	} else if opts.level != 0 {
		return cmdutil.Usagef("--level needs --compress zstd or lz4")
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
	var w io.Writer = out
	var zw *compress.Writer
	if codec != compress.None {
		if zw, err = compress.NewWriter(out, codec, zopts); err != nil {
			return err
		}
		defer zw.Close() // stops the workers, also after an error
		w = zw
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	stats, err := save.Save(bw, src, save.Options{Format: f, Order: order, Checksum: opts.checksum, Progress: func(done, total uint64) {
		prog.Update(int64(done)*stream.PageSize, done, total, "pfns")
	}})
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err != nil {
		return fmt.Errorf("saving %s: %w", opts.name, err)
	}
	if err := out.Commit(); err != nil {
		return err
	}
	summary := fmt.Sprintf("saved %s: %d pages, %d records, %s", opts.name, stats.Pages, stats.Records, cmdutil.Size(stats.Bytes))
	if stats.Checksums > 0 {
		summary += fmt.Sprintf(", %d CHECKSUM records", stats.Checksums)
	}
	if zw != nil {
		summary += fmt.Sprintf(", %s as %v", cmdutil.Size(zw.Written()), codec)
	}
	prog.Done(summary)
	return nil
}
