package gen

import (
	"encoding/binary"
	"fmt"
	"iter"

	"github.com/xstream/xstream/lib/stream"
)

// pvLayout places a PV guest's system pages at the top of its memory:
//
//	... ordinary pages ... | start info | xenstore ring | console ring |
//	GDT frame per vCPU | p2m frames | L4 ×2 (pinned) | L3 | L2 | L1 ...
//
// so the page tables come in the last PAGE_DATA records.
type pvLayout struct {
	pages                        uint64
	vcpus                        int
	startInfo, xenstore, console uint64
	gdt                          uint64 // first GDT frame, one per vCPU
	p2m, p2mFrames               uint64
	l4, l3, l2, l1               uint64 // first table of each level
	nL4, nL3, nL2, nL1           uint64
	sysStart                     uint64 // first system page
	mfnBase                      uint64 // mfn of pfn 0 in the guest's p2m
	kernelL4, userL4             uint64
}

// pfnsPerFrame is how many 8-octet p2m entries fill a page.
const pfnsPerFrame = pageSize / 8

// pinEvery marks one L1 table in this many as pinned.
const pinEvery = 4

func newPVLayout(pages uint64, vcpus int) (pvLayout, error) {
	l := pvLayout{pages: pages, vcpus: vcpus}
	l.p2mFrames = (pages-1)/pfnsPerFrame + 1
	l.nL4 = 2                                       // kernel and user, both pinned
	l.nL3 = 1 + pages/(1<<27)                       // one per 512 GiB mapped
	l.nL2 = 1 + pages/(1<<18)                       // one per GiB
	l.nL1 = 1 + (pages+pfnsPerFrame-1)/pfnsPerFrame // the direct map, and one more
	sys := 3 + uint64(vcpus) + l.p2mFrames + l.nL4 + l.nL3 + l.nL2 + l.nL1
	if sys >= pages {
		return l, fmt.Errorf("gen: %d pages are too few for a PV guest with %d vCPUs: its system pages alone take %d", pages, vcpus, sys)
	}
	l.sysStart = pages - sys
	next := l.sysStart
	take := func(n uint64) uint64 { p := next; next += n; return p }
	l.startInfo, l.xenstore, l.console = take(1), take(1), take(1)
	l.gdt = take(uint64(vcpus))
	l.p2m = take(l.p2mFrames)
	l.l4, l.l3, l.l2, l.l1 = take(l.nL4), take(l.nL3), take(l.nL2), take(l.nL1)
	l.kernelL4, l.userL4 = l.l4, l.l4+1
	l.mfnBase = 0x120000
	return l, nil
}

func (l *pvLayout) pageType(pfn uint64) stream.PageType {
	switch {
	case pfn < l.l4:
		return stream.PageNotab
	case pfn < l.l3:
		return stream.PageL4Pin
	case pfn < l.l2:
		return stream.PageL3Tab
	case pfn < l.l1:
		return stream.PageL2Tab
	case (pfn-l.l1)%pinEvery == 1:
		return stream.PageL1Pin
	}
	return stream.PageL1Tab
}

// segment is a run of HVM pfns of one kind.
type segment struct {
	start, n uint64
	kind     segKind
}

type segKind uint8

const (
	segRAM segKind = iota
	segHole
	segSpecial
)

// hvmSegments lays out an HVM guest's pfns in increasing order: RAM from
// 0 with the hole cut out, up to the MMIO hole below 4 GiB; Xen's
// special pages; the rest of RAM from 4 GiB.
func hvmSegments(pages uint64, h *Hole) []segment {
	hole := Hole{vgaHoleStart, vgaHoleLen}
	if h != nil {
		hole = *h
	}
	var segs []segment
	left := pages
	ram := func(start, end uint64) uint64 {
		n := min(left, end-start)
		if n > 0 {
			segs = append(segs, segment{start, n, segRAM})
			left -= n
		}
		return start + n
	}
	low := uint64(0)
	if hole.Len > 0 {
		low = ram(0, hole.Start)
		if left > 0 {
			segs = append(segs, segment{hole.Start, hole.Len, segHole})
			low = hole.Start + hole.Len
		}
	}
	ram(low, hvmMMIOStart)
	segs = append(segs, segment{hvmSpecialStart, hvmSpecialPages, segSpecial})
	ram(hvmHighStart, hvmHighStart+pages)
	return segs
}

