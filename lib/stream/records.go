package stream

import ()

// Body is the typed body of a record. Decode turns wire bytes into a Body;
// AppendBody turns it back, and for every valid record the two round-trip
// to the same octets.
type Body interface {
	Type() RecordType
	// AppendBody appends the body's wire form (without padding).
	AppendBody(b []byte, order ByteOrder) []byte
}

// Decode decodes a record body of type t. It checks the record's own
// layout (lengths, counts, page types) but not its place in the stream;
// that is the Verifier's job. Slices in the result alias body.
func Decode(t RecordType, body []byte, order ByteOrder) (Body, error) {
	switch t {
	case RecEnd, RecVerify, RecCheckpoint, RecStaticDataEnd:
		if len(body) != 0 {
			return nil, corrupt("%v record with non-zero length %d", t, len(body))
		}
		return Signal(t), nil
	case RecPageData:
		p := new(PageData)
		return p, p.Decode(body, order)
	case RecX86PVInfo:
		var p X86PVInfo
		return &p, p.decode(body, order)
	case RecX86PVP2MFrames:
		var p X86PVP2MFrames
		return &p, p.decode(body, order)
	case RecX86PVVCPUBasic, RecX86PVVCPUExtended, RecX86PVVCPUXSave, RecX86PVVCPUMSRs:
		p := X86PVVCPU{Kind: t}
		return &p, p.decode(body, order)
	case RecSharedInfo:
		if len(body) != PageSize {
			return nil, corrupt("SHARED_INFO length %d, want %d", len(body), PageSize)
		}
		return &Blob{T: t, Data: body}, nil
	case RecX86TSCInfo:
		var p X86TSCInfo
		return &p, p.decode(body, order)
	case RecHVMContext:
		if len(body) == 0 {
			return nil, corrupt("zero-length HVM_CONTEXT")
		}
		return &Blob{T: t, Data: body}, nil
	case RecHVMParams:
		var p HVMParams
		return &p, p.decode(body, order)
	case RecCheckpointDirtyPFNList:
		if len(body)%8 != 0 {
			return nil, corrupt("CHECKPOINT_DIRTY_PFN_LIST length %d is not a multiple of 8", len(body))
		}
		p := PFNList{}
		for i := 0; i < len(body); i += 8 {
			p = append(p, order.Uint64(body[i:]))
		}
		return p, nil
	case RecX86CPUIDPolicy:
		var p X86CPUIDPolicy
		return &p, p.decode(body, order)
	case RecX86MSRPolicy:
		var p X86MSRPolicy
		return &p, p.decode(body, order)
	}
	if !t.Optional() && !t.Known() {
		return nil, unsupported("unknown mandatory record type %#x", uint32(t))
	}
	return &Blob{T: t, Data: body}, nil // TOOLSTACK and optional records
}

// Signal is the body of a record that carries no fields: END, VERIFY,
// CHECKPOINT, STATIC_DATA_END.
type Signal RecordType

func (s Signal) Type() RecordType                        { return RecordType(s) }
func (s Signal) AppendBody(b []byte, _ ByteOrder) []byte { return b }

// Blob is an opaque body: SHARED_INFO, HVM_CONTEXT, TOOLSTACK and optional
// records.
type Blob struct {
	T    RecordType
	Data []byte
}

func (p *Blob) Type() RecordType                        { return p.T }
func (p *Blob) AppendBody(b []byte, _ ByteOrder) []byte { return append(b, p.Data...) }

// PageData is a PAGE_DATA record: pfn words (pfn and type) and the pages
// of those whose type carries data, in order.
type PageData struct {
	Reserved uint32
	PFNs     []uint64 // pfn words: PFNWord(pfn, type)
	Data     []byte   // PageSize octets per pfn whose type HasData
}

func (p *PageData) Type() RecordType { return RecPageData }

// Decode decodes body into p, reusing p's PFNs slice.
func (p *PageData) Decode(body []byte, order ByteOrder) error {
	return p.decode(body, 0, order)
}

