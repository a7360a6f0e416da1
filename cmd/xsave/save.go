package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/lib/compress"
	"github.com/xstream/xstream/lib/domain"
	"github.com/xstream/xstream/lib/rewrite"
	"github.com/xstream/xstream/lib/save"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/store"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xen"
)

type options struct {
	store, name, output, format, byteOrder, backend string
	compress                                        string
	level                                           int
	checksum, quiet, keep, verbose                  bool
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
	be, err := cmdutil.ChooseBackend(opts.backend, opts.verbose)
	if err != nil {
		return err
	}
	if be.Xen != nil {
		useXen, err := onXen(be, opts)
		if err != nil {
			return err
		}
		if useXen {
			return runXen(be.Xen, opts, codec, zopts)
		}
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
	var w io.Writer = out.Writer // the file itself: see below
	var zw *compress.Writer
	if codec != compress.None {
		if zw, err = compress.NewWriter(out, codec, zopts); err != nil {
			return err
		}
		defer zw.Close() // stops the workers, also after an error
		w = zw
	}
	// An Output, so that pages can move from a stored domain's memory
	// file into a pipe without a copy through this process.
	bw := stream.NewOutput(w, 1<<20)
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

// onXen tells whether the domain is to be saved from Xen: always with
// --backend xen; on a Xen host with auto, unless only the store has the
// name. Xen is asked (an xl look-up, dear under emulation) only when the
// store has it too.
func onXen(be cmdutil.Backend, opts options) (bool, error) {
	if !be.Auto || !store.Has(opts.store, opts.name) {
		return true, nil
	}
	_, err := be.Xen.Lookup(context.Background(), opts.name)
	if errors.Is(err, domain.ErrNotFound) {
		return false, nil
	}
	return true, err
}

// runXen saves a running Xen domain: xl's stream, verified record by
// record on its way, exactly as xl wrote it. The domain is destroyed
// (unless --keep) only once the whole stream is out and, for -o, synced.
func runXen(host *xen.Host, opts options, codec compress.Codec, zopts *compress.WriterOptions) error {
	if opts.format != string(save.FormatXL) {
		return cmdutil.Usagef("--format %s: a Xen domain is saved in the xl format, as xl writes it", opts.format)
	}
	if opts.byteOrder != "native" && opts.byteOrder != "little" && opts.byteOrder != "le" {
		return cmdutil.Usagef("--byte-order %s: a Xen domain is saved in Xen's byte order (little-endian)", opts.byteOrder)
	}
	// Refuse a terminal before the domain is touched.
	out, err := cmdutil.CreateOutput(opts.output)
	if err != nil {
		return err
	}
	defer out.Abort()
	if out.Discards() && !opts.keep {
		return cmdutil.Usagef("the output throws what it is given away: the stream would be lost and domain %s destroyed; give a file, or --keep to leave the domain running", opts.name)
	}
	ctx, stop := cmdutil.SignalContext()
	defer stop()
	// To a file, xl writes the file itself and we verify it once xl is
	// done: one copy of the stream instead of three through a pipe. Output that
	// is not the stream as xl writes it (compressed, checksummed) comes
	// through the pipe and our writer.
	direct := out.TempPath() != "" && codec == compress.None && !opts.checksum
	so := xen.SaveOptions{Keep: opts.keep}
	if direct {
		so.File = out.File()
	}
	sv, err := host.Save(ctx, opts.name, so)
	if err != nil {
		return fmt.Errorf("saving %s: %w", opts.name, err)
	}
	// A signal stops the reading: through a pipe, xl fails and resumes
	// the domain; to a file, xl finishes and Abort unpauses it.
	cancel := context.AfterFunc(ctx, func() { sv.Close() })
	defer cancel()

	prog := cmdutil.NewProgress("xsave", opts.quiet)
	in := &progressReader{r: sv, prog: prog}
	var w io.Writer = io.Discard // xl has written the file
	var bw *bufio.Writer
	var zw *compress.Writer
	flush := func() error { return nil }
	if !direct {
		var sink io.Writer = out
		if codec != compress.None {
			if zw, err = compress.NewWriter(out, codec, zopts); err != nil {
				return sv.Abort(err)
			}
			defer zw.Close() // stops the workers, also after an error
			sink = zw
		}
		// Small buffers: a page batch's body is read and written
		// whole, straight from and to the pipes, not copied through.
		bw = bufio.NewWriterSize(sink, 64<<10)
		w = bw
		flush = bw.Flush
	}
	// xl's own stream has no CHECKSUM records, and one would be a
	// stream that is not what xl writes.
	walk := &sniff.Options{Verify: true, NoChecksums: true}
	if direct {
		// xl writes the file; it is checked once xl is done, and only
		// checked, not copied: the pages, which the verifier does not
		// look at, are passed over, which takes milliseconds. Following
		// the file as it grew competed with xl for the CPU, and could
		// not stop xl early anyway.
		err = waitShowing(sv, out.File(), prog, opts.quiet)
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		if err == nil {
			walk.SkipPageData = true
			in.n, err = verifyFile(out.File(), walk)
		}
	} else if pipe := sv.Pipe(); pipe != nil && codec == compress.None && !opts.checksum {
		// The stream goes on as xl wrote it: only the records' headers
		// are read and checked, and the pages move from xl's pipe to
		// the output in the kernel (splice(2)).
		walk.SkipPageData = true
		var spliced int64
		o := stream.NewOutput(out.Writer, 256<<10)
		in.n, spliced, err = forwardStream(pipe, o, walk, prog)
		host.Tracef("stream forwarded, %d octets spliced", spliced)
		flush = o.Flush
	} else {
		_, err = rewrite.Copy(w, in, walk, &rewrite.Options{Checksum: opts.checksum})
	}
	host.Tracef("stream read and verified: %d octets (%v)", in.n, err)
	// The end of the stream (its last octets, still in our buffers) goes
	// out only once xl has succeeded: should xl fail after writing it
	// all, or a signal come, Abort resumes the domain, and a reader
	// must not have been given a whole stream to start a second copy.
	toStdout := opts.output == "" || opts.output == "-"
	if err == nil {
		err = sv.Wait()
	}
	if err == nil {
		err = flush()
	}
	if err == nil && zw != nil {
		err = zw.Close()
	}
	delivered := err == nil && toStdout // the whole stream is at its destination
	if err == nil {
		err = out.Commit()
		host.Tracef("output committed (%v)", err)
		var nd *cmdutil.NotDurableError
		delivered = delivered || err == nil || errors.As(err, &nd)
	}
	if err == nil && toStdout {
		// Synced if it is a file or a disk, and closed, so that a
		// reader (an xrestore on this host) sees its end while the
		// domain is destroyed.
		if err = cmdutil.SyncStdout(); err == nil {
			err = os.Stdout.Close()
		}
	}
	if err != nil && delivered && !opts.keep {
		// Past the point of no return: resumed, the domain would run
		// beside whatever its whole stream starts; destroyed, it
		// might be lost with a stream not safely stored.
		return fmt.Errorf("saving %s: %w; the whole stream is out, so domain %s is left paused: xl destroy it once the stream is safe, or xl unpause it", opts.name, err, opts.name)
	}
	if err != nil {
		err = sv.Abort(err)
		if ctx.Err() != nil {
			if errors.Is(err, xen.ErrNotRunning) {
				err = fmt.Errorf("interrupted: %w", err)
			} else {
				err = fmt.Errorf("interrupted; domain %s left running", opts.name)
			}
		}
		return fmt.Errorf("saving %s: %w", opts.name, err)
	}
	if err := sv.Commit(context.Background()); err != nil {
		return fmt.Errorf("saving %s: %w", opts.name, err)
	}
	what := "destroyed"
	if opts.keep {
		what = "left running"
	}
	summary := fmt.Sprintf("saved Xen domain %s, %s", opts.name, cmdutil.Size(in.n))
	if zw != nil {
		summary += fmt.Sprintf(", %s as %v", cmdutil.Size(zw.Written()), codec)
	}
	prog.Done(fmt.Sprintf("%s; the domain is %s", summary, what))
	return nil
}

// waitShowing waits for xl to finish writing the file, showing its size
// as it grows unless quiet.
func waitShowing(sv *xen.Saving, f *os.File, prog *cmdutil.Progress, quiet bool) error {
	if quiet {
		return sv.Wait()
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if fi, err := f.Stat(); err == nil {
					prog.Update(fi.Size(), 0, 0, "")
				}
			}
		}
	}()
	err := sv.Wait()
	close(stop)
	<-stopped
	return err
}