// PFNs yields the pfns a round sends, with their types, in stream
// order: every pfn in round 0, the ones dirtied since the last
// checkpoint in later rounds (about one in eight, and always the
// console ring).
func (d *Domain) PFNs(round int) iter.Seq2[uint64, stream.PageType] {
	return func(yield func(uint64, stream.PageType) bool) {
		console := d.pv.console
		if d.opts.Type == stream.DomainX86HVM {
			console = hvmSpecialStart + 7
		}
		dirty := func(pfn uint64) bool {
			return round == 0 || pfn == console || hash(d.opts.Seed, saltDirty, pfn, uint64(round))%8 == 0
		}
		if d.opts.Type == stream.DomainX86PV {
			for pfn := uint64(0); pfn < d.pv.pages; pfn++ {
				if dirty(pfn) && !yield(pfn, d.pv.pageType(pfn)) {
					return
				}
			}
			return
		}
		for _, s := range d.hvm {
			for pfn := s.start; pfn < s.start+s.n; pfn++ {
				t := stream.PageNotab
				if s.kind == segHole {
					if round > 0 {
						continue
					}
					t = stream.PageXTab
				}
				if dirty(pfn) && !yield(pfn, t) {
					return
				}
			}
		}
	}
}

// Page fills p (one page) with the content of pfn in the given round.
func (d *Domain) Page(p []byte, pfn uint64, round int) {
	p = p[:pageSize]
	if d.opts.Fill != FillRealistic {
		d.fill.ordinary(p, pfn, round)
		return
	}
	if d.opts.Type == stream.DomainX86PV {
		d.pvPage(p, pfn, round)
		return
	}
	switch pfn {
	case hvmSpecialStart + 4: // xenstore ring
		clear(p)
		xenstoreRing(p, d.opts.Name)
	case hvmSpecialStart + 7: // console ring
		clear(p)
		consoleRing(p, hash(d.opts.Seed, saltPage, pfn, uint64(round)))
	default:
		if pfn >= hvmSpecialStart && pfn < hvmSpecialStart+hvmSpecialPages {
			clear(p) // cleared by the domain builder, unused since
			return
		}
		d.fill.ordinary(p, pfn, round)
	}
}

// Page-table entry flags.
const (
	ptePresent  = 1 << 0
	pteRW       = 1 << 1
	pteUser     = 1 << 2
	pteAccessed = 1 << 5
	pteDirty    = 1 << 6
	pteNX       = 1 << 63

	pteTable  = ptePresent | pteRW | pteUser | pteAccessed | pteDirty // 0x67
	pteKernel = ptePresent | pteRW | pteAccessed | pteDirty | pteNX
)