// DecodeSkipped decodes the start of a PAGE_DATA body whose page data a
// Reader skipped (Options.SkipPageData): body holds the header and pfn
// words, skipped counts the octets that followed. p.Data is nil.
func (p *PageData) DecodeSkipped(body []byte, skipped int, order ByteOrder) error {
	return p.decode(body, skipped, order)
}

func (p *PageData) decode(body []byte, skipped int, order ByteOrder) error {
	total := len(body) + skipped
	if len(body) < 8 {
		return corrupt("PAGE_DATA length %d is shorter than its 8-octet header", total)
	}
	count := order.Uint32(body[0:])
	p.Reserved = order.Uint32(body[4:])
	if count == 0 {
		return corrupt("PAGE_DATA count is 0")
	}
	if count > MaxPageBatch {
		return overLimit("PAGE_DATA count %d exceeds the limit of %d pages per record", count, MaxPageBatch)
	}
	if uint64(len(body)) < 8+8*uint64(count) {
		return corrupt("PAGE_DATA length %d too short for %d pfns", total, count)
	}
	p.PFNs = p.PFNs[:0]
	data := 0
	for i := 0; i < int(count); i++ {
		w := order.Uint64(body[8+8*i:])
		_, t, res := SplitPFNWord(w)
		if res != 0 {
			return corrupt("reserved bits set in pfn[%d]: %#016x", i, w)
		}
		if !t.Valid() {
			return corrupt("invalid page type %#x in pfn[%d]: %#016x", uint8(t), i, w)
		}
		if t.HasData() {
			data++
		}
		p.PFNs = append(p.PFNs, w)
	}
	want := 8 + 8*int(count) + data*PageSize
	if total != want {
		return corrupt("PAGE_DATA length %d, want 8 + %d×8 pfns + %d×%d pages = %d", total, count, data, PageSize, want)
	}
	p.Data = nil
	if skipped == 0 {
		p.Data = body[8+8*int(count):]
	}
	return nil
}

func (p *PageData) AppendBody(b []byte, order ByteOrder) []byte {
	b = order.AppendUint32(b, uint32(len(p.PFNs)))
	b = order.AppendUint32(b, p.Reserved)
	for _, w := range p.PFNs {
		b = order.AppendUint64(b, w)
	}
	return append(b, p.Data...)
}

// X86PVInfo is an X86_PV_INFO record.
type X86PVInfo struct {
	GuestWidth uint8 // octets: 4 or 8
	PTLevels   uint8 // 3 or 4
	Reserved1  uint16
	Reserved2  uint32
}

func (p *X86PVInfo) Type() RecordType { return RecX86PVInfo }

func (p *X86PVInfo) decode(body []byte, order ByteOrder) error {
	if len(body) != 8 {
		return corrupt("X86_PV_INFO length %d, want 8", len(body))
	}
	p.GuestWidth, p.PTLevels = body[0], body[1]
	p.Reserved1, p.Reserved2 = order.Uint16(body[2:]), order.Uint32(body[4:])
	if p.GuestWidth != 4 && p.GuestWidth != 8 {
		return corrupt("X86_PV_INFO guest width %d, want 4 or 8", p.GuestWidth)
	}
	if p.PTLevels != 3 && p.PTLevels != 4 {
		return corrupt("X86_PV_INFO page-table levels %d, want 3 or 4", p.PTLevels)
	}
	return nil
}

func (p *X86PVInfo) AppendBody(b []byte, order ByteOrder) []byte {
	b = append(b, p.GuestWidth, p.PTLevels)
	b = order.AppendUint16(b, p.Reserved1)
	return order.AppendUint32(b, p.Reserved2)
}

// X86PVP2MFrames is an X86_PV_P2M_FRAMES record: the pfns of the frames
// holding the guest's p2m table for pfns StartPFN..EndPFN inclusive.
type X86PVP2MFrames struct {
	StartPFN, EndPFN uint32
	Frames           []uint64
}

func (p *X86PVP2MFrames) Type() RecordType { return RecX86PVP2MFrames }

