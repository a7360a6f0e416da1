// Package domain defines what the save and restore engines need from a
// backend that holds domains: the embedded store (lib/store) or a real
// Xen host. The engines speak only these interfaces.
//
// A domain is its memory — pages by pfn, each with a XEN_DOMCTL_PFINFO
// type — and its state records: the libxc records that are not pages
// (X86_PV_INFO, X86_PV_P2M_FRAMES, vCPU contexts, SHARED_INFO,
// X86_TSC_INFO, HVM_PARAMS, HVM_CONTEXT, CPU policies) and libxl's
// emulator records. Typed record bodies are kept little-endian; opaque
// blobs exactly as they came.
package domain

import (
	"errors"
	"io"
	"os"

	"github.com/xstream/xstream/lib/stream"
)

// Info describes a domain.
type Info struct {
	Name      string            `json:"name"`
	Type      stream.DomainType `json:"type"`
	PageShift uint16            `json:"page_shift"`
	// PFNs is one past the highest pfn the domain may have.
	PFNs uint64 `json:"pfns"`
	// Pages is the number of populated pfns (with data or XALLOC/BROKEN).
	Pages    uint64 `json:"pages"`
	VCPUs    int    `json:"vcpus"`
	XenMajor uint32 `json:"xen_major"`
	XenMinor uint32 `json:"xen_minor"`
	// Config is the xl domain configuration (JSON), if any.
	Config []byte `json:"-"`
}

// Layer of a state record.
type Layer uint8

// Layers.
const (
	Libxc Layer = 0
	Libxl Layer = 1
)

// Record is a state record.
type Record struct {
	Layer Layer
	Type  uint32 // stream.RecordType or libxl.RecordType
	Body  []byte // typed fields little-endian
}

// Key identifies the record a later one of the same kind replaces: the
// vCPU id for vCPU records, emulator id and index for emulator records.
func (r *Record) Key() (uint64, error) {
	switch {
	case r.Layer == Libxc && r.Type >= uint32(stream.RecX86PVVCPUBasic) && r.Type <= uint32(stream.RecX86PVVCPUXSave),
		r.Layer == Libxc && r.Type == uint32(stream.RecX86PVVCPUMSRs):
		if len(r.Body) < 8 {
			return 0, stream.Corrupt("vCPU record of %d octets", len(r.Body))
		}
		return uint64(uint32(r.Body[0]) | uint32(r.Body[1])<<8 | uint32(r.Body[2])<<16 | uint32(r.Body[3])<<24), nil
	case r.Layer == Libxl:
		if len(r.Body) < 8 {
			return 0, stream.Corrupt("emulator record of %d octets", len(r.Body))
		}
		id := uint64(r.Body[0]) | uint64(r.Body[1])<<8 | uint64(r.Body[2])<<16 | uint64(r.Body[3])<<24
		idx := uint64(r.Body[4]) | uint64(r.Body[5])<<8 | uint64(r.Body[6])<<16 | uint64(r.Body[7])<<24
		return id<<32 | idx, nil
	}
	return 0, nil
}

// PageAbsent marks a pfn that is not populated in a type array.
const PageAbsent stream.PageType = 0xFF

// Source is a domain to save.
type Source interface {
	Info() Info
	// Records returns the state records, one per kind and key.
	Records() ([]Record, error)
	// ReadPages fills types[i] with the type of pfn start+i (PageAbsent
	// when not populated) for len(types) pfns, and data with the pages of
	// those whose type has data, in order. data must hold len(types)
	// pages; it returns how many it filled.
	ReadPages(start uint64, types []stream.PageType, data []byte) (int, error)
	// Pause stops the domain changing; Resume lets it go on. For a
	// stored domain both do nothing.
	Pause() error
	Resume() error
	io.Closer
}

// A PageFile is a Source whose memory lies in a file, pfn p's page at
// offset p<<stream.PageShift, a hole or the part past the file's end
// reading as zeros. Save then lets the kernel move pages from the file to
// a pipe without copying them through its own memory.
type PageFile interface {
	// PageTypes fills types as ReadPages does, reading no data.
	PageTypes(start uint64, types []stream.PageType) error
	// MemoryFile returns the file; it stays open until Close.
	MemoryFile() *os.File
}

// Builder makes a domain from a restored stream. Nothing is visible
// until Commit; Abort (or a failed Commit) leaves nothing behind.
type Builder interface {
	// SetInfo sets the domain's description; it comes first.
	SetInfo(Info) error
	// SetPages stores pages: pfn words (pfn and type) and the data of
	// those whose type has data, in order. XTAB removes a pfn.
	SetPages(pfns []uint64, data []byte) error
	// SetRecord stores a state record, replacing one of the same kind
	// and key.
	SetRecord(Record) error
	// Commit makes the domain visible and returns its final info.
	Commit() (Info, error)
	Abort() error
}

// Backend holds domains.
type Backend interface {
	// Open returns a domain to save.
	Open(name string) (Source, error)
	// Create returns a Builder for a new domain; replace allows an
	// existing domain of that name to be replaced at Commit.
	Create(name string, replace bool) (Builder, error)
	List() ([]Info, error)
	Destroy(name string) error
}

// Errors a backend returns, for errors.Is.
var (
	ErrNotFound = errors.New("no such domain")
	ErrExists   = errors.New("domain exists")
	ErrLocked   = errors.New("domain is locked by another writer")
)
