package stream

import (
	"fmt"
)

// Sizes of the PV vCPU context blobs Xen's restorer insists on
// (xg_sr_restore_x86_pv.c): vcpu_guest_context_x86_32_t and _64_t, the
// extended context's maximum, the xsave minimum and the MSR entry size.
const (
	vcpuBasicSize32 = 0xaf0
	vcpuBasicSize64 = 0x1430
	vcpuExtendedMax = 128
	vcpuXSaveMin    = 16
	vcpuMSRSize     = 16 // xen_domctl_vcpu_msr_t
)

// Verifier checks a libxc stream against the specification and against
// what Xen's restorer and verify-stream-v2 require: header fields, every
// record's layout, reserved fields and padding, and record order. Feed it
// the headers, then every record from a Reader, then call End.
//
// It is stricter than Xen's Python verifier where the restorer is (record
// order, pfn types without data, vCPU blob sizes) and more tolerant where
// the specification allows (optional records, big-endian streams).
type Verifier struct {
	ih    ImageHeader
	dh    DomainHeader
	order ByteOrder

	staticEnd   bool
	pvInfo      *X86PVInfo
	p2mFrames   bool
	pageData    bool
	vcpuSeen    bool
	vcpu0Basic  bool
	hvmContext  bool
	checkpoints int
	ended       bool
	page        PageData
}

// NewVerifier checks the headers and returns a Verifier for the records.
func NewVerifier(ih ImageHeader, dh DomainHeader) (*Verifier, error) {
	v := &Verifier{ih: ih, dh: dh, order: ih.ByteOrder()}
	herr := func(name string, off int64, err error) error {
		return &FormatError{Layer: "libxc", Offset: off, Index: -1, Type: name, Err: err}
	}
	if ih.Options&optionsReserved != 0 {
		return nil, herr("image header", 0, corrupt("reserved bits set in image options: %#04x", ih.Options&optionsReserved))
	}
	if ih.Reserved != [6]byte{} {
		return nil, herr("image header", 0, corrupt("reserved field is not zero: % x", ih.Reserved))
	}
	if dh.Reserved != 0 {
		return nil, herr("domain header", ImageHeaderSize, corrupt("reserved field is not zero: %#04x", dh.Reserved))
	}
	return v, nil
}

// Checkpoints returns the number of CHECKPOINT records seen.
func (v *Verifier) Checkpoints() int { return v.checkpoints }

// Record checks one record in stream order. The error, if any, is a
// *FormatError naming the record.
func (v *Verifier) Record(rec *Record) error {
	if err := v.record(rec); err != nil {
		return rec.Error(err)
	}
	return nil
}

