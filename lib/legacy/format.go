package legacy

import "fmt"

// Guest is the type of the saved guest.
type Guest int

// Guest types. GuestAuto asks the Reader to find it from the stream.
const (
	GuestAuto Guest = iota
	GuestPV
	GuestHVM
)

func (g Guest) String() string {
	switch g {
	case GuestPV:
		return "PV"
	case GuestHVM:
		return "HVM"
	}
	return "auto"
}

// ParseGuest parses "pv" or "hvm" (Xen's converter's -g values).
func ParseGuest(s string) (Guest, error) {
	switch s {
	case "pv", "PV":
		return GuestPV, nil
	case "hvm", "HVM":
		return GuestHVM, nil
	}
	return GuestAuto, fmt.Errorf("guest type %q: want pv or hvm", s)
}

// Chunk markers: the int32 that starts every chunk of the body. A positive
// marker is a page batch of that many pages; the others are the
// XC_SAVE_ID_* values of Xen 4.4's xg_save_restore.h.
const (
	chunkEnd                    = 0
	chunkEnableVerifyMode       = -1
	chunkVCPUInfo               = -2
	chunkHVMIdentPT             = -3
	chunkHVMVM86TSS             = -4
	chunkTmem                   = -5
	chunkTmemExtra              = -6
	chunkTSCInfo                = -7
	chunkHVMConsolePFN          = -8
	chunkLastCheckpoint         = -9
	chunkHVMACPIIoportsLocation = -10
	chunkHVMViridian            = -11
	chunkCompressedData         = -12
	chunkEnableCompression      = -13
	chunkHVMGenerationIDAddr    = -14
	chunkHVMPagingRingPFN       = -15
	chunkHVMMonitorRingPFN      = -16
	chunkHVMSharingRingPFN      = -17
	chunkToolstack              = -18
	chunkHVMIoreqServerPFN      = -19
	chunkHVMNrIoreqServerPages  = -20
	chunkMin                    = -20
)

var chunkNames = [...]string{
	"END", "ENABLE_VERIFY_MODE", "VCPU_INFO", "HVM_IDENT_PT", "HVM_VM86_TSS",
	"TMEM", "TMEM_EXTRA", "TSC_INFO", "HVM_CONSOLE_PFN", "LAST_CHECKPOINT",
	"HVM_ACPI_IOPORTS_LOCATION", "HVM_VIRIDIAN", "COMPRESSED_DATA",
	"ENABLE_COMPRESSION", "HVM_GENERATION_ID_ADDR", "HVM_PAGING_RING_PFN",
	"HVM_MONITOR_RING_PFN", "HVM_SHARING_RING_PFN", "TOOLSTACK",
	"HVM_IOREQ_SERVER_PFN", "HVM_NR_IOREQ_SERVER_PAGES",
}

// chunkName names a chunk marker: PAGE_BATCH for a positive one, the
// XC_SAVE_ID_ name without its prefix for the others.
func chunkName(m int32) string {
	switch {
	case m > 0:
		return "PAGE_BATCH"
	case m >= chunkMin:
		return chunkNames[-m]
	}
	return fmt.Sprintf("UNKNOWN_%d", m)
}

// hvmParamChunks maps the chunks that each carry one HVM parameter to the
// parameter's index (public/hvm/params.h).
var hvmParamChunks = map[int32]uint64{
	chunkHVMIdentPT:             12, // HVM_PARAM_IDENT_PT
	chunkHVMVM86TSS:             15, // HVM_PARAM_VM86_TSS
	chunkHVMConsolePFN:          17, // HVM_PARAM_CONSOLE_PFN
	chunkHVMACPIIoportsLocation: 19, // HVM_PARAM_ACPI_IOPORTS_LOCATION
	chunkHVMViridian:            9,  // HVM_PARAM_VIRIDIAN
	chunkHVMGenerationIDAddr:    34, // HVM_PARAM_VM_GENERATION_ID_ADDR
	chunkHVMPagingRingPFN:       27, // HVM_PARAM_PAGING_RING_PFN
	chunkHVMMonitorRingPFN:      28, // HVM_PARAM_MONITOR_RING_PFN
	chunkHVMSharingRingPFN:      29, // HVM_PARAM_SHARING_RING_PFN
	chunkHVMIoreqServerPFN:      32, // HVM_PARAM_IOREQ_SERVER_PFN
	chunkHVMNrIoreqServerPages:  33, // HVM_PARAM_NR_IOREQ_SERVER_PAGES
}

