package digest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/xstream/xstream/lib/stream"
)

// The pfn table: pfn → (type, hash) in chunks of 64 pfns. A domain of up
// to 16 Mi pfns (2^18 chunks) must be digested in bounded memory, so the
// chunks live in a fixed direct-mapped cache (chunk ci in slot ci mod
// cacheChunks) and a chunk evicted from it goes to a temporary file,
// created on the first eviction and unlinked at once. Pfns that arrive
// roughly in order, as a saver sends them, touch each chunk while it is
// in the cache; a domain of up to cacheChunks×64 pages never touches the
// file.

// chunkShift: a table chunk covers 2^chunkShift pfns.
const chunkShift = 6
const chunkPFNs = 1 << chunkShift

// MaxChunks caps the pfn table: 2^18 chunks of 64 pfns cover 16 Mi pfns
// (a 64 GiB domain).
const MaxChunks = 1 << 18

// cacheChunks is the number of chunks held in memory, a power of two:
// 8192 chunks (about 9 MiB) cover the pfns of a 2 GiB domain. Tests
// make it tiny to exercise the file.
var cacheChunks = 8192

type chunk struct {
	present uint64 // bit i: pfn base+i has an entry
	types   [chunkPFNs]stream.PageType
	hashes  [chunkPFNs][16]byte
}

// chunkSize is the size of a chunk in the file.
const chunkSize = 8 + chunkPFNs + chunkPFNs*16

func (c *chunk) encode(b []byte) {
	binary.LittleEndian.PutUint64(b, c.present)
	for i, t := range c.types {
		b[8+i] = byte(t)
	}
	h := b[8+chunkPFNs:]
	for i := range c.hashes {
		copy(h[16*i:], c.hashes[i][:])
	}
}

func (c *chunk) decode(b []byte) {
	c.present = binary.LittleEndian.Uint64(b)
	for i := range c.types {
		c.types[i] = stream.PageType(b[8+i])
	}
	h := b[8+chunkPFNs:]
	for i := range c.hashes {
		copy(c.hashes[i][:], h[16*i:])
	}
}

type slot struct {
	ci uint64 // chunk index held, when c is not nil
	c  *chunk
}

type table struct {
	slots   []slot            // the cache: chunk ci in slots[ci&mask]
	mask    uint64            // len(slots)-1
	file    *os.File          // evicted chunks; nil until the first eviction
	onFile  map[uint64]uint32 // chunk index → its place in file, in chunkSize units
	chunks  int               // distinct chunks, in the cache or on file
	pages   int               // pfns with an entry
	buf     []byte            // one encoded chunk
	err     error             // sticky: a failed file operation, or closed
	scratch chunk             // a chunk read back in sum
}

var errClosed = errors.New("digest: Digester used after Close")

func newTable() *table {
	n := cacheChunks
	if n <= 0 || n&(n-1) != 0 {
		panic("digest: cacheChunks must be a power of two")
	}
	return &table{slots: make([]slot, n), mask: uint64(n - 1), onFile: map[uint64]uint32{}}
}

// set gives pfn the type t with a zero hash and returns its chunk, or
// removes pfn for XTAB (and returns nil).
func (t *table) set(pfn uint64, typ stream.PageType) (*chunk, error) {
	ci, bit := pfn>>chunkShift, uint64(1)<<(pfn&(chunkPFNs-1))
	s := &t.slots[ci&t.mask]
	c := s.c
	if c == nil || s.ci != ci {
		var err error
		if c, err = t.load(s, ci, typ != stream.PageXTab); c == nil {
			return nil, err
		}
	}
	if typ == stream.PageXTab {
		if c.present&bit != 0 {
			c.present &^= bit
			t.pages--
		}
		return nil, nil
	}
	if c.present&bit == 0 {
		c.present |= bit
		t.pages++
	}
	i := pfn & (chunkPFNs - 1)
	c.types[i] = typ
	c.hashes[i] = [16]byte{}
	return c, nil
}

// load brings chunk ci into its cache slot s, evicting the chunk there to
// the file, and returns it. A chunk never seen is created if create is
// set; otherwise load returns nil.
func (t *table) load(s *slot, ci uint64, create bool) (*chunk, error) {
	if t.err != nil {
		return nil, t.err
	}
	at, stored := t.onFile[ci]
	if !stored {
		if !create {
			return nil, nil
		}
		if t.chunks >= MaxChunks {
			return nil, ErrTooLarge
		}
	}
	if s.c == nil {
		s.c = new(chunk)
	} else if err := t.evict(s); err != nil {
		return nil, err
	}
	if stored {
		if err := t.read(at, s.c); err != nil {
			s.c = nil
			return nil, err
		}
	} else {
		*s.c = chunk{}
		t.chunks++
	}
	s.ci = ci
	return s.c, nil
}

// evict writes the chunk in s to the file, at the place it had there or
// at the end.
func (t *table) evict(s *slot) error {
	if t.file == nil {
		f, err := os.CreateTemp("", "xstream-digest-*")
		if err != nil {
			return t.fail(err)
		}
		// Unlinked at once: the file goes when it is closed or the
		// process ends, whatever happens.
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return t.fail(err)
		}
		t.file = f
		t.buf = make([]byte, chunkSize)
	}
	at, ok := t.onFile[s.ci]
	if !ok {
		at = uint32(len(t.onFile))
	}
	s.c.encode(t.buf)
	if _, err := t.file.WriteAt(t.buf, int64(at)*chunkSize); err != nil {
		return t.fail(err)
	}
	if !ok {
		t.onFile[s.ci] = at
	}
	return nil
}

func (t *table) read(at uint32, c *chunk) error {
	if _, err := t.file.ReadAt(t.buf, int64(at)*chunkSize); err != nil {
		return t.fail(err)
	}
	c.decode(t.buf)
	return nil
}

func (t *table) fail(err error) error {
	t.err = fmt.Errorf("digest: pfn table file: %w", err)
	return t.err
}

// each calls fn for every chunk in ascending order of chunk index; the
// chunk is valid only during the call.
func (t *table) each(fn func(ci uint64, c *chunk)) error {
	if t.err != nil {
		return t.err
	}
	cis := make([]uint64, 0, len(t.onFile)+min(t.chunks, len(t.slots)))
	for ci := range t.onFile {
		cis = append(cis, ci)
	}
	for _, s := range t.slots {
		if s.c != nil {
			if _, ok := t.onFile[s.ci]; !ok {
				cis = append(cis, s.ci)
			}
		}
	}
	slices.Sort(cis)
	for _, ci := range cis {
		if s := &t.slots[ci&t.mask]; s.c != nil && s.ci == ci {
			fn(ci, s.c)
			continue
		}
		if err := t.read(t.onFile[ci], &t.scratch); err != nil {
			return err
		}
		fn(ci, &t.scratch)
	}
	return nil
}

// close releases the file and the cache; the table is unusable after.
func (t *table) close() error {
	var err error
	if t.file != nil {
		err = t.file.Close()
		t.file = nil
	}
	// One empty slot: every later call misses and gets t.err.
	t.slots, t.mask, t.onFile, t.buf = make([]slot, 1), 0, nil, nil
	if t.err == nil {
		t.err = errClosed
	}
	if err != nil {
		return fmt.Errorf("digest: pfn table file: %w", err)
	}
	return nil
}
