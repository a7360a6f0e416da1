// Package save writes a domain from a backend as a migration stream: the
// xl header (optional), libxl v2 (optional) and libxc v3, in the record
// order Xen's own saver uses.
package save

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/xstream/xstream/lib/domain"
	"github.com/xstream/xstream/lib/integrity"
	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

// Format is the outermost framing of a saved stream.
type Format string

// Formats.
const (
	FormatXL    Format = "xl"    // xl header, libxl v2, libxc v3
	FormatLibxl Format = "libxl" // libxl v2, libxc v3
	FormatLibxc Format = "libxc" // bare libxc v3
)

// ParseFormat checks a format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatXL, FormatLibxl, FormatLibxc:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q: want xl, libxl or libxc", s)
}

// Options tune Save.
type Options struct {
	Format Format
	Order  stream.ByteOrder // default little-endian
	// Progress, if set, is called after every batch with the pfns
	// scanned so far and the domain's pfn count.
	Progress func(done, total uint64)
	// Checksum writes CHECKSUM records (lib/integrity) every
	// ChecksumInterval octets (integrity.DefaultInterval if 0).
	Checksum         bool
	ChecksumInterval int64
}

// Stats reports what Save wrote.
type Stats struct {
	Bytes   int64
	Pages   uint64 // pfns sent (with data or type only)
	Records int
	// Checksums is the number of CHECKSUM records written (not counted
	// in Records).
	Checksums int
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// batch is the number of pfns scanned per PAGE_DATA record.
const batch = stream.MaxPageBatch

// Save writes src to w. Give it a buffered writer; Save does not flush.
func Save(w io.Writer, src domain.Source, opts Options) (Stats, error) {
	var st Stats
	if opts.Format == "" {
		opts.Format = FormatXL
	}
	if opts.Order == nil {
		opts.Order = binary.LittleEndian
	}
	// Pages may move from a memory file to a pipe in the kernel only when
	// nothing needs to see them on the way: w is the Output itself.
	out, _ := w.(*stream.Output)
	// With checksums, every octet passes through the integrity writer,
	// which puts CHECKSUM records where mark, below, says.
	var ck *integrity.Writer
	if opts.Checksum {
		out = nil
		ck = integrity.NewWriter(w, opts.ChecksumInterval)
		ck.SetOrder(opts.Order)
		w = ck
	}
	mark := func() error {
		if ck != nil && ck.Due() {
			return ck.Mark()
		}
		return nil
	}
	cw := &countingWriter{w: w}
	info := src.Info()
	recs, err := src.Records()
	if err != nil {
		return st, err
	}
	if err := src.Pause(); err != nil {
		return st, err
	}
	defer src.Resume()

	var lx *libxl.Writer
	if opts.Format == FormatXL {
		h := xl.Header{Order: opts.Order, MandatoryFlags: xl.FlagStreamV2, Config: info.Config}
		if len(info.Config) == 0 {
			h.Config = nil
			h.NoConfigLength = true
		} else if bytes.HasPrefix(bytes.TrimSpace(info.Config), []byte("{")) {
			h.MandatoryFlags |= xl.FlagJSON
		}
		b, err := h.AppendBinary(nil)
		if err != nil {
			return st, err
		}
		if _, err := cw.Write(b); err != nil {
			return st, err
		}
	}
	if opts.Format == FormatXL || opts.Format == FormatLibxl {
		var lh libxl.Header
		if opts.Order == binary.BigEndian {
			lh.Options |= libxl.OptionBigEndian
		}
		if lx, err = libxl.NewWriter(cw, lh); err != nil {
			return st, err
		}
		if err := lx.WriteRecord(libxl.RecLibxcContext); err != nil {
			return st, err
		}
	}
	lc := stream.NewWriter(cw)
	if err := lc.WriteHeaders(stream.NewImageHeader(opts.Order), stream.DomainHeader{
		Type: info.Type, PageShift: stream.PageShift, XenMajor: info.XenMajor, XenMinor: info.XenMinor}); err != nil {
		return st, err
	}
	if ck != nil {
		// The first CHECKSUM record covers the framing and the headers.
		if err := ck.Mark(); err != nil {
			return st, err
		}
	}
	libxcRecs, libxlRecs := order(info.Type, recs)
	write := func(r domain.Record) error {
		if err := mark(); err != nil {
			return err
		}
		st.Records++
		t := stream.RecordType(r.Type)
		if opts.Order == binary.LittleEndian {
			return lc.WriteRecord(t, r.Body)
		}
		b, err := stream.Decode(t, r.Body, binary.LittleEndian)
		if err != nil {
			return fmt.Errorf("save: stored %v record: %w", t, err)
		}
		return lc.WriteRecord(t, b.AppendBody(nil, opts.Order))
	}
	// Static records, STATIC_DATA_END, the p2m frame list: what must
	// come before the pages.
	i := 0
	for ; i < len(libxcRecs) && phase(libxcRecs[i].Type) == 0; i++ {
		if err := write(libxcRecs[i]); err != nil {
			return st, err
		}
	}
	if err := lc.WriteRecord(stream.RecStaticDataEnd); err != nil {
		return st, err
	}
	for ; i < len(libxcRecs) && phase(libxcRecs[i].Type) == 1; i++ {
		if err := write(libxcRecs[i]); err != nil {
			return st, err
		}
	}
	var files *fileRuns
	if pf, ok := src.(domain.PageFile); ok && out != nil {
		files = &fileRuns{pf: pf, f: pf.MemoryFile(), out: out, cw: cw}
	}
	if err := savePages(lc, src, info, opts, &st, mark, files); err != nil {
		return st, err
	}
	for ; i < len(libxcRecs); i++ {
		if err := write(libxcRecs[i]); err != nil {
			return st, err
		}
	}
	if ck != nil {
		if err := ck.BeginTail(); err != nil {
			return st, err
		}
	}
	if err := lc.WriteRecord(stream.RecEnd); err != nil {
		return st, err
	}
	if lx == nil {
		if err := qemuTail(cw, libxlRecs); err != nil {
			return st, err
		}
	} else {
		for _, r := range libxlRecs {
			body := r.Body
			if opts.Order == binary.BigEndian && len(body) >= 8 {
				body = bytes.Clone(body)
				binary.BigEndian.PutUint32(body, binary.LittleEndian.Uint32(r.Body))
				binary.BigEndian.PutUint32(body[4:], binary.LittleEndian.Uint32(r.Body[4:]))
			}
			if err := lx.WriteRecord(libxl.RecordType(r.Type), body); err != nil {
				return st, err
			}
		}
		if err := lx.WriteRecord(libxl.RecEnd); err != nil {
			return st, err
		}
	}
	st.Bytes = cw.n
	if ck != nil {
		if err := ck.Close(); err != nil {
			return st, err
		}
		st.Bytes, st.Checksums = ck.Offset(), ck.Records()
	}
	return st, nil
}

// ErrFormatLoses is returned when the chosen format cannot carry part of
// the domain's state.
var ErrFormatLoses = errors.New("the libxc format cannot carry this domain's emulator state")

// qemuTail writes the device model's context after a bare libxc stream as
// the legacy qemu tail, the one way that format carries it (Xen's
// converter does the same).
func qemuTail(w io.Writer, recs []domain.Record) error {
	for _, r := range recs {
		key, _ := r.Key()
		if libxl.RecordType(r.Type) != libxl.RecEmulatorContext || uint32(key) != 0 {
			return fmt.Errorf("%w (%v, emulator index %d); use the xl or libxl format", ErrFormatLoses, libxl.RecordType(r.Type), uint32(key))
		}
	}
	for _, r := range recs {
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(r.Body)-8))
		for _, p := range [][]byte{[]byte(sniff.QemuSignature), n[:], r.Body[8:]} {
			if _, err := w.Write(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// position places each libxc state record type in Xen's saver order:
// phase 0 is static data (before STATIC_DATA_END), phase 1 what must come
// before the pages, phase 2 what follows them; rank orders within.
var position = map[stream.RecordType]struct{ phase, rank int }{
	stream.RecX86PVInfo:         {0, 0},
	stream.RecX86CPUIDPolicy:    {0, 1},
	stream.RecX86MSRPolicy:      {0, 2},
	stream.RecX86PVP2MFrames:    {1, 3},
	stream.RecX86TSCInfo:        {2, 4},
	stream.RecSharedInfo:        {2, 5},
	stream.RecX86PVVCPUBasic:    {2, 6},
	stream.RecX86PVVCPUExtended: {2, 6},
	stream.RecX86PVVCPUXSave:    {2, 6},
	stream.RecX86PVVCPUMSRs:     {2, 6},
	stream.RecHVMContext:        {2, 7}, // Xen's saver sends the context
	stream.RecHVMParams:         {2, 8}, // before the params, unlike the spec's example

}

func phase(t uint32) int {
	if p, ok := position[stream.RecordType(t)]; ok {
		return p.phase
	}
	return 2
}

func rank(t uint32) int {
	if p, ok := position[stream.RecordType(t)]; ok {
		return p.rank
	}
	return 9
}

// order sorts the state records into libxc records in stream order and
// libxl emulator records (xenstore data before context).
func order(dt stream.DomainType, recs []domain.Record) (libxc, libxlRecs []domain.Record) {
	for _, r := range recs {
		if r.Layer == domain.Libxl {
			libxlRecs = append(libxlRecs, r)
		} else if !stream.RecordType(r.Type).Optional() {
			libxc = append(libxc, r)
		}
	}
	sort.SliceStable(libxc, func(i, j int) bool {
		a, b := libxc[i], libxc[j]
		if phase(a.Type) != phase(b.Type) {
			return phase(a.Type) < phase(b.Type)
		}
		if rank(a.Type) != rank(b.Type) {
			return rank(a.Type) < rank(b.Type)
		}
		// vCPU records: by vCPU, then BASIC, EXTENDED, XSAVE, MSRS,
		// which is their numeric order.
		ka, _ := a.Key()
		kb, _ := b.Key()
		if ka != kb {
			return ka < kb
		}
		return a.Type < b.Type
	})
	sort.SliceStable(libxlRecs, func(i, j int) bool {
		a, b := libxlRecs[i], libxlRecs[j]
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		ka, _ := a.Key()
		kb, _ := b.Key()
		return ka < kb
	})
	return libxc, libxlRecs
}

// ErrTooLarge is returned for a domain with more pfns than a stream can
// address.
var ErrTooLarge = errors.New("save: domain pfn count beyond what a stream can carry")

// savePages writes the PAGE_DATA records, calling mark between them.
// With files, the pages come from the source's memory file instead
// of ReadPages, spliced into the output pipe.
func savePages(lc *stream.Writer, src domain.Source, info domain.Info, opts Options, st *Stats, mark func() error, files *fileRuns) error {
	if info.PFNs > stream.PFNMask {
		return ErrTooLarge
	}
	types := make([]stream.PageType, batch)
	data := make([]byte, batch*stream.PageSize)
	hdr := make([]byte, 8, 8+8*batch)
	o := opts.Order
	for start := uint64(0); start < info.PFNs; start += batch {
		n := int(min(batch, info.PFNs-start))
		var err error
		if files != nil {
			err = files.pf.PageTypes(start, types[:n])
		} else {
			_, err = src.ReadPages(start, types[:n], data)
		}
		if err != nil {
			return fmt.Errorf("save: reading pfns %#x-%#x: %w", start, start+uint64(n)-1, err)
		}
		hdr = hdr[:8]
		count, pages := 0, 0
		for i, t := range types[:n] {
			if t == domain.PageAbsent {
				continue
			}
			hdr = o.AppendUint64(hdr, stream.PFNWord(start+uint64(i), t))
			count++
			if t.HasData() {
				pages++
			}
		}
		if count > 0 {
			if err := mark(); err != nil {
				return err
			}
			o.PutUint32(hdr, uint32(count))
			o.PutUint32(hdr[4:], 0)
			if files != nil {
				files.reset(start, types[:n], data)
				err = lc.WriteRecordFrom(stream.RecPageData, hdr, int64(pages)*stream.PageSize, files)
			} else {
				err = lc.WriteRecord(stream.RecPageData, hdr, data[:pages*stream.PageSize])
			}
			if err != nil {
				return err
			}
			st.Pages += uint64(count)
			st.Records++
		}
		if opts.Progress != nil {
			opts.Progress(start+uint64(n), info.PFNs)
		}
	}
	return nil
}

// fileRuns is the page data of one PAGE_DATA record as runs of
// consecutive pages of a memory file. As an io.WriterTo it hands each run
// to the Output, which splices what it can (the kernel moves the file's
// pages into the pipe without a copy), and copies the rest: all of it
// when the output is not a pipe, the part past the file's end (zeros).
type fileRuns struct {
	pf   domain.PageFile
	f    *os.File
	out  *stream.Output
	cw   *countingWriter // what the Output has been given, spliced octets too
	runs []pageRun
	buf  []byte // a batch of pages, for copying
	cur  int    // Read: the run being read, and how far
	done int64
}

type pageRun struct{ off, n int64 }

// reset makes the runs of the data pages among types, pfns from start on.
func (r *fileRuns) reset(start uint64, types []stream.PageType, buf []byte) {
	r.runs, r.buf, r.cur, r.done = r.runs[:0], buf, 0, 0
	for i, t := range types {
		if !t.HasData() {
			continue
		}
		off := int64(start+uint64(i)) << stream.PageShift
		if k := len(r.runs) - 1; k >= 0 && r.runs[k].off+r.runs[k].n == off {
			r.runs[k].n += stream.PageSize
			continue
		}
		r.runs = append(r.runs, pageRun{off, stream.PageSize})
	}
}

// WriteTo writes the runs to w, which is the countingWriter over the
// Output: what goes around it by splice is counted there by hand.
func (r *fileRuns) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for _, run := range r.runs {
		moved, err := r.out.SpliceFrom(r.f, run.off, run.n)
		r.cw.n += moved
		total += moved
		if err != nil {
			return total, err
		}
		for off, end := run.off+moved, run.off+run.n; off < end; {
			b := r.buf[:min(int64(len(r.buf)), end-off)]
			if err := r.readAt(b, off); err != nil {
				return total, err
			}
			k, err := w.Write(b)
			total += int64(k)
			off += int64(k)
			if err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// readAt fills b from offset off of the file, zeros past its end.
func (r *fileRuns) readAt(b []byte, off int64) error {
	k, err := r.f.ReadAt(b, off)
	if err == io.EOF {
		clear(b[k:])
		err = nil
	}
	return err
}

// Read reads the runs in order (WriteRecordFrom uses WriteTo instead).
func (r *fileRuns) Read(p []byte) (int, error) {
	for r.cur < len(r.runs) && r.done == r.runs[r.cur].n {
		r.cur, r.done = r.cur+1, 0
	}
	if r.cur == len(r.runs) {
		return 0, io.EOF
	}
	run := r.runs[r.cur]
	p = p[:min(int64(len(p)), run.n-r.done)]
	if err := r.readAt(p, run.off+r.done); err != nil {
		return 0, err
	}
	r.done += int64(len(p))
	return len(p), nil
}
