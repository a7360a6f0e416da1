package gen

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/xstream/xstream/lib/stream"
)

// StaticRecords returns the records that precede STATIC_DATA_END: for a
// PV guest X86_PV_INFO, and in a version 3 stream the CPU policies.
func (d *Domain) StaticRecords() []stream.Body {
	var recs []stream.Body
	if d.opts.Type == stream.DomainX86PV {
		recs = append(recs, &stream.X86PVInfo{GuestWidth: 8, PTLevels: 4})
	}
	if d.opts.Version >= stream.Version3 {
		recs = append(recs, cpuidPolicy(), msrPolicy())
	}
	return recs
}

// P2MFrames returns a PV guest's X86_PV_P2M_FRAMES record, nil for HVM.
func (d *Domain) P2MFrames() *stream.X86PVP2MFrames {
	if d.opts.Type != stream.DomainX86PV {
		return nil
	}
	l := &d.pv
	p := &stream.X86PVP2MFrames{StartPFN: 0, EndPFN: uint32(l.pages - 1)}
	for i := uint64(0); i < l.p2mFrames; i++ {
		p.Frames = append(p.Frames, l.p2m+i)
	}
	return p
}

// StateRecords returns the records that close a round, after its pages:
// for PV X86_TSC_INFO, SHARED_INFO and each vCPU's records, for HVM
// X86_TSC_INFO, HVM_PARAMS and HVM_CONTEXT.
func (d *Domain) StateRecords(round int) []stream.Body {
	recs := []stream.Body{d.tscInfo(round)}
	if d.opts.Type == stream.DomainX86PV {
		recs = append(recs, &stream.Blob{T: stream.RecSharedInfo, Data: d.sharedInfo(round)})
		for v := 0; v < d.opts.VCPUs; v++ {
			recs = append(recs,
				&stream.X86PVVCPU{Kind: stream.RecX86PVVCPUBasic, VCPUID: uint32(v), Context: d.vcpuBasic(v, round)},
				&stream.X86PVVCPU{Kind: stream.RecX86PVVCPUExtended, VCPUID: uint32(v), Context: vcpuExtended(v)},
				&stream.X86PVVCPU{Kind: stream.RecX86PVVCPUXSave, VCPUID: uint32(v), Context: vcpuXSave()},
			)
		}
		return recs
	}
	return append(recs, hvmParams(), &stream.Blob{T: stream.RecHVMContext, Data: d.hvmContext(round)})
}

// uptime is the guest's system time at a round, in nanoseconds.
func (d *Domain) uptime(round int) uint64 {
	return 41_552_314_097 + uint64(d.opts.Seed&0xffff)*1_000_000 + uint64(round)*100_000_000
}

const tscKHz = 2_394_000

func (d *Domain) tscInfo(round int) *stream.X86TSCInfo {
	return &stream.X86TSCInfo{Mode: 0, KHz: tscKHz, Nsec: d.uptime(round), Incarnation: 1}
}

