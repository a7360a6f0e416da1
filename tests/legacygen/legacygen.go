// Package legacygen writes legacy (pre-v2) Xen save streams for tests and
// benchmarks: 32- and 64-bit toolstacks, PV and HVM guests, with or
// without the xl header, libxl's toolstack chunk and qemu tail, in the
// layout xc_domain_save of Xen 4.4 wrote them. The output is a function of
// the Config alone (no clock, no global randomness), and streams of any
// size are written without holding them in memory.
//
// It does not import lib/legacy, whose tests use it: the generator is an
// independent description of the format.
package legacygen

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
)

var le = binary.LittleEndian

// Page types (XEN_DOMCTL_PFINFO_*, bits 28-31 of a legacy pfn entry).
const (
	TypeNotab  = 0x0 << 28
	TypeL1     = 0x1 << 28
	TypeL2     = 0x2 << 28
	TypeL3     = 0x3 << 28
	TypeL4     = 0x4 << 28
	TypePinned = 0x8 << 28
	TypeBroken = 0xd << 28
	TypeXAlloc = 0xe << 28
	TypeXTab   = 0xf << 28
)

// Physmap is one entry of libxl's legacy toolstack chunk.
type Physmap struct {
	Phys, Start, Size uint64
	Name              string
}

// Config describes a stream. The zero value of each field is a sensible
// default, noted beside it.
type Config struct {
	Width       int  // toolstack word size: 32 or 64
	HVM         bool // HVM guest, else PV
	PVGuestBits int  // PV guest width: 32 or 64 (default: Width)

	Pages   int    // pages of guest memory, pfns 0..Pages-1 (default 64)
	P2MSize uint64 // p2m size (default: Pages; HVM: max(Pages, 0xff000))
	Batch   int    // pages per batch, 1..1024 (default 1024)
	Seed    uint64 // page contents and the other arbitrary values

	// Live rounds: after the first pass, Rounds passes resend every
	// ResendEvery'th page.
	Rounds      int
	ResendEvery int // default 7

	VerifyMode bool // ENABLE_VERIFY_MODE, then every page once more
	TSCFirst   bool // the TSC_INFO chunk before the pages (a non-live save)
	NoTSC      bool

	// PV.
	VCPUs     []int // online vCPU ids (default {0})
	MaxVCPUID int   // default: the highest online id
	Extended  bool  // "extv" block and extended contexts
	XSave     int   // "xcnt" XSAVE size, header included (0: none)
	Unmapped  int   // entries in the tail's unmapped pfn list
	Special   bool  // BROKEN, XALLOC and XTAB|pfn entries after the pages
	BareXTab  int   // bare XTAB entries (0xf0000000) in each batch
	EmptyXTab bool  // one extra batch of bare XTAB entries only

	// HVM.
	HVMParams  bool // every HVM parameter chunk
	Toolstack  []Physmap
	EmptyTS    bool   // a toolstack chunk of size 0
	OpaqueTS   int    // an opaque toolstack chunk of this size (not physmap)
	QemuTail   int    // octets of DeviceModelRecord0002 data (HVM; 0: none)
	QemuSig    string // another signature for the tail (default DeviceModelRecord0002)
	ContextLen int    // octets of CPU records in the HVM context (default 1024)

	XL     bool   // an xl header in front
	XLJSON bool   // its config is JSON (mandatory flag 0)
	Config string // the xl config (default: a small one)
}

func (c Config) withDefaults() Config {
	if c.PVGuestBits == 0 {
		c.PVGuestBits = c.Width
	}
	if c.Pages == 0 {
		c.Pages = 64
	}
	if c.P2MSize == 0 {
		c.P2MSize = uint64(c.Pages)
		if c.HVM {
			c.P2MSize = max(uint64(c.Pages), 0xff000)
		}
	}
	if c.Batch == 0 {
		c.Batch = 1024
	}
	if c.ResendEvery == 0 {
		c.ResendEvery = 7
	}
	if len(c.VCPUs) == 0 {
		c.VCPUs = []int{0}
	}
	for _, v := range c.VCPUs {
		c.MaxVCPUID = max(c.MaxVCPUID, v)
	}
	if c.ContextLen == 0 {
		c.ContextLen = 1024
	}
	if c.QemuSig == "" {
		c.QemuSig = "DeviceModelRecord0002"
	}
	if c.Config == "" {
		c.Config = fmt.Sprintf("name = \"gen-%d\"\nmemory = %d\n", c.Seed, c.Pages*4/1024+1)
	}
	return c
}