// verifyFile walks the stream in f, from its start, and returns its
// length.
func verifyFile(f *os.File, walk *sniff.Options) (int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return verifyStream(f, walk)
}

// verifyStream walks the stream r and returns its length.
func verifyStream(r io.Reader, walk *sniff.Options) (int64, error) {
	wk, err := sniff.NewWalker(r, walk)
	if err != nil {
		return 0, err
	}
	for {
		if _, err := wk.Next(); err != nil {
			if err == io.EOF {
				err = nil
			}
			return wk.Offset(), err
		}
	}
}

// forwardStream walks the stream r, checking it, and copies it to o
// (Walker.Forward); it returns the stream's length and how much of it
// was spliced.
func forwardStream(r io.Reader, o *stream.Output, walk *sniff.Options, prog *cmdutil.Progress) (n, spliced int64, err error) {
	wk, err := sniff.NewWalker(r, walk)
	if err != nil {
		return 0, 0, err
	}
	if err := wk.Forward(o); err != nil {
		return 0, 0, err
	}
	for {
		if _, err := wk.Next(); err != nil {
			if err == io.EOF {
				err = nil // the end stays in o until the caller's Flush
			}
			return wk.Offset(), wk.Spliced(), err
		}
		prog.Update(wk.Offset(), 0, 0, "")
	}
}

// progressReader counts what is read and reports it.
type progressReader struct {
	r    io.Reader
	n    int64
	prog *cmdutil.Progress
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	p.prog.Update(p.n, 0, 0, "")
	return n, err
}
