package xen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

// A stream in a regular file that xl restore reads as it is needs no
// copy through a pipe: restoreFile verifies the whole file first, every
// record but without reading the pages (their batches' headers and pfns
// are checked; the pages themselves are opaque to the verifier unless
// CHECKSUM records cover them), and then lets xl restore read the file
// itself, as `xl restore FILE` does. Xen still sees only a verified
// stream, and on a failure before xl starts no domain is made at all.
//
// The file is taken as it is only when the re-framing for xl (xlWriter)
// would leave it unchanged: an xl header announcing libxl v2, all layers
// little-endian, no checkpoints, no CHECKSUM records, only the libxl
// records libxl reads, and a name that is free (or none given beside
// the config's). Anything else, and input that is not a regular file
// read from its start, goes through the pipe.
//
// The file must not change while it is restored: its size and
// modification time are checked before xl is started.

// errNotDirect says that restoreFile did not take the input: the caller
// restores it through the pipe, from its start.
var errNotDirect = errors.New("xen: not a file xl can read as it is")

// restoreFile restores from f directly, or returns errNotDirect (with f
// back at its start) when it cannot.
func (h *Host) restoreFile(ctx context.Context, f *os.File, opts RestoreOptions) (res Restored, err error) {
	if opts.Config != nil {
		return res, errNotDirect
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return res, errNotDirect
	}
	if off, err := f.Seek(0, io.SeekCurrent); err != nil || off != 0 {
		return res, errNotDirect
	}
	rewind := func() (Restored, error) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return Restored{}, err
		}
		h.Tracef("the file goes through the pipe")
		return Restored{}, errNotDirect
	}

	wk, err := sniff.NewWalker(f, &sniff.Options{Verify: true, SkipPageData: true, NoChecksums: true})
	if err != nil || wk.Info().Kind != sniff.XL {
		return rewind()
	}
	// The names, from xenstore (or xl list) beside the walk.
	type namesResult struct {
		names domainIDs
		err   error
	}
	namesc := make(chan namesResult, 1)
	go func() {
		n, err := h.names(ctx)
		namesc <- namesResult{n, err}
	}()
	names := func() (domainIDs, error) {
		r := <-namesc
		namesc <- r
		return r.names, r.err
	}
	defer func() { names() }() // no goroutine left behind

	var cfg Config
	for {
		it, err := wk.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, sniff.ErrChecksumRecord) {
			return rewind()
		}
		if err != nil {
			return res, err
		}
		ok, err := asXLReadsIt(it)
		if err != nil {
			return res, err
		}
		if !ok {
			return rewind()
		}
		switch it.Kind {
		case sniff.XLHeader:
			cfg = Config{Data: bytes.Clone(it.XL.Config), JSON: it.XL.MandatoryFlags&xl.FlagJSON != 0}
			if len(cfg.Data) == 0 {
				return res, ErrNeedConfig
			}
		case sniff.LibxcHeaders:
			res.Type = it.Domain.Type
		}
	}
	res.Bytes = wk.Offset()
	h.Tracef("file verified: %d octets", res.Bytes)
	name := cfg.Name()
	if name == "" && opts.Name == "" {
		return res, ErrNoName
	}
	if opts.Name != "" && opts.Name != name {
		return rewind()
	}
	taken, err := names()
	if err != nil || taken.has(name) {
		return rewind() // the pipe's way makes its own look-up
	}
	if now, err := f.Stat(); err != nil || now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime()) || res.Bytes != fi.Size() {
		return res, fmt.Errorf("xen: the input file changed while it was being verified")
	}

	rs, err := h.startRestoreFile(opts.Paused, f)
	if err != nil {
		return res, err
	}
	// Stopped half-way, xl leaves a half-built domain: kill it, and
	// abortRestore destroys the domain.
	stop := context.AfterFunc(ctx, rs.kill)
	defer stop()
	if err := rs.wait(0); err != nil {
		return res, h.abortRestore(ctx, rs, name, taken, err)
	}
	if opts.Progress != nil {
		opts.Progress(res.Bytes)
	}
	res.Name = name
	return res, nil
}

// asXLReadsIt tells whether xlWriter would pass the item on unchanged,
// and makes the checks it would make.
func asXLReadsIt(it *sniff.Item) (bool, error) {
	switch it.Kind {
	case sniff.XLHeader:
		return it.XL.Order == le && it.XL.StreamV2(), nil
	case sniff.LibxlHeader:
		return it.LibxlHdr.Options&libxl.OptionBigEndian == 0, nil
	case sniff.LibxcHeaders:
		return it.Image.Options&stream.OptionBigEndian == 0, nil
	case sniff.LibxcRecord:
		return it.Libxc.Type != stream.RecCheckpoint && !it.Libxc.Implied && it.Order == le, nil
	case sniff.LibxlRecord:
		switch it.Libxl.Type {
		case libxl.RecLibxcContext, libxl.RecEnd:
			return true, nil
		case libxl.RecEmulatorXenstoreData, libxl.RecEmulatorContext:
			if _, _, _, err := it.Libxl.Emulator(it.Order); err != nil {
				return false, it.Libxl.Error(err)
			}
			return it.Order == le, nil
		}
	}
	return false, nil
}

// startRestoreFile starts `xl restore` reading f (from its start: xl
// opens /proc/self/fd/3 anew).
func (h *Host) startRestoreFile(paused bool, f *os.File) (*restoring, error) {
	return h.startXLRestore(paused, f, " on the file")
}