// gen holds the writer state.
type gen struct {
	c   Config
	w   *bufio.Writer
	rng *rand.Rand
	err error
	pg  []byte // one batch of pages
}

// Write writes the stream c describes to w.
func Write(w io.Writer, c Config) error {
	c = c.withDefaults()
	if c.Width != 32 && c.Width != 64 {
		return fmt.Errorf("legacygen: width %d", c.Width)
	}
	if c.Batch < 1 || c.Batch > 1024 {
		return fmt.Errorf("legacygen: batch %d", c.Batch)
	}
	g := &gen{c: c, w: bufio.NewWriterSize(w, 1<<20), rng: rand.New(rand.NewPCG(c.Seed, 0x1e9ac))}
	g.stream()
	if g.err != nil {
		return g.err
	}
	return g.w.Flush()
}

func (g *gen) put(b []byte) {
	if g.err == nil {
		_, g.err = g.w.Write(b)
	}
}
func (g *gen) u32(v uint32) { g.put(le.AppendUint32(nil, v)) }
func (g *gen) u64(v uint64) { g.put(le.AppendUint64(nil, v)) }
func (g *gen) ulong(v uint64) {
	if g.c.Width == 32 {
		g.u32(uint32(v))
	} else {
		g.u64(v)
	}
}
func (g *gen) random(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return b
}

func (g *gen) stream() {
	c := g.c
	if c.XL {
		g.xlHeader()
	}
	g.ulong(c.P2MSize)
	if !c.HVM {
		g.extendedInfo()
		g.p2mFrames()
	}
	if c.TSCFirst && !c.NoTSC {
		g.tsc()
	}
	pfns := make([]int, c.Pages)
	for i := range pfns {
		pfns[i] = i
	}
	g.pages(pfns, true)
	for r := 0; r < c.Rounds; r++ {
		var re []int
		for p := r % c.ResendEvery; p < c.Pages; p += c.ResendEvery {
			re = append(re, p)
		}
		g.pages(re, false)
	}
	if c.EmptyXTab {
		g.u32(uint32(max(c.BareXTab, 3)))
		for i := 0; i < max(c.BareXTab, 3); i++ {
			g.ulong(TypeXTab)
		}
	}
	if c.VerifyMode {
		g.u32(0xffffffff) // ENABLE_VERIFY_MODE
		g.pages(pfns, false)
	}
	g.vcpuInfo()
	if !c.TSCFirst && !c.NoTSC {
		g.tsc()
	}
	if c.HVM && c.HVMParams {
		for i, m := range []int32{-14, -3, -15, -16, -17, -4, -8, -10, -11, -19, -20} {
			g.u32(uint32(m))
			g.u32(0)
			g.u64(0xfe000 + uint64(i))
		}
	}
	if c.Toolstack != nil || c.EmptyTS || c.OpaqueTS > 0 {
		g.toolstack()
	}
	g.u32(uint32(0xfffffff7)) // LAST_CHECKPOINT
	g.u32(0)                  // END
	if c.HVM {
		g.hvmTail()
	} else {
		g.pvTail()
	}
}

func (g *gen) xlHeader() {
	g.put([]byte("Xen saved domain, xl format\n \x00 \r"))
	flags := uint32(0)
	if g.c.XLJSON {
		flags = 1
	}
	g.u32(0x01020304)
	g.u32(flags)
	g.u32(0)
	g.u32(uint32(4 + len(g.c.Config)))
	g.u32(uint32(len(g.c.Config)))
	g.put([]byte(g.c.Config))
}

func (g *gen) ctxSize() int {
	if g.c.PVGuestBits == 32 {
		return 0xaf0
	}
	return 0x1430
}

