// Package digest computes the content digest of a domain: a SHA-256 over
// its pages by pfn and its state records in a canonical order, so that two
// streams of the same domain give the same digest whatever their batching,
// record order, byte order or framing (xl, libxl, libxc). docs/FORMAT.md
// specifies it; the summary:
//
//   - pages: the last PAGE_DATA entry of each pfn wins (live migration
//     resends dirty pages); pages sent after a VERIFY record are checks,
//     not content, and are ignored; an XTAB entry removes the pfn; XALLOC
//     and BROKEN keep the pfn with their type and no content.
//   - state: X86_PV_INFO, X86_PV_P2M_FRAMES, the four PV vCPU records (per
//     vCPU id), SHARED_INFO, X86_TSC_INFO, HVM_CONTEXT, HVM_PARAMS, the CPU
//     policies, and libxl's emulator records (per emulator index; the
//     legacy qemu tail counts as index 0). The last of each
//     wins; typed fields are re-encoded little-endian; records with no
//     content (erratum 1 of the libxc spec) are skipped.
//   - not included: signalling records, optional records (extensions such
//     as checksums), TOOLSTACK, the Xen version, the xl config.
package digest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"runtime"
	"sort"
	"sync"

	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

// Version is the digest format; it prefixes the printed digest.
const Version = "xsd1"

type stateKey struct {
	layer uint8 // 0 libxc, 1 libxl
	typ   uint32
	sub   uint64
}

// Digester accumulates a domain's content from stream items.
type Digester struct {
	domType stream.DomainType
	table   *table
	state   map[stateKey][32]byte
	verify  bool // VERIFY seen: page data is no longer content
	page    stream.PageData
	norm    []byte
	hashes  [][16]byte // per data page of the current record
}

// New returns an empty Digester. Close it when done: a large domain's
// pfn table spills to a temporary file.
func New() *Digester {
	return &Digester{table: newTable(), state: map[stateKey][32]byte{}}
}

// Close releases the Digester's temporary file and memory; it cannot be
// used after.
func (d *Digester) Close() error { return d.table.close() }

// ErrTooLarge is returned when the pfn table would exceed MaxChunks.
var ErrTooLarge = stream.OverLimit("digest: too many distinct pfns (more than a 64 GiB domain, or pfns scattered by a hostile stream)")

// Add takes one item of a walked stream.
func (d *Digester) Add(it *sniff.Item) error {
	switch it.Kind {
	case sniff.LibxcHeaders:
		d.SetDomainType(it.Domain.Type)
		d.verify = false
	case sniff.LibxcRecord:
		return d.libxc(it.Libxc, it.Order)
	case sniff.LibxlRecord:
		r := it.Libxl
		if r.Type == libxl.RecEmulatorContext || r.Type == libxl.RecEmulatorXenstoreData {
			id, idx, data, err := r.Emulator(it.Order)
			if err != nil {
				return err
			}
			d.Emulator(r.Type, id, idx, data)
		}
	case sniff.QemuTail:
		d.Emulator(libxl.RecEmulatorContext, libxl.EmulatorUnknown, 0, it.Qemu)
	}
	return nil
}

func (d *Digester) setState(k stateKey, body []byte) {
	d.state[k] = sha256.Sum256(body)
}

func (d *Digester) libxc(rec *stream.Record, order stream.ByteOrder) error {
	switch rec.Type {
	case stream.RecVerify:
		d.verify = true
		return nil
	case stream.RecPageData:
		if d.verify {
			return nil
		}
		return d.pages(rec.Body, order)
	}
	return d.Record(rec.Type, rec.Body, order)
}

func (d *Digester) pages(body []byte, order stream.ByteOrder) error {
	if err := d.page.Decode(body, order); err != nil {
		return err
	}
	d.hashPages(d.page.Data)
	i := 0
	for _, w := range d.page.PFNs {
		pfn, t, _ := stream.SplitPFNWord(w)
		c, err := d.table.set(pfn, t)
		if err != nil {
			return err
		}
		if t.HasData() {
			c.hashes[pfn&(chunkPFNs-1)] = d.hashes[i]
			i++
		}
	}
	return nil
}

// hashPages fills d.hashes with the hash of each page in data. Hashing is
// nearly all of a digest's work, so a record's pages are shared out among
// the CPUs; the goroutines end before it returns.
func (d *Digester) hashPages(data []byte) {
	n := len(data) / stream.PageSize
	if cap(d.hashes) < n {
		d.hashes = make([][16]byte, n)
	}
	d.hashes = d.hashes[:n]
	hash := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d.hashes[i] = pageHash(data[i*stream.PageSize : (i+1)*stream.PageSize])
		}
	}
	workers := min(runtime.GOMAXPROCS(0), n/minPagesPerWorker)
	if workers <= 1 {
		hash(0, n)
		return
	}
	var wg sync.WaitGroup
	per := (n + workers - 1) / workers
	for lo := per; lo < n; lo += per {
		wg.Add(1)
		go func(lo int) {
			defer wg.Done()
			hash(lo, min(lo+per, n))
		}(lo)
	}
	hash(0, min(per, n))
	wg.Wait()
}

