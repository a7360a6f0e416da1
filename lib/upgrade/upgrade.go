// Package upgrade turns any migration stream xstream reads into a libxc
// stream version 3: a legacy stream (lib/legacy) is converted, octet for
// octet as Xen's convert-legacy-stream writes it; a version 2 stream is
// rewritten as version 3; a version 3 stream passes unchanged.
//
// Upgrade converts from a reader to a writer and is synchronous. Open
// returns a reader of the converted stream, for tools (xstream-cat,
// xrestore) that read rather than write: it converts in one goroutine
// behind an io.Pipe, which Close stops.
//
// Memory is bounded by a page batch (4 MiB) whatever the stream's size.
package upgrade

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/xstream/xstream/lib/legacy"
	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

// Format is the framing of the upgraded stream (Xen's converter's -f).
type Format int

// Output framings.
const (
	// FormatLibxc writes a bare libxc stream, with a legacy qemu tail
	// copied after it as it was.
	FormatLibxc Format = iota
	// FormatLibxl wraps the libxc stream in a libxl v2 stream, the qemu
	// tail in an EMULATOR_CONTEXT record and libxl's toolstack chunk in an
	// EMULATOR_XENSTORE_DATA record.
	FormatLibxl
)

func (f Format) String() string {
	if f == FormatLibxl {
		return "libxl"
	}
	return "libxc"
}

// ParseFormat parses "libxc" or "libxl".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "libxc":
		return FormatLibxc, nil
	case "libxl":
		return FormatLibxl, nil
	}
	return 0, fmt.Errorf("format %q: want libxc or libxl", s)
}

// Options tune an upgrade. The zero value converts legacy input to a bare
// libxc stream, detecting everything.
type Options struct {
	// Format is the output framing for legacy input. Streams that are
	// already v2/v3 keep their framing.
	Format Format
	// Width and Guest override detection (Xen's converter's -w and -g);
	// a value the stream contradicts is refused.
	Width int
	Guest legacy.Guest
	// XL says an xl header is in front (Xen's converter's -x); one is
	// recognised by its magic without it.
	XL bool
	// SkipQemu drops a legacy HVM stream's qemu tail from bare libxc
	// output (Xen's converter's --skip-qemu). A stream without a tail
	// needs no option. libxl output keeps the tail, as Xen's converter's
	// does; with SkipQemu, a tail whose signature Xen's converter does not
	// know is dropped there too.
	SkipQemu bool
	// LegacyOnly upgrades legacy input only and returns anything else
	// unchanged and unjudged, v2 included: for tools that show or verify
	// a stream as it is unless it is legacy.
	LegacyOnly bool
	// LenientToolstack, with FormatLibxl, drops a legacy toolstack chunk
	// that is not libxl's (Xen's converter fails on it) rather than
	// failing: for restoring, where the libxc format would drop it too.
	LenientToolstack bool
}

// Info says what the input was and what became of it.
type Info struct {
	Input   sniff.Info // what the first octets are (Legacy for legacy input)
	XL      bool       // an xl header is in front
	Payload sniff.Kind // what follows the xl header, if there is one

	// Legacy input.
	Legacy     bool
	Layout     legacy.Layout
	Format     Format // the output framing
	GuestWidth int    // a PV guest's word size in octets, once read (Open: after the stream)

	// Version 2 and 3 input.
	Version   uint32 // libxc image version
	Rewritten bool   // version 2 rewritten as version 3
	Unchanged bool   // copied as it is
}

// String describes the input and what happened to it, for a line on
// stderr.
func (i Info) String() string {
	framing := ""
	if i.XL {
		framing = " behind an xl header"
	}
	switch {
	case i.Legacy:
		return fmt.Sprintf("legacy stream%s (%v), upgraded to %v v3", framing, i.Layout, i.Format)
	case i.Rewritten:
		return fmt.Sprintf("%v stream%s with libxc v%d: rewritten as v3", i.payload(), framing, i.Version)
	case i.Version != 0:
		return fmt.Sprintf("%v stream%s with libxc v%d: passed through unchanged", i.payload(), framing, i.Version)
	}
	return fmt.Sprintf("%v input%s: passed through unchanged", i.Input.Kind, framing)
}

func (i Info) payload() sniff.Kind {
	if i.XL {
		return i.Payload
	}
	return i.Input.Kind
}

type mode int

const (
	modeUnchanged    mode = iota // copy the input
	modeLegacy                   // convert a legacy stream
	modeLibxcV2                  // rewrite a bare libxc v2 stream as v3
	modeLibxlRewrite             // rewrite a libxl stream's libxc part as v3
)

// job is an upgrade whose input has been identified.
type job struct {
	opts  Options
	src   *stream.Source
	info  Info
	mode  mode
	xlHdr *xl.Header // consumed from src; written in front of the output
	lr    *legacy.Reader
}