func (g *gen) extendedInfo() {
	c := g.c
	total := 8 + g.ctxSize()
	if c.Extended {
		total += 8
	}
	if c.XSave > 0 {
		total += 16
	}
	g.ulong(^uint64(0) >> (64 - c.Width))
	g.u32(uint32(total))
	g.put([]byte("vcpu"))
	g.u32(uint32(g.ctxSize()))
	g.put(g.random(g.ctxSize()))
	if c.Extended {
		g.put([]byte("extv"))
		g.u32(0)
	}
	if c.XSave > 0 {
		g.put([]byte("xcnt"))
		g.u32(8)
		g.u32(uint32(c.XSave))
		g.u32(0)
	}
}

func (g *gen) p2mFrames() {
	fpp := uint64(4096 / (g.c.PVGuestBits / 8))
	n := (g.c.P2MSize-1)/fpp + 1
	for i := uint64(0); i < n; i++ {
		g.ulong(0x12340 + i)
	}
}

// pageType gives PV pages a spread of types; HVM pages are all notab.
func (g *gen) pageType(pfn int) uint64 {
	if g.c.HVM {
		return TypeNotab
	}
	switch pfn % 61 {
	case 3:
		return TypeL1
	case 5:
		return TypeL2
	case 7:
		if g.c.PVGuestBits == 32 {
			return TypeL3 | TypePinned
		}
		return TypeL3
	case 11:
		if g.c.PVGuestBits == 64 {
			return TypeL4 | TypePinned
		}
		return TypeL2
	}
	return TypeNotab
}

// pages writes batches for pfns; the first pass adds the special entries.
func (g *gen) pages(pfns []int, first bool) {
	c := g.c
	type ent struct {
		v    uint64
		data bool
	}
	var ents []ent
	for _, p := range pfns {
		ents = append(ents, ent{g.pageType(p) | uint64(p), true})
	}
	if first && c.Special && c.Pages > 8 {
		ents = append(ents,
			ent{TypeBroken | uint64(c.Pages-1), false},
			ent{TypeXAlloc | uint64(c.Pages-2), false},
			ent{TypeXTab | uint64(c.Pages-3), false})
	}
	for len(ents) > 0 {
		n := min(c.Batch-c.BareXTab, len(ents))
		if n <= 0 {
			n = 1
		}
		batch := ents[:n]
		ents = ents[n:]
		total := n + min(c.BareXTab, c.Batch-n)
		g.u32(uint32(total))
		for i, e := range batch {
			if i == n/2 {
				for j := 0; j < total-n; j++ {
					g.ulong(TypeXTab)
				}
			}
			g.ulong(e.v)
		}
		for _, e := range batch {
			if e.data {
				g.page(e.v & 0x0fffffff)
			}
		}
	}
}

// page writes one page: a per-seed pattern with the pfn and seed stamped
// in front. Cheap enough for gigabyte streams.
func (g *gen) page(pfn uint64) {
	if g.pg == nil {
		g.pg = make([]byte, 4096)
		r := rand.New(rand.NewPCG(g.c.Seed, 7))
		for i := range g.pg {
			g.pg[i] = byte(r.Uint32())
		}
	}
	le.PutUint64(g.pg, pfn)
	le.PutUint64(g.pg[8:], g.c.Seed)
	le.PutUint64(g.pg[4088:], pfn*0x9e3779b97f4a7c15)
	g.put(g.pg)
}

func (g *gen) vcpuInfo() {
	c := g.c
	g.u32(uint32(0xfffffffe)) // VCPU_INFO
	g.u32(uint32(c.MaxVCPUID))
	words := make([]uint64, c.MaxVCPUID/64+1)
	for _, v := range c.VCPUs {
		words[v/64] |= 1 << (v % 64)
	}
	for _, w := range words {
		g.u64(w)
	}
}

func (g *gen) tsc() {
	g.u32(uint32(0xfffffff9)) // TSC_INFO
	g.u32(1)                  // mode
	g.u64(0x11f71fb04cb + g.c.Seed)
	g.u32(2394007) // kHz
	g.u32(2)       // incarnation
}

