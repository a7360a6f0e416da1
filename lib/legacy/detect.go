package legacy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

// ProbeWindow is how much of the stream detection reads ahead (without
// consuming it) to confirm a layout.
const ProbeWindow = 256 << 10

// Detect reads the xl header, if there is one, and finds the toolstack
// width and the guest type, or checks those given in Options.
//
// Nothing in a legacy stream says which it is, so Detect reads the
// stream ahead (ProbeWindow octets, or all of a shorter stream) in each of
// the four layouts (32- or 64-bit toolstack, PV or HVM guest), with every
// check the Reader makes: the p2m size, the extended-info marker and
// blocks of a PV stream, the chunk markers, the pfn entries (type, range,
// the upper half of a 64-bit entry), the tail. A wrong layout fails
// within the first few octets of real streams. The stream's layout is the
// one that reads without error:
//
//   - exactly one: that is the layout (an option that names another is
//     refused, with the error it leads to and a hint);
//   - more than one: Detect returns an error wrapping ErrUndetermined
//     rather than guess, and the user must say (Options.Width, Guest);
//   - none: the stream is corrupt or truncated, and the error is that of
//     the layout its first octets suggest (the libxc spec's hint: a
//     64-bit p2m size has a zero upper half, a PV stream's extended-info
//     marker is all ones).
func (r *Reader) Detect() (Layout, error) {
	if r.state != stDetect || r.err != nil {
		return r.layout, r.err
	}
	l, err := r.detect()
	if err != nil {
		r.err = err
		return l, err
	}
	r.layout = l
	r.ulong = l.Width / 8
	r.state = stP2MSize
	return l, nil
}

func (r *Reader) detect() (Layout, error) {
	if err := r.checkOptions(); err != nil {
		return Layout{}, err
	}
	if err := r.readXL(); err != nil {
		return Layout{}, err
	}
	r.start = r.src.Offset()
	b, err := r.src.Peek(ProbeWindow)
	eof := err == io.EOF
	if err != nil && !eof && err != bufio.ErrBufferFull {
		return Layout{}, &stream.FormatError{Layer: "legacy", Offset: r.start, Index: -1, Type: "stream", Err: err}
	}
	if len(b) == 0 {
		return Layout{}, part{off: r.start, index: -1, name: "p2m size"}.errorf(truncated{})
	}
	if len(b) >= 12 && bytes.Equal(b[:12], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'X', 'E', 'N', 'F'}) {
		return Layout{}, &stream.FormatError{Layer: "legacy", Offset: r.start, Index: -1, Type: "stream",
			Err: fmt.Errorf("%w: a libxc migration stream v2/v3 follows", ErrNotLegacy)}
	}

	var outs []outcome
	for _, l := range candidates(b) {
		outs = append(outs, r.try(l, b, eof))
	}
	allowed := func(l Layout) bool {
		return (r.opts.Width == 0 || r.opts.Width == l.Width) && (r.opts.Guest == GuestAuto || r.opts.Guest == l.Guest)
	}
	var fits, fitsAny, truncs, fails []outcome
	for _, o := range outs {
		ok := o.err == nil || o.open
		if ok {
			fitsAny = append(fitsAny, o)
		}
		if !allowed(o.layout) {
			continue
		}
		switch {
		case ok:
			fits = append(fits, o)
		case o.truncated:
			truncs = append(truncs, o)
		default:
			fails = append(fails, o)
		}
	}
	mark := func(l Layout) Layout {
		l.WidthGiven, l.GuestGiven = r.opts.Width != 0, r.opts.Guest != GuestAuto
		return l
	}
	switch {
	case len(fits) == 1:
		return mark(fits[0].layout), nil
	case len(fits) > 1:
		var names []string
		for _, o := range fits {
			names = append(names, o.layout.short())
		}
		how := fmt.Sprintf("the first %d octets", len(b))
		if eof {
			how = "the whole stream"
		}
		return Layout{}, &stream.FormatError{Layer: "legacy", Offset: r.start, Index: -1, Type: "stream",
			Err: withHint(fmt.Errorf("%w: %s read without error as %s", ErrUndetermined, how, joinOr(names)),
				"say which with -w 32|64 and -g pv|hvm")}
	case len(truncs) > 0:
		return Layout{}, truncs[0].err
	}
	// Nothing allowed reads. If the options excluded a layout that reads,
	// report the error of the allowed layout nearest to it (-g hvm on a
	// 32-bit PV stream: the 32-bit HVM reading) and say what reads;
	// otherwise the error of the layout the first octets suggest.
	if len(fitsAny) > 0 {
		alt := fitsAny[0].layout
		best := fails[0]
		for _, o := range fails {
			if o.layout.distance(alt) < best.layout.distance(alt) {
				best = o
			}
		}
		return Layout{}, withHint(best.err, "the stream reads as a %s stream: try -w %d -g %s, or leave -w and -g out",
			alt.short(), alt.Width, lower(alt.Guest))
	}
	err = fails[0].err
	if fe := (*stream.FormatError)(nil); errors.As(err, &fe) && fe.Offset == r.start && len(fails) == len(outs) {
		err = withHint(err, "no reading of it makes sense: is it a Xen save stream at all?")
	}
	return Layout{}, err
}

