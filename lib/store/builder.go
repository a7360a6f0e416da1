package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/xstream/xstream/internal/writeback"
	"github.com/xstream/xstream/lib/domain"
	"github.com/xstream/xstream/lib/stream"
)

// Create returns a Builder for domain name. The writer lock is held until
// Commit or Abort; a second writer of the same name fails with
// domain.ErrLocked.
func (s *Store) Create(name string, replace bool) (domain.Builder, error) {
	unlock, err := s.lock(name)
	if err != nil {
		return nil, err
	}
	if !replace && s.Exists(name) {
		unlock()
		return nil, fmt.Errorf("%w: %s (use --force to replace it)", domain.ErrExists, name)
	}
	s.removeLeftovers(name) // best effort: what a crash left
	id := name + "." + randomSuffix()
	dir := filepath.Join(s.root, dataDir, id+".tmp")
	if err := os.Mkdir(dir, 0o755); err != nil {
		unlock()
		return nil, err
	}
	b := &builder{s: s, name: name, id: id, dir: dir, replace: replace, unlock: unlock, written: map[uint64]*[64]uint64{}}
	open := func(n string) (*os.File, error) {
		return os.OpenFile(filepath.Join(dir, n), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	}
	if b.types, err = open("types"); err == nil {
		if b.memory, err = open("memory"); err == nil {
			b.recf, err = open("records")
		}
	}
	if err != nil {
		b.Abort()
		return nil, err
	}
	b.recw = bufio.NewWriterSize(b.recf, 64<<10)
	return b, nil
}

type builder struct {
	s       *Store
	name    string
	id      string
	dir     string
	replace bool
	unlock  func()
	info    domain.Info
	haveInf bool
	done    bool
	domainFiles
	recf *os.File
	recw *bufio.Writer
	// written holds the pfns whose memory holds non-zero data, so that a
	// zero page or XTAB sent later for them clears it (pfn>>12 → bits).
	written map[uint64]*[64]uint64
	tbuf    []byte
	maxPFN  uint64 // one past the highest pfn set
	// dirty counts memory octets written since writeback was last started.
	dirty int64
	// recBytes counts the octets of the records log.
	recBytes int64
}

var zeroPage [stream.PageSize]byte

func (b *builder) SetInfo(info domain.Info) error {
	if info.PageShift != stream.PageShift {
		return stream.Unsupported("store: page shift %d unsupported", info.PageShift)
	}
	if info.PFNs > MaxPFNs {
		return stream.OverLimit("store: %#x pfns, beyond the store's limit of %#x", info.PFNs, uint64(MaxPFNs))
	}
	b.info = info
	b.info.Name = b.name
	b.haveInf = true
	return nil
}

// maxWrittenChunks bounds the written-pfn bitmap: 2^16 chunks of 4096
// pfns cover 2^28 pfns (1 TiB) in 32 MiB.
const maxWrittenChunks = 1 << 16

func (b *builder) markWritten(pfn uint64, on bool) (was bool, err error) {
	c := b.written[pfn>>12]
	if c == nil {
		if !on {
			return false, nil
		}
		if len(b.written) >= maxWrittenChunks {
			return false, stream.OverLimit("store: pfns too scattered (more than %d groups of 4096)", maxWrittenChunks)
		}
		c = new([64]uint64)
		b.written[pfn>>12] = c
	}
	w, bit := &c[(pfn>>6)&63], uint64(1)<<(pfn&63)
	was = *w&bit != 0
	if on {
		*w |= bit
	} else {
		*w &^= bit
	}
	return was, nil
}

func (b *builder) SetPages(pfns []uint64, data []byte) error {
	if !b.haveInf {
		return errors.New("store: pages before domain info")
	}
	if cap(b.tbuf) < len(pfns) {
		b.tbuf = make([]byte, len(pfns))
	}
	// Runs of consecutive pfns become one write of types and, for
	// non-zero pages, one write of memory.
	var (
		tStart  = -1 // index in pfns where the current type run starts
		mStart  = -1 // index where the current memory run starts
		mData   = 0  // offset in data of that run
		off     = 0  // offset in data of the current page
		prevPFN uint64
	)
	pfnOf := func(i int) uint64 { return pfns[i] & stream.PFNMask }
	flushTypes := func(end int) error {
		if tStart < 0 {
			return nil
		}
		_, err := b.types.WriteAt(b.tbuf[tStart:end], int64(pfnOf(tStart)))
		tStart = -1
		return err
	}
	flushMem := func(endData int) error {
		if mStart < 0 {
			return nil
		}
		_, err := b.memory.WriteAt(data[mData:endData], int64(pfnOf(mStart))<<stream.PageShift)
		mStart = -1
		if b.dirty += int64(endData - mData); b.dirty >= writeback.Every {
			writeback.Start(b.memory)
			b.dirty = 0
		}
		return err
	}
	for i, w := range pfns {
		pfn, t, _ := stream.SplitPFNWord(w)
		if pfn >= MaxPFNs {
			return stream.OverLimit("store: pfn %#x beyond the store's limit of %#x", pfn, uint64(MaxPFNs))
		}
		if i > 0 && pfn != prevPFN+1 {
			if err := flushTypes(i); err != nil {
				return err
			}
			if err := flushMem(off); err != nil {
				return err
			}
		}
		prevPFN = pfn
		if t == stream.PageXTab {
			b.tbuf[i] = 0
		} else {
			b.tbuf[i] = typePresent | byte(t)
			b.maxPFN = max(b.maxPFN, pfn+1)
		}
		if tStart < 0 {
			tStart = i
		}
		var page []byte
		if t.HasData() {
			page = data[off : off+stream.PageSize]
		}
		if page != nil && !bytes.Equal(page, zeroPage[:]) {
			if _, err := b.markWritten(pfn, true); err != nil {
				return err
			}
			if mStart < 0 {
				mStart, mData = i, off
			}
		} else {
			if err := flushMem(off); err != nil {
				return err
			}
			was, err := b.markWritten(pfn, false)
			if err != nil {
				return err
			}
			if was { // it held data: clear it
				if _, err := b.memory.WriteAt(zeroPage[:], int64(pfn)<<stream.PageShift); err != nil {
					return err
				}
			}
		}
		if page != nil {
			off += stream.PageSize
		}
	}
	if err := flushTypes(len(pfns)); err != nil {
		return err
	}
	return flushMem(off)
}

func (b *builder) SetRecord(r domain.Record) error {
	if _, err := r.Key(); err != nil {
		return err
	}
	// What the store takes it must read back: the log is bounded as its
	// reader bounds it.
	size := int64(16 + len(r.Body) + -len(r.Body)&7)
	if b.recBytes+size > maxRecordsFile {
		return stream.OverLimit("store: the domain's records would take more than the %d octets the store reads back", maxRecordsFile)
	}
	b.recBytes += size
	var h [16]byte
	binary.LittleEndian.PutUint32(h[:], uint32(r.Layer))
	binary.LittleEndian.PutUint32(h[4:], r.Type)
	binary.LittleEndian.PutUint64(h[8:], uint64(len(r.Body)))
	b.recw.Write(h[:])
	b.recw.Write(r.Body)
	_, err := b.recw.Write(zeroPage[:-len(r.Body)&7])
	return err
}

// countPages counts the present pfns in the types file.
func (b *builder) countPages() (uint64, error) {
	if _, err := b.types.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	r := bufio.NewReaderSize(b.types, 1<<20)
	buf := make([]byte, 1<<20)
	var n uint64
	for {
		k, err := r.Read(buf)
		for _, c := range buf[:k] {
			if c&typePresent != 0 {
				n++
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

func (b *builder) Commit() (domain.Info, error) {
	err := b.commit()
	var nd *NotDurableError
	if err != nil && !errors.As(err, &nd) {
		return domain.Info{}, err
	}
	return b.info, err
}

func (b *builder) commit() (err error) {
	if b.done {
		return errors.New("store: builder already finished")
	}
	defer func() {
		if err != nil {
			b.Abort()
		}
	}()
	if !b.haveInf {
		return errors.New("store: no domain info")
	}
	if err := b.recw.Flush(); err != nil {
		return err
	}
	b.info.PFNs = max(b.info.PFNs, b.maxPFN)
	if b.info.Pages, err = b.countPages(); err != nil {
		return err
	}
	// Make the memory file cover every pfn, so reads past the last
	// written page see a hole, not the end of the file.
	if err := b.memory.Truncate(int64(b.info.PFNs) << stream.PageShift); err != nil {
		return err
	}
	if err := b.types.Truncate(int64(b.info.PFNs)); err != nil {
		return err
	}
	info, _ := json.MarshalIndent(b.info, "", "  ")
	if err := os.WriteFile(filepath.Join(b.dir, "info.json"), append(info, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.dir, "config"), b.info.Config, 0o644); err != nil {
		return err
	}
	for _, f := range []*os.File{b.types, b.memory, b.recf} {
		if err := syncFile(f); err != nil {
			return err
		}
	}
	for _, n := range []string{"info.json", "config"} {
		if f, err := os.Open(filepath.Join(b.dir, n)); err == nil {
			err = syncFile(f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	final := strings.TrimSuffix(b.dir, ".tmp")
	if err := renamePath(b.dir, final); err != nil {
		return err
	}
	b.dir = final
	dataErr := syncDir(filepath.Join(b.s.root, dataDir))
	if !b.replace && b.s.Exists(b.name) {
		return fmt.Errorf("%w: %s", domain.ErrExists, b.name)
	}
	old, _ := b.s.dir(b.name)
	link := filepath.Join(b.s.root, "."+b.name+".link")
	os.Remove(link)
	if err := os.Symlink(filepath.Join(dataDir, filepath.Base(final)), link); err != nil {
		return err
	}
	if err := renamePath(link, filepath.Join(b.s.root, b.name)); err != nil {
		os.Remove(link)
		return err
	}
	rootErr := syncDir(b.s.root)
	b.done = true
	b.closeFiles()
	if old != "" && old != final {
		os.RemoveAll(old)
	}
	b.unlock()
	if err := errors.Join(dataErr, rootErr); err != nil {
		return &NotDurableError{Name: b.name, Err: err}
	}
	return nil
}

// NotDurableError is Commit's error when the domain is stored, whole and
// in place, but a directory could not be synced: a crash might yet lose
// it. Commit returns the domain's Info with it.
type NotDurableError struct {
	Name string
	Err  error
}

func (e *NotDurableError) Error() string {
	return fmt.Sprintf("store: domain %s is stored, but the store's directory could not be synced (a crash may yet lose it): %v", e.Name, e.Err)
}
func (e *NotDurableError) Unwrap() error { return e.Err }

func (b *builder) closeFiles() {
	for _, f := range []*os.File{b.types, b.memory, b.recf} {
		if f != nil {
			f.Close()
		}
	}
}

// Abort removes everything the builder wrote.
func (b *builder) Abort() error {
	if b.done {
		return nil
	}
	b.done = true
	b.closeFiles()
	err := os.RemoveAll(b.dir)
	b.unlock()
	return err
}

// isCopyOf tells whether dir, in the data directory, is a copy of name's,
// committed or temporary: name, a dot, randomSuffix's hex digits, and
// ".tmp" for a temporary one. Exactly that: not a.b's when the name is a.
func isCopyOf(dir, name string) bool {
	rest, ok := strings.CutPrefix(dir, name+".")
	if !ok {
		return false
	}
	id := strings.TrimSuffix(rest, ".tmp")
	if len(id) != 2*suffixBytes {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}