// The HVM parameters of the HVM tail's three "magic" pfns.
const (
	hvmParamStorePFN    = 1 // HVM_PARAM_STORE_PFN
	hvmParamIoreqPFN    = 5 // HVM_PARAM_IOREQ_PFN
	hvmParamBufioreqPFN = 6 // HVM_PARAM_BUFIOREQ_PFN
)

// Wire sizes and values.
const (
	// Sizes of the chunk bodies after their marker.
	hvmParamChunkSize = 12 // pad(4) value(8)
	tscChunkSize      = 20 // mode(4) nsec(8) khz(4) incarnation(4)

	// The extended-info blocks and the vCPU contexts they announce:
	// vcpu_guest_context_x86_32_t and _64_t (public/arch-x86/xen-x86_*.h)
	// as their sizes tell them apart.
	vcpuContext32 = 0xaf0
	vcpuContext64 = 0x1430
	vcpuExtended  = 128 // xen_domctl_ext_vcpucontext, as the legacy saver sent it
	xsaveHeader   = 16  // xfeature mask(8) size(8) before each vCPU's XSAVE area

	sharedInfoSize = 4096

	// pfnTypeMask and pfnMask split a legacy pfn entry: the
	// XEN_DOMCTL_PFINFO_* type in bits 28-31, the pfn in bits 0-27.
	pfnTypeMask = 0xf0000000
	pfnMask     = 0x0fffffff
	// pfnBareXTAB is the entry the saver wrote for pfns it could not map;
	// Xen's converter drops these, and so do we.
	pfnBareXTAB = 0xf0000000
	// pfnTypeNoData is the first type without page data (BROKEN; XALLOC
	// and XTAB follow).
	pfnTypeNoData = 0xd0000000

	// The HVM context is a list of hvm_save_descriptor (public/hvm/save.h)
	// starting with HVM_SAVE_CODE(HEADER) and ending with END.
	hvmDescSize     = 8 // typecode(2) instance(2) length(4)
	hvmCodeEnd      = 0
	hvmCodeHeader   = 1
	hvmHeaderLength = 24 // struct hvm_save_header
	hvmFileMagic    = 0x54381286

	// QemuSignature starts the device-model tail that legacy libxl wrote
	// after an HVM guest's libxc stream: a uint32 length and the data
	// follow.
	QemuSignature = "DeviceModelRecord0002"
	// Two other signatures exist: one whose data runs to the end of the
	// input, and Remus's. Xen's converter supports neither.
	qemuSignatureToEOF = "QemuDeviceModelRecord"
	qemuSignatureRemus = "RemusDeviceModelState"
)

// Limits on lengths and counts read from the wire, checked before
// anything is allocated or read.
const (
	// MaxBatch is the legacy saver's MAX_BATCH_SIZE: no page batch holds
	// more than 1024 pages.
	MaxBatch = 1024

	// MaxP2MSize caps the p2m size: a legacy pfn entry holds the pfn in
	// its low 28 bits, so no legacy guest had more than 2^28 pfns.
	MaxP2MSize = 1 << 28

	// MaxVCPUID is Xen's converter's MAX_VCPU_ID (and the legacy
	// restorer's XC_SR_MAX_VCPUS - 1).
	MaxVCPUID = 4095

	// MaxExtendedInfo caps the extended-info blocks: the three known
	// blocks total under 6 KiB.
	MaxExtendedInfo = 64 << 10

	// MaxXSave caps the per-vCPU XSAVE area. Xen 4.4's largest (AVX-512)
	// was under 3 KiB.
	MaxXSave = 64 << 10

	// MaxToolstack caps the toolstack chunk. libxl sent its qemu physmap
	// table there, a few hundred octets.
	MaxToolstack = 16 << 20

	// MaxHVMContext caps the HVM context blob: a few KiB per vCPU.
	MaxHVMContext = 16 << 20

	// MaxQemuTail caps the device-model tail: it must fit in one libxl
	// EMULATOR_CONTEXT record after that record's 8-octet sub-header.
	MaxQemuTail = 128<<20 - 8
)