func (g *gen) toolstack() {
	c := g.c
	g.u32(uint32(0xffffffee)) // TOOLSTACK
	switch {
	case c.EmptyTS:
		g.u32(0)
		return
	case c.OpaqueTS > 0:
		g.u32(uint32(c.OpaqueTS))
		g.put(g.random(c.OpaqueTS))
		return
	}
	var b []byte
	b = le.AppendUint32(b, 1)
	b = le.AppendUint32(b, uint32(len(c.Toolstack)))
	for _, p := range c.Toolstack {
		b = le.AppendUint64(b, p.Phys)
		b = le.AppendUint64(b, p.Start)
		b = le.AppendUint64(b, p.Size)
		b = le.AppendUint32(b, uint32(len(p.Name)+1))
		b = append(b, p.Name...)
		b = append(b, 0)
		if c.Width == 64 {
			b = append(b, 0xde, 0xad, 0xbe, 0xef) // the struct's tail padding, leaked
		}
	}
	g.u32(uint32(len(b)))
	g.put(b)
}

func (g *gen) pvTail() {
	c := g.c
	g.u32(uint32(c.Unmapped))
	for i := 0; i < c.Unmapped; i++ {
		g.ulong(uint64(c.Pages + i))
	}
	for range c.VCPUs {
		g.put(g.random(g.ctxSize()))
		if c.Extended {
			g.put(g.random(128))
		}
		if c.XSave > 0 {
			g.u64(7)
			g.u64(uint64(c.XSave - 16))
			g.put(g.random(c.XSave - 16))
		}
	}
	g.put(g.random(4096)) // shared info
}

func (g *gen) hvmTail() {
	c := g.c
	top := c.P2MSize - 0x10
	g.u64(top)
	g.u64(top + 1)
	g.u64(top + 2)
	// The HVM context: Xen's save header, CPU records, END.
	var b []byte
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, 24)
	b = le.AppendUint32(b, 0x54381286) // HVM_FILE_MAGIC
	b = le.AppendUint32(b, 1)
	b = le.AppendUint64(b, ^uint64(0))
	b = le.AppendUint32(b, 0x306c3)
	b = le.AppendUint32(b, 2394007)
	for i, left := 0, c.ContextLen; left > 0; i++ {
		n := min(left, 1024)
		b = le.AppendUint16(b, 2)
		b = le.AppendUint16(b, uint16(i))
		b = le.AppendUint32(b, uint32(n))
		b = append(b, g.random(n)...)
		left -= n
	}
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // END
	g.u32(uint32(len(b)))
	g.put(b)
	if c.QemuTail > 0 {
		g.put([]byte(c.QemuSig))
		g.u32(uint32(c.QemuTail))
		g.put(g.random(c.QemuTail))
	}
}

// Ambiguous returns a stream of at least n octets that reads correctly as
// two layouts for its first n octets: as a 32-bit HVM stream with an empty
// body and a 1 MiB HVM context, and as a 64-bit HVM stream of one-page
// batches (the context's header is the first page's data). Detection must
// ask which, not guess.
func Ambiguous(n int) []byte {
	var b []byte
	b = le.AppendUint32(b, 0x100) // p2m size (64-bit: with the next word)
	b = le.AppendUint32(b, 0)     // 32-bit: END; 64-bit: upper half of the p2m size
	for i := 0; len(b) < n; i++ {
		b = le.AppendUint32(b, 1)               // 64-bit: a batch of one
		b = le.AppendUint64(b, uint64(i%0x100)) // its pfn entry
		b = append(b, make([]byte, 4096)...)    // its page
	}
	// 32-bit reading: octets 8-31 are the magic pfns, 32-35 the context
	// size, 36- the context, starting with Xen's save header.
	copy(b[32:], le.AppendUint32(nil, 1<<20))
	copy(b[36:], []byte{1, 0, 0, 0, 24, 0, 0, 0})
	copy(b[44:], le.AppendUint32(nil, 0x54381286))
	return b
}