// minPagesPerWorker keeps small records on one goroutine, where starting
// another would cost more than it saves.
const minPagesPerWorker = 64

// Page records pfn's type and content (nil for types without data); XTAB
// removes the pfn.
func (d *Digester) Page(pfn uint64, t stream.PageType, data []byte) error {
	c, err := d.table.set(pfn, t)
	if err != nil {
		return err
	}
	if t.HasData() {
		c.hashes[pfn&(chunkPFNs-1)] = pageHash(data[:stream.PageSize])
	}
	return nil
}

// SetDomainType sets the domain type (from the libxc domain header).
func (d *Digester) SetDomainType(t stream.DomainType) { d.domType = t }

// Record adds a libxc state record (other types are ignored), its body
// in the given byte order.
func (d *Digester) Record(t stream.RecordType, body []byte, order stream.ByteOrder) error {
	switch t {
	case stream.RecX86PVInfo, stream.RecX86PVP2MFrames, stream.RecSharedInfo, stream.RecX86TSCInfo,
		stream.RecHVMContext, stream.RecHVMParams, stream.RecX86CPUIDPolicy, stream.RecX86MSRPolicy,
		stream.RecX86PVVCPUBasic, stream.RecX86PVVCPUExtended, stream.RecX86PVVCPUXSave, stream.RecX86PVVCPUMSRs:
	default:
		return nil
	}
	b, err := stream.Decode(t, body, order)
	if err != nil {
		return err
	}
	var sub uint64
	switch v := b.(type) {
	case *stream.X86PVVCPU:
		if len(v.Context) == 0 {
			return nil
		}
		sub = uint64(v.VCPUID)
	case *stream.HVMParams:
		if len(v.Params) == 0 {
			return nil
		}
	}
	d.norm = b.AppendBody(d.norm[:0], binary.LittleEndian)
	d.setState(stateKey{0, uint32(t), sub}, d.norm)
	return nil
}

// Emulator adds a libxl emulator record's data.
func (d *Digester) Emulator(t libxl.RecordType, id, index uint32, data []byte) {
	if t == libxl.RecEmulatorContext || t == libxl.RecEmulatorXenstoreData {
		// The emulator id is not part of the key: the legacy qemu tail,
		// which a bare libxc stream carries, cannot say it.
		d.setState(stateKey{1, uint32(t), uint64(index)}, data)
	}
}

var zeroPage [stream.PageSize]byte

// zeroPageHash is pageHash of a zero page.
var zeroPageHash = func() (h [16]byte) {
	sum := sha256.Sum256(zeroPage[:])
	copy(h[:], sum[:])
	return h
}()

// pageHash returns the first 16 octets of p's SHA-256. Hashing is most of
// a digest's work, and zero pages are common in guest memory (40% or
// more); telling one costs a fiftieth of hashing it.
func pageHash(p []byte) (h [16]byte) {
	if bytes.Equal(p, zeroPage[:]) {
		return zeroPageHash
	}
	sum := sha256.Sum256(p)
	copy(h[:], sum[:])
	return h
}

// Pages returns the number of pfns with an entry.
func (d *Digester) Pages() int { return d.table.pages }

// Sum returns the digest as "xsd1:" and 64 hex digits. It fails only when
// the pfn table's temporary file does, or after Close.
func (d *Digester) Sum() (string, error) {
	h := sha256.New()
	var b []byte
	b = append(b, "xstream domain digest v1\x00"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(d.domType))
	keys := make([]stateKey, 0, len(d.state))
	for k := range d.state {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, c := keys[i], keys[j]
		if a.layer != c.layer {
			return a.layer < c.layer
		}
		if a.typ != c.typ {
			return a.typ < c.typ
		}
		return a.sub < c.sub
	})
	b = binary.LittleEndian.AppendUint64(b, uint64(len(keys)))
	for _, k := range keys {
		s := d.state[k]
		b = append(b, k.layer)
		b = binary.LittleEndian.AppendUint32(b, k.typ)
		b = binary.LittleEndian.AppendUint64(b, k.sub)
		b = append(b, s[:]...)
	}
	h.Write(b)
	b = binary.LittleEndian.AppendUint64(b[:0], uint64(d.Pages()))
	h.Write(b)
	err := d.table.each(func(ci uint64, c *chunk) {
		for p := c.present; p != 0; p &= p - 1 {
			i := bits.TrailingZeros64(p)
			b = binary.LittleEndian.AppendUint64(b[:0], ci<<chunkShift|uint64(i))
			b = append(b, byte(c.types[i]))
			b = append(b, c.hashes[i][:]...)
			h.Write(b)
		}
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s:%s", Version, hex.EncodeToString(h.Sum(nil))), nil
}