// prepare identifies the input and, for legacy input, settles the layout,
// reading no further than it must.
func prepare(r io.Reader, opts *Options) (*job, error) {
	j := &job{}
	if opts != nil {
		j.opts = *opts
	}
	info, src, err := sniff.Detect(r)
	if err != nil {
		return nil, err
	}
	j.src, j.info.Input, j.info.Payload = src, info, info.Kind
	kind := info.Kind
	if kind == sniff.XL {
		h, err := xl.Read(src, 0)
		if err != nil {
			return nil, err
		}
		j.xlHdr, j.info.XL = h, true
		kind = sniff.IdentifyNext(src).Kind
		j.info.Payload = kind
		if h.StreamV2() && kind != sniff.Libxl && !j.opts.LegacyOnly {
			return nil, &stream.FormatError{Layer: "xl", Offset: src.Offset(), Index: -1, Type: "payload",
				Err: stream.Corrupt("the xl header announces a libxl v2 stream, but what follows looks like %v input", kind)}
		}
		if !h.StreamV2() && kind == sniff.Libxl && !j.opts.LegacyOnly {
			return nil, &stream.FormatError{Layer: "xl", Offset: src.Offset(), Index: -1, Type: "payload",
				Err: stream.Corrupt("a libxl v2 stream follows an xl header without the STREAMV2 flag")}
		}
	} else if j.opts.XL && (kind == sniff.Legacy || !j.opts.LegacyOnly) {
		return nil, &stream.FormatError{Layer: "xl", Offset: 0, Index: -1, Type: "header",
			Err: &hinted{stream.Corrupt("no xl save-file header (-x says there is one)"), "leave -x out: an xl header is recognised by its magic"}}
	}

	switch kind {
	case sniff.Legacy:
		j.mode, j.info.Legacy, j.info.Format = modeLegacy, true, j.opts.Format
		j.lr = legacy.NewReader(src, &legacy.Options{
			Width:            j.opts.Width,
			Guest:            j.opts.Guest,
			Toolstack:        j.opts.Format == FormatLibxl,
			ToolstackLenient: j.opts.LenientToolstack,
			StreamPages:      true,
		})
		l, err := j.lr.Detect()
		if err != nil {
			return nil, err
		}
		j.info.Layout = l
		return j, nil
	case sniff.Libxc:
		j.info.Version = versionAt(src, 12)
		if j.info.Version == stream.Version2 && !j.opts.LegacyOnly {
			j.mode, j.info.Rewritten = modeLibxcV2, true
			return j, nil
		}
	case sniff.Libxl:
		// A libxl stream's first record is LIBXC_CONTEXT; if the libxc
		// stream it starts is v3, the whole stream passes unchanged.
		b, _ := src.Peek(libxl.HeaderSize + 8 + stream.ImageHeaderSize)
		var order binary.ByteOrder = binary.LittleEndian
		if len(b) >= libxl.HeaderSize && binary.BigEndian.Uint32(b[12:])&libxl.OptionBigEndian != 0 {
			order = binary.BigEndian
		}
		if len(b) >= libxl.HeaderSize+8+stream.ImageHeaderSize &&
			libxl.RecordType(order.Uint32(b[16:])) == libxl.RecLibxcContext && order.Uint32(b[20:]) == 0 {
			j.info.Version = versionAt(src, libxl.HeaderSize+8+12)
		}
		if j.info.Version != stream.Version3 && !j.opts.LegacyOnly {
			j.mode, j.info.Rewritten = modeLibxlRewrite, true
			return j, nil
		}
	default:
		if !j.opts.LegacyOnly {
			return nil, notStream(kind, j.xlHdr != nil, src)
		}
	}
	j.info.Unchanged = true
	return j, nil
}

// versionAt peeks the libxc image version at offset off, 0 if unknown.
func versionAt(src *stream.Source, off int) uint32 {
	b, _ := src.Peek(off + 4)
	if len(b) < off+4 {
		return 0
	}
	return binary.BigEndian.Uint32(b[off:])
}

// notStream is the error for input of kind k where src is: after an xl
// header if afterXL.
func notStream(k sniff.Kind, afterXL bool, src *stream.Source) error {
	var err error
	switch k {
	case sniff.Empty:
		err = fmt.Errorf("empty input: %w", io.ErrUnexpectedEOF)
	case sniff.Zstd, sniff.LZ4, sniff.Gzip, sniff.Xz, sniff.Bzip2, sniff.LZ4Legacy:
		err = &hinted{stream.Unsupported("%v-compressed input", k), "decompress it first"}
	default:
		err = stream.Corrupt("not a migration stream (%v input)", k)
	}
	if afterXL {
		if b, _ := src.Peek(8); len(b) < 8 {
			err = fmt.Errorf("too little follows the xl header to be a stream: %w", io.ErrUnexpectedEOF)
		}
		return &stream.FormatError{Layer: "xl", Offset: src.Offset(), Index: -1, Type: "payload", Err: err}
	}
	return &stream.FormatError{Offset: 0, Index: -1, Type: "input", Err: err}
}