// cpuidPolicy returns a plausible policy of an Intel server CPU, as
// xen_cpuid_leaf_t entries (public/arch-x86/xen.h).
func cpuidPolicy() *stream.X86CPUIDPolicy {
	const none = 0xffffffff // XEN_CPUID_NO_SUBLEAF
	str := func(s string) (a, b, c, d uint32) {
		var w [16]byte
		copy(w[:], s)
		le := binary.LittleEndian
		return le.Uint32(w[0:]), le.Uint32(w[4:]), le.Uint32(w[8:]), le.Uint32(w[12:])
	}
	leaf := func(l, s uint32, a, b, c, d uint32) stream.CPUIDLeaf {
		return stream.CPUIDLeaf{Leaf: l, Subleaf: s, A: a, B: b, C: c, D: d}
	}
	brand := "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz\x00\x00\x00\x00\x00\x00\x00\x00"
	var leaves []stream.CPUIDLeaf
	leaves = append(leaves,
		leaf(0x0, none, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69), // "GenuineIntel"
		leaf(0x1, none, 0x00050654, 0x00000800, 0xfefa3203, 0x178bfbff),
		leaf(0x2, none, 0x00feff01, 0xf0, 0, 0),
		leaf(0x4, 0, 0x00000121, 0x01c0003f, 0x3f, 0),
		leaf(0x4, 1, 0x00000122, 0x01c0003f, 0x3f, 0),
		leaf(0x4, 2, 0x00000143, 0x03c0003f, 0x3ff, 0),
		leaf(0x4, 3, 0x00000163, 0x0280003f, 0x5fff, 4),
		leaf(0x7, 0, 0, 0xd19f4fbb, 0x8, 0xbc000400),
		leaf(0xd, 0, 0x7, 0x340, 0x340, 0),
		leaf(0xd, 1, 0x1, 0, 0, 0),
		leaf(0xd, 2, 0x100, 0x240, 0, 0),
		leaf(0x80000000, none, 0x80000008, 0, 0, 0),
		leaf(0x80000001, none, 0, 0, 0x121, 0x2c100800),
	)
	for i := 0; i < 3; i++ {
		a, b, c, d := str(brand[16*i:])
		leaves = append(leaves, leaf(0x80000002+uint32(i), none, a, b, c, d))
	}
	leaves = append(leaves,
		leaf(0x80000006, none, 0, 0, 0x01006040, 0),
		leaf(0x80000007, none, 0, 0, 0, 0x100),
		leaf(0x80000008, none, 0x0000302e, 0, 0, 0),
	)
	return &stream.X86CPUIDPolicy{Leaves: leaves}
}

// msrPolicy returns the two MSRs Xen 4.17 sends: MSR_INTEL_PLATFORM_INFO
// and MSR_ARCH_CAPABILITIES.
func msrPolicy() *stream.X86MSRPolicy {
	return &stream.X86MSRPolicy{MSRs: []stream.MSREntry{{Index: 0xce}, {Index: 0x10a}}}
}

// Offsets in a 64-bit vcpu_guest_context (public/arch-x86/xen.h and
// xen-x86_64.h), 0x1430 octets.
const (
	vcpuBasicSize = 0x1430

	vgcFlags        = 512 // after fpu_ctxt[512]
	vgcRegs         = 520 // struct cpu_user_regs
	vgcRDX          = vgcRegs + 12*8
	vgcRIP          = vgcRegs + 16*8
	vgcCS           = vgcRIP + 8
	vgcRFLAGS       = vgcCS + 8
	vgcRSP          = vgcRFLAGS + 8
	vgcSS           = vgcRSP + 8
	vgcTraps        = 720 // trap_ctxt[256], 16 octets each
	vgcGDTFrames    = 4832
	vgcGDTEnts      = 4960
	vgcKernelSS     = 4968
	vgcKernelSP     = 4976
	vgcCtrlReg      = 4984 // ctrlreg[8]
	vgcDebugReg     = 5048 // debugreg[8]
	vgcEventCB      = 5112
	vgcFailsafeCB   = 5120
	vgcSyscallCB    = 5128
	vgcVMAssist     = 5136
	vgcGSBaseKernel = 5152

	vgcfI387Valid = 1 << 0
	vgcfInKernel  = 1 << 2
	vgcfOnline    = 1 << 5

	flatKernelCS64 = 0xe033
	flatKernelSS64 = 0xe02b
	kernelText     = 0xffffffff81000000
)