// distance counts the fields in which two layouts differ.
func (l Layout) distance(m Layout) int {
	d := 0
	if l.Width != m.Width {
		d++
	}
	if l.Guest != m.Guest {
		d++
	}
	return d
}

// checkOptions validates the options.
func (r *Reader) checkOptions() error {
	if w := r.opts.Width; w != 0 && w != 32 && w != 64 {
		return fmt.Errorf("legacy: toolstack width %d, want 32 or 64", w)
	}
	if g := r.opts.Guest; g != GuestAuto && g != GuestPV && g != GuestHVM {
		return fmt.Errorf("legacy: unknown guest type %d", g)
	}
	return nil
}

// readXL reads an xl header in front of the stream.
func (r *Reader) readXL() error {
	off := r.src.Offset()
	b, err := r.src.Peek(len(xl.Magic))
	if len(b) < len(xl.Magic) && xl.HasMagic(b) && err == io.EOF {
		return &stream.FormatError{Layer: "xl", Offset: off, Index: -1, Type: "header",
			Err: truncated{have: int64(len(b)), want: xl.FixedSize}}
	}
	if len(b) < len(xl.Magic) || !xl.HasMagic(b) {
		if r.opts.XL {
			return &stream.FormatError{Layer: "xl", Offset: off, Index: -1, Type: "header",
				Err: withHint(stream.Corrupt("no xl save-file header (-x says there is one)"), "leave -x out: an xl header is recognised by its magic")}
		}
		return nil
	}
	h, err := xl.Read(r.src, off)
	if err != nil {
		return err
	}
	if h.StreamV2() {
		return &stream.FormatError{Layer: "xl", Offset: off, Index: -1, Type: "header",
			Err: fmt.Errorf("%w: the xl header announces a libxl v2 stream", ErrNotLegacy)}
	}
	r.xlHdr = h
	return nil
}

// outcome is how a stream reads in one layout.
type outcome struct {
	layout    Layout
	err       error // nil: read to its end
	open      bool  // read without error to the end of the window
	truncated bool  // read without error to the end of the input, which stops early
}

func (l Layout) short() string { return fmt.Sprintf("%d-bit %v", l.Width, l.Guest) }

func lower(g Guest) string {
	if g == GuestHVM {
		return "hvm"
	}
	return "pv"
}

func joinOr(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := ""
	for i, x := range s {
		switch {
		case i == 0:
		case i == len(s)-1:
			out += " and "
		default:
			out += ", "
		}
		out += x
	}
	return out
}

// candidates returns the four layouts, the one the first octets suggest
// first: a 64-bit PV stream has its extended-info marker (eight 0xff) at
// octet 8, a 32-bit one (four 0xff) at octet 4; a 64-bit p2m size has a
// zero upper half; anything else at octet 4 is a 32-bit HVM stream's
// first chunk.
func candidates(b []byte) []Layout {
	first := Layout{Width: 32, Guest: GuestHVM}
	ones := func(b []byte) bool { return bytes.Count(b, []byte{0xff}) == len(b) }
	switch {
	case len(b) >= 16 && ones(b[8:16]):
		first = Layout{Width: 64, Guest: GuestPV}
	case len(b) >= 8 && ones(b[4:8]):
		first = Layout{Width: 32, Guest: GuestPV}
	case len(b) >= 8 && bytes.Equal(b[4:8], []byte{0, 0, 0, 0}):
		first = Layout{Width: 64, Guest: GuestHVM}
	}
	out := []Layout{first}
	for _, w := range []int{64, 32} {
		for _, g := range []Guest{GuestPV, GuestHVM} {
			if l := (Layout{Width: w, Guest: g}); l != first {
				out = append(out, l)
			}
		}
	}
	return out
}

// windowEnd is what a probe reads after its window: errWindow instead of
// io.EOF, so that running out of the window is not truncation.
type windowEnd struct{}

func (windowEnd) Read([]byte) (int, error) { return 0, errWindow }

// try reads the window b (all of the stream when eof) in layout l.
func (r *Reader) try(l Layout, b []byte, eof bool) outcome {
	var in io.Reader = bytes.NewReader(b)
	if !eof {
		in = io.MultiReader(in, windowEnd{})
	}
	p := &Reader{
		src:    stream.NewSource(bufio.NewReaderSize(in, 64<<10), r.start),
		opts:   Options{Width: l.Width, Guest: l.Guest, Toolstack: r.opts.Toolstack},
		probe:  true,
		state:  stP2MSize,
		layout: l,
		ulong:  l.Width / 8,
	}
	err := p.run()
	o := outcome{layout: l, err: err}
	switch {
	case err == nil:
	case errors.Is(err, errWindow):
		o.open = true
	case eof && errors.Is(err, io.ErrUnexpectedEOF):
		o.truncated = true
	}
	return o
}

// run reads the whole stream, for a probe.
func (r *Reader) run() error {
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if _, err := r.Tail(); err != nil {
		return err
	}
	return r.End()
}