type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }
func (h *hinted) Hint() string  { return h.hint }

// Upgrade reads the stream in r and writes it upgraded to w.
func Upgrade(w io.Writer, r io.Reader, opts *Options) (Info, error) {
	j, err := prepare(r, opts)
	if err != nil {
		return Info{}, err
	}
	out := stream.NewOutput(w, 256<<10)
	err = j.run(out)
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	return j.result(), err
}

// result returns the Info, with what was learnt while converting.
func (j *job) result() Info {
	if j.lr != nil {
		j.info.GuestWidth = j.lr.GuestWidth()
	}
	return j.info
}

// run writes the upgraded stream to w (a *stream.Output: headers and
// records are written in small pieces, page data moved in large ones).
func (j *job) run(w io.Writer) error {
	if j.xlHdr != nil {
		h := *j.xlHdr
		if j.mode == modeLegacy && j.opts.Format == FormatLibxl {
			h.MandatoryFlags |= xl.FlagStreamV2
		}
		b, err := h.AppendBinary(nil)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	switch j.mode {
	case modeLegacy:
		return j.legacy(w)
	case modeLibxcV2:
		if err := rewriteLibxc(w, j.src); err != nil {
			return err
		}
	case modeLibxlRewrite:
		if err := rewriteLibxl(w, j.src); err != nil {
			return err
		}
	}
	return copyAll(w, j.src)
}

// copyAll copies the rest of src to w.
func copyAll(w io.Writer, src *stream.Source) error {
	_, err := src.CopyN(w, -1)
	return err
}

// legacy converts a legacy stream, as Xen's converter does: libxl header
// and LIBXC_CONTEXT (libxl output), the libxc records, then libxl's
// EMULATOR_XENSTORE_DATA, the qemu tail (in EMULATOR_CONTEXT for libxl
// output, as it was for libxc output) and libxl's END.
func (j *job) legacy(w io.Writer) error {
	lr := j.lr
	toLibxl := j.opts.Format == FormatLibxl
	var lw *libxl.Writer
	if toLibxl {
		var err error
		if lw, err = libxl.NewWriter(w, libxl.Header{Options: libxl.OptionLegacy}); err != nil {
			return err
		}
		if err := lw.WriteRecord(libxl.RecLibxcContext); err != nil {
			return err
		}
	}
	sw := stream.NewWriter(w)
	ih, dh, err := lr.Headers()
	if err != nil {
		return err
	}
	if err := sw.WriteHeaders(ih, dh); err != nil {
		return err
	}
	for {
		rec, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if n := lr.DataLen(); n > 0 {
			// The page data follows the pfn words straight from the
			// input (Options.StreamPages).
			err = sw.WriteRecordFrom(rec.Type, rec.Body, n, lr)
		} else {
			err = sw.WriteRecord(rec.Type, rec.Body)
		}
		if err != nil {
			return err
		}
	}
	if kv := lr.EmulatorXenstore(); toLibxl && len(kv) > 0 {
		if err := lw.WriteEmulator(libxl.RecEmulatorXenstoreData, libxl.EmulatorUnknown, 0, kv); err != nil {
			return err
		}
	}
	tail, err := lr.Tail()
	if err != nil {
		return err
	}
	if tail != nil {
		unknown := &stream.FormatError{Layer: "legacy", Offset: tail.Offset, Index: -1, Type: "qemu tail",
			Err: &hinted{stream.Unsupported("qemu tail signature %q: only %q is supported", tail.Signature, legacy.QemuSignature),
				"--skip-qemu drops the tail"}}
		switch {
		case !tail.Supported() && j.opts.SkipQemu:
			// dropped; End skips it
		case !tail.Supported():
			return unknown
		case toLibxl:
			var h [8]byte // emulator id (unknown) and index, little-endian zeros
			if err := lw.WriteRecordFrom(libxl.RecEmulatorContext, h[:], tail.Size, tail); err != nil {
				return err
			}
		case !j.opts.SkipQemu:
			if _, err := w.Write(tail.Header); err != nil {
				return err
			}
			if _, err := io.CopyN(w, tail, tail.Size); err != nil {
				return err
			}
		}
	}
	if err := lr.End(); err != nil {
		return err
	}
	if toLibxl {
		return lw.WriteRecord(libxl.RecEnd)
	}
	return nil
}

// rewriteLibxc copies a libxc v2 stream as v3, up to its END.
func rewriteLibxc(w io.Writer, src *stream.Source) error {
	rd := stream.NewReader(src, nil)
	sw, err := startV3(w, rd)
	if err != nil {
		return err
	}
	return copyRecords(sw, rd)
}

func startV3(w io.Writer, rd *stream.Reader) (*stream.Writer, error) {
	ih, dh, err := rd.Headers()
	if err != nil {
		return nil, err
	}
	ih.Version = stream.Version3
	sw := stream.NewWriter(w)
	return sw, sw.WriteHeaders(ih, dh)
}

// copyRecords copies records up to END or CHECKPOINT.
func copyRecords(sw *stream.Writer, rd *stream.Reader) error {
	for {
		rec, err := rd.Next()
		if err != nil {
			return err
		}
		if err := sw.Copy(rec); err != nil {
			return err
		}
		if rec.Type == stream.RecEnd || rec.Type == stream.RecCheckpoint {
			return nil
		}
	}
}

// rewriteLibxl copies a libxl stream whose libxc part is v2, rewriting
// that part as v3, up to the libxl END.
func rewriteLibxl(w io.Writer, src *stream.Source) error {
	lx := libxl.NewReader(src, 0)
	h, err := lx.Header()
	if err != nil {
		return err
	}
	lw, err := libxl.NewWriter(w, h)
	if err != nil {
		return err
	}
	var (
		rd *stream.Reader
		sw *stream.Writer
	)
	for {
		rec, err := lx.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := lw.WriteRecord(rec.Type, rec.Body); err != nil {
			return err
		}
		switch rec.Type {
		case libxl.RecLibxcContext:
			if rd != nil {
				return rec.Error(stream.Corrupt("second LIBXC_CONTEXT record"))
			}
			rd = lx.Libxc(nil)
			if sw, err = startV3(w, rd); err != nil {
				return err
			}
			if err := copyRecords(sw, rd); err != nil {
				return err
			}
		case libxl.RecCheckpointEnd:
			if rd == nil {
				return rec.Error(stream.Corrupt("CHECKPOINT_END before LIBXC_CONTEXT"))
			}
			if err := copyRecords(sw, rd); err != nil {
				return err
			}
		}
	}
}

// Reader reads an upgraded stream; see Open.
type Reader struct {
	r    io.Reader
	src  *stream.Source // the input, when it passes unchanged
	pr   *io.PipeReader
	done chan struct{}
	mu   sync.Mutex
	err  error // the conversion's error, set before the pipe closes
}

// Open returns a reader of the stream in r upgraded to v3 (or, with
// LegacyOnly, of r as it is unless it is legacy), and what the input is.
// Detection happens before Open returns, so its errors (a layout that
// needs -w or -g, say) come from Open itself; conversion errors come from
// Read, and Err tells them apart from a consumer's own. Close the Reader
// when done: it stops the conversion.
func Open(r io.Reader, opts *Options) (*Reader, Info, error) {
	j, err := prepare(r, opts)
	if err != nil {
		return nil, Info{}, err
	}
	if j.mode == modeUnchanged {
		if j.xlHdr != nil {
			b, err := j.xlHdr.AppendBinary(nil)
			if err != nil {
				return nil, Info{}, err
			}
			j.src.Unread(b)
		}
		// The Source itself, so that readers of it share its buffer and
		// its file (to seek or splice).
		return &Reader{r: j.src, src: j.src}, j.info, nil
	}
	pr, pw := io.Pipe()
	u := &Reader{r: pr, pr: pr, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		out := stream.NewOutput(pw, 256<<10)
		err := j.run(out)
		if err == nil {
			err = out.Flush()
		}
		if err != nil {
			u.mu.Lock()
			u.err = err
			u.mu.Unlock()
			pw.CloseWithError(err)
			return
		}
		pw.Close()
	}()
	return u, j.info, nil
}

// Source returns the input itself when it passes unchanged (nil when it
// is converted), so that stream readers share its buffer and file.
func (u *Reader) Source() *stream.Source { return u.src }

// Read reads the upgraded stream.
func (u *Reader) Read(p []byte) (int, error) { return u.r.Read(p) }

// Err returns the error that stopped the conversion, if one did. A
// consumer that fails should prefer it to its own: the conversion's error
// names the legacy input's offset, the consumer's only the upgraded
// stream's.
func (u *Reader) Err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if errors.Is(u.err, io.ErrClosedPipe) {
		return nil
	}
	return u.err
}

// Close stops the conversion and waits for its goroutine.
func (u *Reader) Close() error {
	if u.pr == nil {
		return nil
	}
	u.pr.CloseWithError(io.ErrClosedPipe)
	<-u.done
	return nil
}