// vcpuBasic returns vCPU v's context: registers of a guest idling in its
// kernel, CR3 and CR1 naming the pinned L4 tables, one GDT frame, and
// for vCPU 0 the start info pfn in RDX, as Xen's restorer expects.
func (d *Domain) vcpuBasic(v, round int) []byte {
	l := &d.pv
	le := binary.LittleEndian
	c := make([]byte, vcpuBasicSize)
	le.PutUint16(c[0:], 0x037f)  // FCW
	le.PutUint32(c[24:], 0x1f80) // MXCSR
	le.PutUint32(c[28:], 0xffff) // MXCSR mask
	le.PutUint64(c[vgcFlags:], vgcfI387Valid|vgcfInKernel|vgcfOnline)
	if v == 0 {
		le.PutUint64(c[vgcRDX:], l.startInfo)
	}
	le.PutUint64(c[vgcRIP:], kernelText+0x3a0+uint64(round)%4*0x10)
	le.PutUint64(c[vgcCS:], flatKernelCS64)
	le.PutUint64(c[vgcRFLAGS:], 0x246)
	stack := 0xffffc90000000000 + uint64(v+1)*0x4000 - 0x58
	le.PutUint64(c[vgcRSP:], stack)
	le.PutUint64(c[vgcSS:], flatKernelSS64)
	for vec := 0; vec < 20; vec++ {
		e := c[vgcTraps+16*vec:]
		e[0] = byte(vec)
		if vec == 3 || vec == 4 {
			e[1] = 3 // int3 and into are allowed from ring 3
		}
		le.PutUint16(e[2:], flatKernelCS64)
		le.PutUint64(e[8:], kernelText+0xa00000+uint64(vec)*0x40)
	}
	le.PutUint64(c[vgcGDTFrames:], l.gdt+uint64(v))
	le.PutUint64(c[vgcGDTEnts:], 16)
	le.PutUint64(c[vgcKernelSS:], flatKernelSS64)
	le.PutUint64(c[vgcKernelSP:], stack+0x58)
	le.PutUint64(c[vgcCtrlReg+0*8:], 0x8005003b)         // CR0
	le.PutUint64(c[vgcCtrlReg+1*8:], l.userL4<<12|1)     // CR1: the user L4, valid
	le.PutUint64(c[vgcCtrlReg+3*8:], l.kernelL4<<12)     // CR3 (a pfn in the stream)
	le.PutUint64(c[vgcCtrlReg+4*8:], 0x2660)             // CR4
	le.PutUint64(c[vgcDebugReg+6*8:], 0xffff0ff0)        // DR6
	le.PutUint64(c[vgcDebugReg+7*8:], 0x400)             // DR7
	le.PutUint64(c[vgcEventCB:], kernelText+0xc01000)    // xen_hypervisor_callback
	le.PutUint64(c[vgcFailsafeCB:], kernelText+0xc01100) // xen_failsafe_callback
	le.PutUint64(c[vgcSyscallCB:], kernelText+0xc00000)  // entry_SYSCALL_64
	le.PutUint64(c[vgcVMAssist:], 1<<2|1<<3)             // writable page tables, PAE extended CR3
	le.PutUint64(c[vgcGSBaseKernel:], 0xffff888000000000+uint64(v)*0x40000)
	return c
}

// vcpuExtended returns a 64-octet extended context, the size Xen 4.17
// sends (struct xen_domctl_ext_vcpucontext, at most 128).
func vcpuExtended(v int) []byte {
	c := make([]byte, 64)
	le := binary.LittleEndian
	le.PutUint32(c[0:], uint32(v))
	le.PutUint32(c[4:], 64)
	return c
}

// vcpuXSave returns an xsave context: XCR0 and its accumulated value,
// then an XSAVE area for x87, SSE and AVX state (848 octets in all).
func vcpuXSave() []byte {
	c := make([]byte, 16+832)
	le := binary.LittleEndian
	le.PutUint64(c[0:], 7)          // XCR0: x87, SSE, AVX
	le.PutUint64(c[8:], 7)          // XCR0 accumulated
	le.PutUint16(c[16:], 0x037f)    // FCW
	le.PutUint32(c[16+24:], 0x1f80) // MXCSR
	le.PutUint64(c[16+512:], 3)     // XSTATE_BV
	return c
}

