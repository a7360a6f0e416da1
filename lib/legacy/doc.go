// Package legacy reads the pre-v2 Xen save format ("legacy" in Xen's
// docs/specs/libxc-migration-stream.pandoc), as xc_domain_save of Xen 4.5
// and earlier wrote it from 32- and 64-bit toolstacks, for PV and HVM
// guests, bare or behind legacy libxl's and xl's framing, and returns it
// as the records of a libxc stream version 3 (package stream), the same
// records Xen's tools/python/scripts/convert-legacy-stream writes. The
// conversion is lossless for everything a restorer uses: only the list of
// unmapped pfns, the unused half of each HVM parameter chunk, and the
// saver's unmappable-pfn (bare XTAB) entries are dropped, as Xen's
// converter drops them.
//
// The format has no header, no version and no record lengths, and its
// unsigned longs are 4 or 8 octets as the saving toolstack was 32- or
// 64-bit. All of it is little-endian (x86), whatever the reading host.
//
//	[xl header]          "Xen saved domain, xl format\n \0 \r", flags (no
//	                     STREAMV2), the domain config    (package xl)
//	p2m_size             unsigned long
//	PV only:
//	  extended info      unsigned long ~0, uint32 total, then blocks of
//	                     char id[4], uint32 size, data:
//	                       "vcpu" vcpu_guest_context; size 0xaf0: 32-bit
//	                              guest, 0x1430: 64-bit guest
//	                       "extv" extended vCPU contexts follow in the tail
//	                       "xcnt" uint32 XSAVE size: XSAVE areas follow
//	  p2m frame list     unsigned long × ceil(p2m_size / (4096/guest width))
//	body: chunks, each starting with an int32 marker
//	  > 0                a page batch of that many pages (at most 1024):
//	                     unsigned long pfn entries (XEN_DOMCTL_PFINFO_* type
//	                     in bits 28-31, pfn in 0-27), then 4096 octets for
//	                     each entry whose type has data
//	  < 0                an XC_SAVE_ID_* chunk: VCPU_INFO, TSC_INFO, the
//	                     HVM parameters, TOOLSTACK, ENABLE_VERIFY_MODE, ...
//	  0                  end of the body
//	PV tail:             uint32 n, unsigned long × n unmapped pfns; per
//	                     online vCPU its basic context [, 128-octet
//	                     extended context] [, XSAVE mask, size and area];
//	                     the 4096-octet shared info page
//	HVM tail:            uint64 ioreq, buffered ioreq and xenstore pfns;
//	                     uint32 size and the HVM context (Xen's HVM save
//	                     records: a header with Xen's magic ... END)
//	[qemu tail]          HVM, legacy libxl: "DeviceModelRecord0002",
//	                     uint32 size, the device model's state
//
// Nothing in the stream says which width or guest type wrote it; Detect
// works both out by reading ahead in all four layouts and keeping the one
// that reads (see Detect), so that the only flags a user may need are the
// ones Xen's converter made mandatory, and only when a stream is truly
// ambiguous. A layout given in Options is checked, never trusted.
//
// Legacy streams arrive from old machines and over networks, so the
// Reader is hardened like package stream: every count and length from the
// wire is checked against a named limit before anything is allocated or
// read (a page batch's 1024 pages being the largest buffer), and bad
// input yields a *stream.FormatError with Layer "legacy", the byte offset
// and the chunk (ordinal and XC_SAVE_ID name), never a panic. Detection
// peeks at ProbeWindow octets and consumes nothing but the xl header. A
// stream that ends early yields an error wrapping io.ErrUnexpectedEOF.
//
// The package is synchronous and uses no goroutines.
package legacy
