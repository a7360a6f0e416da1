package stream

import (
	"encoding/binary"
	"fmt"
)

// Wire sizes and magic values of the image and domain headers.
const (
	ImageHeaderSize  = 24 // marker(8) id(4) version(4) options(2) reserved(6)
	DomainHeaderSize = 16 // type(4) page_shift(2) reserved(2) xen_major(4) xen_minor(4)
	RecordHeaderSize = 8  // type(4) body_length(4)

	ImageMarker uint64 = 0xFFFFFFFFFFFFFFFF
	ImageID     uint32 = 0x58454E46 // "XENF"

	// OptionBigEndian is bit 0 of the image header's options: the byte
	// order of the domain header and of every record.
	OptionBigEndian uint16 = 1 << 0
	// optionsReserved are the options bits that must be zero.
	optionsReserved uint16 = 0xFFFE

	// Version2 and Version3 are the image versions we read; we write 3.
	Version2 uint32 = 2
	Version3 uint32 = 3

	// PageShift is the only page size x86 streams use (4 KiB).
	PageShift = 12
	PageSize  = 1 << PageShift
)

// Limits on lengths read from the wire, checked before allocating.
const (
	// MaxRecordLength is Xen's REC_LENGTH_MAX (xg_sr_stream_format.h):
	// libxc refuses any record body longer than 128 MiB.
	MaxRecordLength = 128 << 20

	// MaxPageBatch is the number of pfns one PAGE_DATA record may carry.
	// Xen's saver never sends more than MAX_BATCH_SIZE (1024) per record,
	// and the legacy format had the same batch limit.
	MaxPageBatch = 1024
)

// DomainType is the type field of the domain header.
type DomainType uint32

// Domain types of the specification.
const (
	DomainX86PV  DomainType = 1
	DomainX86HVM DomainType = 2
)

func (t DomainType) String() string {
	switch t {
	case DomainX86PV:
		return "x86 PV"
	case DomainX86HVM:
		return "x86 HVM"
	}
	return fmt.Sprintf("domain type %#x", uint32(t))
}

// RecordType is the type field of a record header.
type RecordType uint32

// Record types, from the libxc stream specification.
const (
	RecEnd                    RecordType = 0x00
	RecPageData               RecordType = 0x01
	RecX86PVInfo              RecordType = 0x02
	RecX86PVP2MFrames         RecordType = 0x03
	RecX86PVVCPUBasic         RecordType = 0x04
	RecX86PVVCPUExtended      RecordType = 0x05
	RecX86PVVCPUXSave         RecordType = 0x06
	RecSharedInfo             RecordType = 0x07
	RecX86TSCInfo             RecordType = 0x08
	RecHVMContext             RecordType = 0x09
	RecHVMParams              RecordType = 0x0A
	RecToolstack              RecordType = 0x0B // deprecated
	RecX86PVVCPUMSRs          RecordType = 0x0C
	RecVerify                 RecordType = 0x0D
	RecCheckpoint             RecordType = 0x0E
	RecCheckpointDirtyPFNList RecordType = 0x0F
	RecStaticDataEnd          RecordType = 0x10
	RecX86CPUIDPolicy         RecordType = 0x11
	RecX86MSRPolicy           RecordType = 0x12

	// RecOptional is the bit that marks a record optional: a restorer that
	// does not know the type may skip it.
	RecOptional RecordType = 1 << 31
)

var recordNames = [...]string{
	RecEnd:                    "END",
	RecPageData:               "PAGE_DATA",
	RecX86PVInfo:              "X86_PV_INFO",
	RecX86PVP2MFrames:         "X86_PV_P2M_FRAMES",
	RecX86PVVCPUBasic:         "X86_PV_VCPU_BASIC",
	RecX86PVVCPUExtended:      "X86_PV_VCPU_EXTENDED",
	RecX86PVVCPUXSave:         "X86_PV_VCPU_XSAVE",
	RecSharedInfo:             "SHARED_INFO",
	RecX86TSCInfo:             "X86_TSC_INFO",
	RecHVMContext:             "HVM_CONTEXT",
	RecHVMParams:              "HVM_PARAMS",
	RecToolstack:              "TOOLSTACK",
	RecX86PVVCPUMSRs:          "X86_PV_VCPU_MSRS",
	RecVerify:                 "VERIFY",
	RecCheckpoint:             "CHECKPOINT",
	RecCheckpointDirtyPFNList: "CHECKPOINT_DIRTY_PFN_LIST",
	RecStaticDataEnd:          "STATIC_DATA_END",
	RecX86CPUIDPolicy:         "X86_CPUID_POLICY",
	RecX86MSRPolicy:           "X86_MSR_POLICY",
}