func (p *X86PVP2MFrames) decode(body []byte, order ByteOrder) error {
	if len(body) < 8 || len(body)%8 != 0 {
		return corrupt("X86_PV_P2M_FRAMES length %d, want a multiple of 8 of at least 8", len(body))
	}
	p.StartPFN, p.EndPFN = order.Uint32(body[0:]), order.Uint32(body[4:])
	if p.StartPFN > p.EndPFN {
		return corrupt("X86_PV_P2M_FRAMES start pfn %#x after end pfn %#x", p.StartPFN, p.EndPFN)
	}
	p.Frames = make([]uint64, 0, (len(body)-8)/8)
	for i := 8; i < len(body); i += 8 {
		p.Frames = append(p.Frames, order.Uint64(body[i:]))
	}
	return nil
}

// FramesFor returns how many p2m frames cover StartPFN..EndPFN for a guest
// of the given width in octets (xg_sr_restore_x86_pv.c).
func (p *X86PVP2MFrames) FramesFor(width uint8) uint64 {
	fpp := uint64(PageSize / uint64(width))
	return uint64(p.EndPFN)/fpp + 1 - uint64(p.StartPFN)/fpp
}

func (p *X86PVP2MFrames) AppendBody(b []byte, order ByteOrder) []byte {
	b = order.AppendUint32(b, p.StartPFN)
	b = order.AppendUint32(b, p.EndPFN)
	for _, f := range p.Frames {
		b = order.AppendUint64(b, f)
	}
	return b
}

// X86PVVCPU is one of X86_PV_VCPU_BASIC, _EXTENDED, _XSAVE and _MSRS: a
// vCPU id and an opaque context blob.
type X86PVVCPU struct {
	Kind     RecordType
	VCPUID   uint32
	Reserved uint32
	Context  []byte
}

func (p *X86PVVCPU) Type() RecordType { return p.Kind }

func (p *X86PVVCPU) decode(body []byte, order ByteOrder) error {
	if len(body) < 8 {
		return corrupt("%v length %d is shorter than its 8-octet header", p.Kind, len(body))
	}
	p.VCPUID, p.Reserved = order.Uint32(body[0:]), order.Uint32(body[4:])
	p.Context = body[8:]
	return nil
}

func (p *X86PVVCPU) AppendBody(b []byte, order ByteOrder) []byte {
	b = order.AppendUint32(b, p.VCPUID)
	b = order.AppendUint32(b, p.Reserved)
	return append(b, p.Context...)
}

// X86TSCInfo is an X86_TSC_INFO record.
type X86TSCInfo struct {
	Mode        uint32
	KHz         uint32
	Nsec        uint64
	Incarnation uint32
	Reserved    uint32
}

func (p *X86TSCInfo) Type() RecordType { return RecX86TSCInfo }

func (p *X86TSCInfo) decode(body []byte, order ByteOrder) error {
	if len(body) != 24 {
		return corrupt("X86_TSC_INFO length %d, want 24", len(body))
	}
	p.Mode, p.KHz = order.Uint32(body[0:]), order.Uint32(body[4:])
	p.Nsec = order.Uint64(body[8:])
	p.Incarnation, p.Reserved = order.Uint32(body[16:]), order.Uint32(body[20:])
	return nil
}

func (p *X86TSCInfo) AppendBody(b []byte, order ByteOrder) []byte {
	b = order.AppendUint32(b, p.Mode)
	b = order.AppendUint32(b, p.KHz)
	b = order.AppendUint64(b, p.Nsec)
	b = order.AppendUint32(b, p.Incarnation)
	return order.AppendUint32(b, p.Reserved)
}

// HVMParam is one HVM_PARAMS entry.
type HVMParam struct{ Index, Value uint64 }

// HVMParams is an HVM_PARAMS record.
type HVMParams struct {
	Reserved uint32
	Params   []HVMParam
}

func (p *HVMParams) Type() RecordType { return RecHVMParams }