func (d *Domain) pvPage(p []byte, pfn uint64, round int) {
	l := &d.pv
	if pfn < l.sysStart {
		d.fill.ordinary(p, pfn, round)
		return
	}
	clear(p)
	le := binary.LittleEndian // x86 guest memory
	switch {
	case pfn == l.startInfo:
		startInfo(p, l)
	case pfn == l.xenstore:
		xenstoreRing(p, d.opts.Name)
	case pfn == l.console:
		consoleRing(p, hash(d.opts.Seed, saltPage, pfn, uint64(round)))
	case pfn < l.p2m: // a GDT frame
		gdt(p)
	case pfn < l.l4: // the p2m: mfn of every pfn, invalid past the end
		first := (pfn - l.p2m) * pfnsPerFrame
		for i := uint64(0); i < pfnsPerFrame; i++ {
			mfn := ^uint64(0)
			if first+i < l.pages {
				mfn = l.mfnBase + first + i
			}
			le.PutUint64(p[8*i:], mfn)
		}
	case pfn < l.l3: // L4: the direct map (slot 272), the kernel (511), user space (0)
		i := pfn - l.l4
		if i == 0 {
			le.PutUint64(p[8*272:], l.l3<<12|pteTable)
			le.PutUint64(p[8*511:], (l.l3+l.nL3-1)<<12|pteTable)
		} else {
			le.PutUint64(p[0:], l.l3<<12|pteTable)
		}
	case pfn < l.l2: // L3 → L2 tables
		i := pfn - l.l3
		for j := i; j < l.nL2; j += l.nL3 {
			le.PutUint64(p[8*(j/l.nL3%512):], (l.l2+j)<<12|pteTable)
		}
	case pfn < l.l1: // L2 → L1 tables
		i := pfn - l.l2
		for j := i * 512; j < l.nL1 && j < (i+1)*512; j++ {
			le.PutUint64(p[8*(j%512):], (l.l1+j)<<12|pteTable)
		}
	default: // L1: the direct map of 512 pfns
		first := (pfn - l.l1) * pfnsPerFrame
		for i := uint64(0); i < pfnsPerFrame && first+i < l.pages; i++ {
			le.PutUint64(p[8*i:], (first+i)<<12|pteKernel)
		}
	}
}

// startInfo writes a 64-bit start_info page (public/xen.h): the fields
// Xen's restorer reads (store_mfn, console.domU.mfn) and a few others.
func startInfo(p []byte, l *pvLayout) {
	le := binary.LittleEndian
	copy(p[0:32], "xen-3.0-x86_64")
	le.PutUint64(p[32:], l.pages)                     // nr_pages
	le.PutUint32(p[48:], 0)                           // flags
	le.PutUint64(p[56:], l.xenstore)                  // store_mfn (a pfn in the stream)
	le.PutUint32(p[64:], 1)                           // store_evtchn
	le.PutUint64(p[72:], l.console)                   // console.domU.mfn
	le.PutUint32(p[80:], 2)                           // console.domU.evtchn
	le.PutUint64(p[88:], 0xffffffff80000000+l.l4<<12) // pt_base
	le.PutUint64(p[96:], l.nL4+l.nL3+l.nL2+l.nL1)     // nr_pt_frames
	le.PutUint64(p[104:], 0xffffc90000000000)         // mfn_list
	copy(p[128:], "root=/dev/xvda1 ro console=hvc0")
}

// gdt writes a guest's GDT frame: the flat 64-bit descriptors.
func gdt(p []byte) {
	le := binary.LittleEndian
	for i, desc := range []uint64{
		0,
		0x00af9a000000ffff, // kernel code, 64-bit
		0x00cf92000000ffff, // kernel data
		0x00cffa000000ffff, // user code, 32-bit
		0x00cff2000000ffff, // user data
		0x00affa000000ffff, // user code, 64-bit
	} {
		le.PutUint64(p[8*i:], desc)
	}
}

// xenstoreRing writes a struct xenstore_domain_interface (io/xs_wire.h)
// with a few answered requests in it.
func xenstoreRing(p []byte, name string) {
	le := binary.LittleEndian
	n := copy(p[0:1024], "name\x00device/vbd\x00control/shutdown\x00")
	m := copy(p[1024:2048], name+"\x0051712\x00\x00")
	le.PutUint32(p[2048:], uint32(n)) // req_cons
	le.PutUint32(p[2052:], uint32(n)) // req_prod
	le.PutUint32(p[2056:], uint32(m)) // rsp_cons
	le.PutUint32(p[2060:], uint32(m)) // rsp_prod
}

// consoleRing writes a struct xencons_interface (io/console.h) whose
// output ring holds boot messages.
func consoleRing(p []byte, h uint64) {
	textPage(p[1024:3072], h)
	le := binary.LittleEndian
	le.PutUint32(p[3080:], 2048) // out_cons
	le.PutUint32(p[3084:], 2048) // out_prod
}