// extraNames holds the names of optional records defined outside Xen's
// specification (our own extensions register theirs here).
var extraNames = map[RecordType]string{}

// RegisterName gives an optional record type defined outside Xen's
// specification a name for String. It is meant to be called from init.
func RegisterName(t RecordType, name string) {
	if t&RecOptional == 0 {
		panic("stream: RegisterName of a mandatory record type")
	}
	extraNames[t] = name
}

// Known reports whether t is a record type of the specification.
func (t RecordType) Known() bool { return uint64(t) < uint64(len(recordNames)) }

// Optional reports whether bit 31 is set.
func (t RecordType) Optional() bool { return t&RecOptional != 0 }

// String returns the specification's name of the type, such as
// "PAGE_DATA", or a hexadecimal description for unknown types.
func (t RecordType) String() string {
	if t.Known() {
		return recordNames[t]
	}
	if n, ok := extraNames[t]; ok {
		return n
	}
	if t.Optional() {
		return fmt.Sprintf("OPTIONAL_0x%08x", uint32(t))
	}
	return fmt.Sprintf("UNKNOWN_0x%08x", uint32(t))
}

// PageType is a XEN_DOMCTL_PFINFO_* value, as carried in bits 60-63 of a
// PAGE_DATA pfn word.
type PageType uint8

// Page types (public/domctl.h XEN_DOMCTL_PFINFO_*, shifted down by 28).
const (
	PageNotab   PageType = 0x0
	PageL1Tab   PageType = 0x1
	PageL2Tab   PageType = 0x2
	PageL3Tab   PageType = 0x3
	PageL4Tab   PageType = 0x4
	PageL1Pin   PageType = 0x9
	PageL2Pin   PageType = 0xA
	PageL3Pin   PageType = 0xB
	PageL4Pin   PageType = 0xC
	PageBroken  PageType = 0xD
	PageXAlloc  PageType = 0xE
	PageXTab    PageType = 0xF
	pageTypeMax PageType = 0xF
)

// Layout of a PAGE_DATA pfn word.
const (
	PFNMask          uint64   = 1<<52 - 1
	pfnReservedMask  uint64   = (1<<60 - 1) &^ PFNMask
	pfnTypeShift              = 60
	pageTypePinned   PageType = 0x8
	pageTypeLevelMsk PageType = 0x7
)

var pageTypeNames = [...]string{
	PageNotab:  "notab",
	PageL1Tab:  "l1",
	PageL2Tab:  "l2",
	PageL3Tab:  "l3",
	PageL4Tab:  "l4",
	5:          "reserved5",
	6:          "reserved6",
	7:          "reserved7",
	8:          "reserved8",
	PageL1Pin:  "l1+pin",
	PageL2Pin:  "l2+pin",
	PageL3Pin:  "l3+pin",
	PageL4Pin:  "l4+pin",
	PageBroken: "broken",
	PageXAlloc: "xalloc",
	PageXTab:   "xtab",
}

func (p PageType) String() string {
	if int(p) < len(pageTypeNames) {
		return pageTypeNames[p]
	}
	return fmt.Sprintf("pagetype%#x", uint8(p))
}

// Valid reports whether p is a type the specification defines (0x5-0x8
// are reserved, and a restorer must refuse them).
func (p PageType) Valid() bool { return p <= pageTypeMax && (p < 5 || p > 8) }

// HasData reports whether a pfn of this type carries a page of data in a
// PAGE_DATA record: every type except BROKEN, XALLOC and XTAB.
func (p PageType) HasData() bool { return p.Valid() && p < PageBroken }

// PFNWord packs a pfn and its type into a PAGE_DATA pfn word.
func PFNWord(pfn uint64, t PageType) uint64 {
	return pfn&PFNMask | uint64(t)<<pfnTypeShift
}

// SplitPFNWord returns the pfn, type and reserved bits of a pfn word.
func SplitPFNWord(w uint64) (pfn uint64, t PageType, reserved uint64) {
	return w & PFNMask, PageType(w >> pfnTypeShift), w & pfnReservedMask
}

// ByteOrder is the byte order of a stream's records: binary.LittleEndian
// or binary.BigEndian, which both read and append.
type ByteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}