func (p *HVMParams) decode(body []byte, order ByteOrder) error {
	if len(body) < 8 {
		return corrupt("HVM_PARAMS length %d is shorter than its 8-octet header", len(body))
	}
	count := order.Uint32(body[0:])
	p.Reserved = order.Uint32(body[4:])
	if uint64(len(body)) != 8+16*uint64(count) {
		return corrupt("HVM_PARAMS length %d, want 8 + %d×16", len(body), count)
	}
	p.Params = make([]HVMParam, count)
	for i := range p.Params {
		p.Params[i] = HVMParam{order.Uint64(body[8+16*i:]), order.Uint64(body[16+16*i:])}
	}
	return nil
}

func (p *HVMParams) AppendBody(b []byte, order ByteOrder) []byte {
	b = order.AppendUint32(b, uint32(len(p.Params)))
	b = order.AppendUint32(b, p.Reserved)
	for _, e := range p.Params {
		b = order.AppendUint64(b, e.Index)
		b = order.AppendUint64(b, e.Value)
	}
	return b
}

// PFNList is a CHECKPOINT_DIRTY_PFN_LIST record.
type PFNList []uint64

func (p PFNList) Type() RecordType { return RecCheckpointDirtyPFNList }

func (p PFNList) AppendBody(b []byte, order ByteOrder) []byte {
	for _, w := range p {
		b = order.AppendUint64(b, w)
	}
	return b
}

// CPUIDLeaf mirrors xen_cpuid_leaf_t (public/arch-x86/xen.h).
type CPUIDLeaf struct{ Leaf, Subleaf, A, B, C, D uint32 }

// X86CPUIDPolicy is an X86_CPUID_POLICY record.
type X86CPUIDPolicy struct{ Leaves []CPUIDLeaf }

func (p *X86CPUIDPolicy) Type() RecordType { return RecX86CPUIDPolicy }

func (p *X86CPUIDPolicy) decode(body []byte, order ByteOrder) error {
	if len(body) == 0 || len(body)%24 != 0 {
		return corrupt("X86_CPUID_POLICY length %d, want a non-zero multiple of 24", len(body))
	}
	p.Leaves = make([]CPUIDLeaf, len(body)/24)
	for i := range p.Leaves {
		o := body[24*i:]
		p.Leaves[i] = CPUIDLeaf{order.Uint32(o), order.Uint32(o[4:]), order.Uint32(o[8:]),
			order.Uint32(o[12:]), order.Uint32(o[16:]), order.Uint32(o[20:])}
	}
	return nil
}

func (p *X86CPUIDPolicy) AppendBody(b []byte, order ByteOrder) []byte {
	for _, l := range p.Leaves {
		for _, v := range [...]uint32{l.Leaf, l.Subleaf, l.A, l.B, l.C, l.D} {
			b = order.AppendUint32(b, v)
		}
	}
	return b
}

// MSREntry mirrors xen_msr_entry_t (public/arch-x86/xen.h).
type MSREntry struct {
	Index, Flags uint32
	Value        uint64
}

// X86MSRPolicy is an X86_MSR_POLICY record.
type X86MSRPolicy struct{ MSRs []MSREntry }

func (p *X86MSRPolicy) Type() RecordType { return RecX86MSRPolicy }

func (p *X86MSRPolicy) decode(body []byte, order ByteOrder) error {
	if len(body) == 0 || len(body)%16 != 0 {
		return corrupt("X86_MSR_POLICY length %d, want a non-zero multiple of 16", len(body))
	}
	p.MSRs = make([]MSREntry, len(body)/16)
	for i := range p.MSRs {
		o := body[16*i:]
		p.MSRs[i] = MSREntry{order.Uint32(o), order.Uint32(o[4:]), order.Uint64(o[8:])}
	}
	return nil
}

func (p *X86MSRPolicy) AppendBody(b []byte, order ByteOrder) []byte {
	for _, m := range p.MSRs {
		b = order.AppendUint32(b, m.Index)
		b = order.AppendUint32(b, m.Flags)
		b = order.AppendUint64(b, m.Value)
	}
	return b
}