func (v *Verifier) record(rec *Record) error {
	if v.ended {
		return corrupt("record after END")
	}
	for _, b := range rec.Padding {
		if b != 0 {
			return corrupt("padding contains non-zero octets: % x", rec.Padding)
		}
	}
	t := rec.Type
	pv := v.dh.Type == DomainX86PV
	hvm := v.dh.Type == DomainX86HVM

	// Static and memory/register records against STATIC_DATA_END.
	switch t {
	case RecX86PVInfo, RecX86CPUIDPolicy, RecX86MSRPolicy:
		if v.staticEnd && !(t == RecX86PVInfo && v.ih.Version < Version3) {
			return corrupt("%v after STATIC_DATA_END; it is static data", t)
		}
	case RecPageData, RecX86PVP2MFrames, RecX86PVVCPUBasic, RecX86PVVCPUExtended,
		RecX86PVVCPUXSave, RecX86PVVCPUMSRs, RecSharedInfo, RecX86TSCInfo,
		RecHVMContext, RecHVMParams:
		if !v.staticEnd && v.ih.Version >= Version3 {
			return corrupt("%v before STATIC_DATA_END, which a version 3 stream must send first", t)
		}
	}

	// Records that belong to one domain type only.
	switch t {
	case RecX86PVInfo, RecX86PVP2MFrames, RecX86PVVCPUBasic, RecX86PVVCPUExtended,
		RecX86PVVCPUXSave, RecX86PVVCPUMSRs, RecSharedInfo:
		if !pv {
			return corrupt("%v in an %v stream", t, v.dh.Type)
		}
	case RecHVMContext, RecHVMParams:
		if !hvm {
			return corrupt("%v in an %v stream", t, v.dh.Type)
		}
	}

	switch t {
	case RecEnd:
		if len(rec.Body) != 0 {
			return corrupt("END record with non-zero length %d", len(rec.Body))
		}
		return v.end()
	case RecPageData:
		if err := v.page.DecodeSkipped(rec.Body, rec.Skipped, v.order); err != nil {
			return err
		}
		if v.page.Reserved != 0 {
			return corrupt("reserved field set in PAGE_DATA header: %#08x", v.page.Reserved)
		}
		if pv && !v.p2mFrames {
			return corrupt("PAGE_DATA before X86_PV_P2M_FRAMES")
		}
		v.pageData = true
		return nil
	case RecX86PVInfo:
		if v.pvInfo != nil {
			return corrupt("second X86_PV_INFO record")
		}
		var p X86PVInfo
		if err := p.decode(rec.Body, v.order); err != nil {
			return err
		}
		if p.Reserved1 != 0 || p.Reserved2 != 0 {
			return corrupt("reserved fields set in X86_PV_INFO: %#04x %#08x", p.Reserved1, p.Reserved2)
		}
		if p.GuestWidth == 8 && p.PTLevels != 4 {
			return corrupt("X86_PV_INFO: a 64-bit guest with %d page-table levels", p.PTLevels)
		}
		v.pvInfo = &p
		return nil
	case RecX86PVP2MFrames:
		if v.pvInfo == nil {
			return corrupt("X86_PV_P2M_FRAMES before X86_PV_INFO")
		}
		var p X86PVP2MFrames
		if err := p.decode(rec.Body, v.order); err != nil {
			return err
		}
		if want := p.FramesFor(v.pvInfo.GuestWidth); uint64(len(p.Frames)) != want {
			return corrupt("X86_PV_P2M_FRAMES has %d frames for pfns %#x-%#x, a %d-bit guest needs %d",
				len(p.Frames), p.StartPFN, p.EndPFN, 8*v.pvInfo.GuestWidth, want)
		}
		v.p2mFrames = true
		return nil
	case RecX86PVVCPUBasic, RecX86PVVCPUExtended, RecX86PVVCPUXSave, RecX86PVVCPUMSRs:
		return v.vcpu(rec)
	case RecSharedInfo, RecX86TSCInfo, RecHVMContext, RecX86CPUIDPolicy, RecX86MSRPolicy:
		if (t == RecX86CPUIDPolicy || t == RecX86MSRPolicy) && v.ih.Version < Version3 {
			return corrupt("%v in a version 2 stream", t)
		}
		if t == RecSharedInfo && v.pvInfo == nil {
			return corrupt("SHARED_INFO before X86_PV_INFO")
		}
		b, err := Decode(t, rec.Body, v.order)
		if err != nil {
			return err
		}
		if tsc, ok := b.(*X86TSCInfo); ok && tsc.Reserved != 0 {
			return corrupt("reserved field set in X86_TSC_INFO: %#08x", tsc.Reserved)
		}
		// The specification asks for HVM_PARAMS before HVM_CONTEXT, but
		// Xen's saver writes them the other way round
		// (x86_hvm_end_of_checkpoint in xg_sr_save_x86_hvm.c) and its
		// restorer applies the context only at the end of the stream, so
		// either order is valid.
		if t == RecHVMContext {
			v.hvmContext = true
		}
		return nil
	case RecHVMParams:
		var p HVMParams
		if err := p.decode(rec.Body, v.order); err != nil {
			return err
		}
		if p.Reserved != 0 {
			return corrupt("reserved field set in HVM_PARAMS: %#08x", p.Reserved)
		}
		return nil
	case RecToolstack:
		return unsupported("deprecated TOOLSTACK record (never valid in a released stream)")
	case RecVerify:
		if len(rec.Body) != 0 {
			return corrupt("VERIFY record with non-zero length %d", len(rec.Body))
		}
		return nil
	case RecCheckpoint:
		if len(rec.Body) != 0 {
			return corrupt("CHECKPOINT record with non-zero length %d", len(rec.Body))
		}
		if err := v.complete("CHECKPOINT"); err != nil {
			return err
		}
		v.checkpoints++
		v.hvmContext = false
		return nil
	case RecCheckpointDirtyPFNList:
		return corrupt("CHECKPOINT_DIRTY_PFN_LIST belongs to COLO's back channel, not to a saved stream")
	case RecStaticDataEnd:
		if len(rec.Body) != 0 {
			return corrupt("STATIC_DATA_END record with non-zero length %d", len(rec.Body))
		}
		if v.ih.Version < Version3 && !rec.Implied {
			return corrupt("STATIC_DATA_END in a version 2 stream")
		}
		if v.staticEnd {
			return corrupt("second STATIC_DATA_END record")
		}
		if pv && v.pvInfo == nil {
			return corrupt("STATIC_DATA_END before X86_PV_INFO in a PV stream")
		}
		v.staticEnd = true
		return nil
	}
	if !t.Optional() {
		return unsupported("unknown mandatory record type %#x", uint32(t))
	}
	return nil // optional records are carried, not interpreted
}