// sharedInfo returns a 64-bit struct shared_info page (public/xen.h):
// vcpu_info time records, event-channel masks, wallclock, and the
// arch_shared_info fields of a PV guest.
func (d *Domain) sharedInfo(round int) []byte {
	p := make([]byte, pageSize)
	le := binary.LittleEndian
	now := d.uptime(round)
	for v := 0; v < min(d.opts.VCPUs, 32); v++ {
		vi := p[64*v:]
		le.PutUint32(vi[32:], uint32(2*(round+1)))  // time.version
		le.PutUint64(vi[40:], now/1000*tscKHz/1000) // tsc_timestamp
		le.PutUint64(vi[48:], now)                  // system_time
		le.PutUint32(vi[56:], 0xd5e3b6c5)           // tsc_to_system_mul
		vi[60] = 0xff                               // tsc_shift -1
		vi[61] = 1                                  // flags: TSC stable
	}
	for w := 0; w < 64; w++ { // evtchn_mask: all but the first ports
		le.PutUint64(p[2560+8*w:], ^uint64(0))
	}
	le.PutUint64(p[2560:], ^uint64(0)<<(8+4*min(d.opts.VCPUs, 14)))
	le.PutUint32(p[3072:], 2)          // wc_version
	le.PutUint32(p[3076:], 1700000000) // wc_sec
	if d.opts.Type == stream.DomainX86PV {
		le.PutUint64(p[3088:], d.pv.pages)         // arch.max_pfn
		le.PutUint64(p[3120:], 0xffffc90000000000) // arch.p2m_vaddr
		le.PutUint64(p[3128:], uint64(round+1))    // arch.p2m_generation
	}
	return p
}

// HVM parameter indices (public/hvm/params.h).
const (
	hvmParamStorePFN        = 1
	hvmParamIOReqPFN        = 5
	hvmParamBufIOReqPFN     = 6
	hvmParamIdentPT         = 12
	hvmParamConsolePFN      = 17
	hvmParamACPIIOPorts     = 19
	hvmParamPagingRingPFN   = 27
	hvmParamMonitorRingPFN  = 28
	hvmParamSharingRingPFN  = 29
	hvmParamNrIOReqSrvPages = 33
)

// hvmParams returns the non-zero parameters Xen saves for an HVM guest
// built by xl: the special pages' pfns (xg_dom_x86.c).
func hvmParams() *stream.HVMParams {
	sp := func(i uint64) uint64 { return hvmSpecialStart + i }
	return &stream.HVMParams{Params: []stream.HVMParam{
		{Index: hvmParamStorePFN, Value: sp(4)},
		{Index: hvmParamIOReqPFN, Value: sp(5)},
		{Index: hvmParamBufIOReqPFN, Value: sp(3)},
		{Index: hvmParamIdentPT, Value: sp(6) << 12},
		{Index: hvmParamConsolePFN, Value: sp(7)},
		{Index: hvmParamACPIIOPorts, Value: 1},
		{Index: hvmParamPagingRingPFN, Value: sp(0)},
		{Index: hvmParamMonitorRingPFN, Value: sp(1)},
		{Index: hvmParamSharingRingPFN, Value: sp(2)},
	}}
}

// HVM save record typecodes (public/arch-x86/hvm/save.h).
const (
	hvmSaveEnd       = 0
	hvmSaveHeader    = 1
	hvmSaveCPU       = 2
	hvmSavePIC       = 3
	hvmSaveIOAPIC    = 4
	hvmSaveLAPIC     = 5
	hvmSaveLAPICRegs = 6
	hvmSavePCIIRQ    = 7
	hvmSaveISAIRQ    = 8
	hvmSavePCILink   = 9
	hvmSavePIT       = 10
	hvmSaveRTC       = 11
	hvmSaveHPET      = 12
	hvmSavePMTimer   = 13
	hvmSaveMTRR      = 14

	hvmSaveMagic = 0x54381286
)