func (v *Verifier) vcpu(rec *Record) error {
	p := X86PVVCPU{Kind: rec.Type}
	if err := p.decode(rec.Body, v.order); err != nil {
		return err
	}
	if p.Reserved != 0 {
		return corrupt("reserved field set in %v: %#08x", rec.Type, p.Reserved)
	}
	if !v.pageData && v.checkpoints == 0 {
		return corrupt("%v before any PAGE_DATA", rec.Type)
	}
	v.vcpuSeen = true
	n := len(p.Context)
	if n == 0 { // erratum 1: tolerate empty variable-sized records
		return nil
	}
	switch rec.Type {
	case RecX86PVVCPUBasic:
		want := vcpuBasicSize64
		if v.pvInfo.GuestWidth == 4 {
			want = vcpuBasicSize32
		}
		if n != want {
			return corrupt("vcpu%d basic context is %#x octets, a %d-bit guest's is %#x",
				p.VCPUID, n, 8*v.pvInfo.GuestWidth, want)
		}
		if p.VCPUID == 0 {
			v.vcpu0Basic = true
		}
	case RecX86PVVCPUExtended:
		if n > vcpuExtendedMax {
			return corrupt("vcpu%d extended context is %d octets, at most %d", p.VCPUID, n, vcpuExtendedMax)
		}
	case RecX86PVVCPUXSave:
		if n < vcpuXSaveMin {
			return corrupt("vcpu%d xsave context is %d octets, at least %d", p.VCPUID, n, vcpuXSaveMin)
		}
	case RecX86PVVCPUMSRs:
		if n%vcpuMSRSize != 0 {
			return corrupt("vcpu%d MSR context is %d octets, not a multiple of %d", p.VCPUID, n, vcpuMSRSize)
		}
	}
	return nil
}

// complete checks what must have been sent by a checkpoint or the end.
func (v *Verifier) complete(what string) error {
	if !v.staticEnd {
		if v.ih.Version >= Version3 {
			return corrupt("%s without STATIC_DATA_END in a version 3 stream", what)
		}
	}
	switch v.dh.Type {
	case DomainX86PV:
		if v.pvInfo == nil {
			return corrupt("%s before X86_PV_INFO", what)
		}
		if !v.p2mFrames {
			return corrupt("%s before X86_PV_P2M_FRAMES", what)
		}
		if !v.vcpu0Basic {
			return corrupt("%s without vcpu0's X86_PV_VCPU_BASIC record", what)
		}
	case DomainX86HVM:
		if !v.hvmContext && v.checkpoints == 0 {
			return corrupt("%s without HVM_CONTEXT", what)
		}
	}
	return nil
}

func (v *Verifier) end() error {
	if err := v.complete("END"); err != nil {
		return err
	}
	v.ended = true
	return nil
}

// End reports an error if the END record was not seen.
func (v *Verifier) End() error {
	if !v.ended {
		return fmt.Errorf("stream ended without an END record")
	}
	return nil
}