// hvmContext returns an HVM_CONTEXT blob framed like Xen's HVM save
// records: a descriptor (typecode, instance, length) before each body,
// the HEADER record first and END last. The HEADER is laid out as
// struct hvm_save_header; the other bodies are of roughly the right
// sizes with a few plausible values, not valid architectural state.
func (d *Domain) hvmContext(round int) []byte {
	le := binary.LittleEndian
	var b []byte
	rec := func(typ, inst uint16, body []byte) {
		b = le.AppendUint16(b, typ)
		b = le.AppendUint16(b, inst)
		b = le.AppendUint32(b, uint32(len(body)))
		b = append(b, body...)
	}
	hdr := make([]byte, 24)
	le.PutUint32(hdr[0:], hvmSaveMagic)
	le.PutUint32(hdr[4:], 1)           // version
	le.PutUint32(hdr[16:], 0x00050654) // cpuid
	le.PutUint32(hdr[20:], tscKHz)
	rec(hvmSaveHeader, 0, hdr)
	for v := 0; v < d.opts.VCPUs; v++ {
		cpu := make([]byte, 1024)
		le.PutUint16(cpu[0:], 0x037f)                                // FCW
		le.PutUint32(cpu[24:], 0x1f80)                               // MXCSR
		le.PutUint64(cpu[512+16*8:], 0xffffffff81000000+0x3a0)       // rip
		le.PutUint64(cpu[512+17*8:], 0x246)                          // rflags
		le.PutUint64(cpu[512+18*8:], 0x80050033)                     // cr0
		le.PutUint64(cpu[512+20*8:], 0x1000*(1+uint64(v)))           // cr3
		le.PutUint64(cpu[512+21*8:], 0x3606f0)                       // cr4
		le.PutUint64(cpu[1024-8:], d.uptime(round)/1000*tscKHz/1000) // tsc
		rec(hvmSaveCPU, uint16(v), cpu)
	}
	rec(hvmSavePIC, 0, []byte{0, 0xb8, 0xfb, 0, 0x08, 0x02, 0x01, 0x00})
	rec(hvmSavePIC, 1, []byte{0, 0xff, 0xff, 0, 0x70, 0x01, 0x01, 0x00})
	rec(hvmSaveIOAPIC, 0, make([]byte, 8+8+48*8))
	for v := 0; v < d.opts.VCPUs; v++ {
		lapic := make([]byte, 24)
		le.PutUint64(lapic[0:], 0xfee00900|uint64(v)<<8) // apic_base_msr
		rec(hvmSaveLAPIC, uint16(v), lapic)
	}
	for v := 0; v < d.opts.VCPUs; v++ {
		regs := make([]byte, 1024)
		le.PutUint32(regs[0x20:], uint32(v)<<24) // APIC ID
		le.PutUint32(regs[0x30:], 0x00050014)    // version
		le.PutUint32(regs[0xf0:], 0x1ff)         // spurious vector, enabled
		rec(hvmSaveLAPICRegs, uint16(v), regs)
	}
	rec(hvmSavePCIIRQ, 0, make([]byte, 32))
	rec(hvmSaveISAIRQ, 0, make([]byte, 8))
	rec(hvmSavePCILink, 0, []byte{5, 10, 11, 5, 0, 0, 0, 0})
	rec(hvmSavePIT, 0, make([]byte, 88))
	rec(hvmSaveRTC, 0, []byte{0x30, 0x12, 0x00, 0x00, 0x00, 0x15, 0x03, 0x01, 0x26, 0x00, 0x26, 0x02, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	rec(hvmSaveHPET, 0, make([]byte, 344))
	rec(hvmSavePMTimer, 0, make([]byte, 16))
	for v := 0; v < d.opts.VCPUs; v++ {
		mtrr := make([]byte, 376)
		le.PutUint64(mtrr[0:], 0x0007040600070406) // PAT
		rec(hvmSaveMTRR, uint16(v), mtrr)
	}
	rec(hvmSaveEnd, 0, nil)
	return b
}

// Emulator returns an HVM guest's device-model records for a round: the
// xenstore keys libxl saves (EMULATOR_XENSTORE_DATA, NUL-separated pairs)
// and the emulator state (EMULATOR_CONTEXT). The state looks like a QEMU
// savevm stream (magic, version, a configuration section, named device
// sections, EOF) but its sections hold filler.
func (d *Domain) Emulator(round int) (xenstore, context []byte) {
	for _, kv := range [][2]string{
		{"physmap/f0000000/start_addr", "f0000000"},
		{"physmap/f0000000/size", "800000"},
		{"physmap/f0000000/name", "vga.vram"},
	} {
		xenstore = append(xenstore, kv[0]...)
		xenstore = append(xenstore, 0)
		xenstore = append(xenstore, kv[1]...)
		xenstore = append(xenstore, 0)
	}
	be := binary.BigEndian                // QEMU's stream is big-endian
	c := be.AppendUint32(nil, 0x5145564d) // "QEVM"
	c = be.AppendUint32(c, 3)
	c = append(c, 0x07) // QEMU_VM_CONFIGURATION
	c = be.AppendUint32(c, 5)
	c = append(c, "xenfv"...)
	for i, sec := range []struct {
		name string
		size int
	}{
		{"timer", 24}, {"cpu_common", 16}, {"piix4_pm", 128}, {"PIIX3-xen", 64},
		{"vga", 512}, {"e1000", 320}, {"ide", 256}, {"xen_platform", 32},
	} {
		c = append(c, 0x04) // QEMU_VM_SECTION_FULL
		c = be.AppendUint32(c, uint32(i+1))
		c = append(c, byte(len(sec.name)))
		c = append(c, sec.name...)
		c = be.AppendUint32(c, 0) // instance
		c = be.AppendUint32(c, 1) // version
		body := make([]byte, sec.size)
		randomBytes(body, hash(d.opts.Seed, saltBlob, uint64(i), uint64(round)))
		c = append(c, body...)
	}
	c = append(c, 0x01) // QEMU_VM_EOF
	return xenstore, c
}

// Config returns the domain's configuration as xl saves it: libxl's
// domain config in JSON, NUL terminated.
func (d *Domain) Config() []byte {
	typ := "pv"
	if d.opts.Type == stream.DomainX86HVM {
		typ = "hvm"
	}
	h := mix(uint64(d.opts.Seed) ^ 0x7575_6964)
	uuid := fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", uint32(h>>32), uint16(h>>16), uint16(h)&0xfff, uint16(h>>48)&0xfff, mix(h)&(1<<48-1))
	avail := make([]int, d.opts.VCPUs)
	for i := range avail {
		avail[i] = i
	}
	kb := d.opts.Pages * (pageSize / 1024)
	type empty struct{}
	cfg := struct {
		CInfo struct {
			Type string `json:"type"`
			Name string `json:"name"`
			UUID string `json:"uuid"`
		} `json:"c_info"`
		BInfo struct {
			MaxVCPUs    int    `json:"max_vcpus"`
			AvailVCPUs  []int  `json:"avail_vcpus"`
			MaxMemKB    int    `json:"max_memkb"`
			TargetMemKB int    `json:"target_memkb"`
			TypePV      *empty `json:"type.pv,omitempty"`
			TypeHVM     *empty `json:"type.hvm,omitempty"`
		} `json:"b_info"`
	}{}
	cfg.CInfo.Type, cfg.CInfo.Name, cfg.CInfo.UUID = typ, d.opts.Name, uuid
	cfg.BInfo.MaxVCPUs, cfg.BInfo.AvailVCPUs = d.opts.VCPUs, avail
	cfg.BInfo.MaxMemKB, cfg.BInfo.TargetMemKB = kb, kb
	if typ == "pv" {
		cfg.BInfo.TypePV = &empty{}
	} else {
		cfg.BInfo.TypeHVM = &empty{}
	}
	b, err := json.MarshalIndent(cfg, "", "    ")
	if err != nil {
		panic(err) // cannot happen: plain strings and numbers
	}
	return append(b, '\n', 0)
}
