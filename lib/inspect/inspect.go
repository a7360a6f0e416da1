// Package inspect describes stream items for people and programs: a
// one-line summary, a JSON object, and whole-stream statistics.
package inspect

import (
	"bytes"
	"fmt"
	"math/bits"
	"sort"
	"strconv"
	"strings"

	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

// Fields returns the item's type-specific details as JSON-ready values.
// Keys are stable; the README documents them.
func Fields(it *sniff.Item) map[string]any {
	f := map[string]any{}
	switch it.Kind {
	case sniff.XLHeader:
		h := it.XL
		f["big_endian"] = h.Order.Uint32([]byte{1, 2, 3, 4}) == 0x01020304
		f["mandatory_flags"] = h.MandatoryFlags
		f["optional_flags"] = h.OptionalFlags
		f["streamv2"] = h.StreamV2()
		f["config_length"] = len(h.Config)
	case sniff.LibxlHeader:
		f["big_endian"] = it.LibxlHdr.Options&libxl.OptionBigEndian != 0
		f["legacy_converted"] = it.LibxlHdr.Options&libxl.OptionLegacy != 0
	case sniff.LibxcHeaders:
		f["version"] = it.Image.Version
		f["big_endian"] = it.Image.BigEndian()
		f["domain_type"] = it.Domain.Type.String()
		f["page_shift"] = it.Domain.PageShift
		f["xen_major"] = it.Domain.XenMajor
		f["xen_minor"] = it.Domain.XenMinor
	case sniff.LibxlRecord:
		r := it.Libxl
		if r.Type == libxl.RecEmulatorContext || r.Type == libxl.RecEmulatorXenstoreData {
			if id, idx, data, err := r.Emulator(it.Order); err == nil {
				f["emulator"] = libxl.EmulatorName(id)
				f["emulator_index"] = idx
				if r.Type == libxl.RecEmulatorXenstoreData {
					if kv, err := libxl.XenstorePairs(data); err == nil {
						f["keys"] = len(kv)
					}
				}
			}
		}
	case sniff.QemuTail:
		f["signature"] = sniff.QemuSignature
	case sniff.LibxcRecord:
		libxcFields(f, it.Libxc, it.Order)
	}
	return f
}

func libxcFields(f map[string]any, rec *stream.Record, order stream.ByteOrder) {
	if rec.Implied {
		f["implied"] = true
	}
	if rec.Type == stream.RecPageData {
		var p stream.PageData
		if p.DecodeSkipped(rec.Body, rec.Skipped, order) != nil {
			return
		}
		lo, hi := ^uint64(0), uint64(0)
		types := map[string]int{}
		for _, w := range p.PFNs {
			pfn, t, _ := stream.SplitPFNWord(w)
			lo, hi = min(lo, pfn), max(hi, pfn)
			types[t.String()]++
		}
		f["count"] = len(p.PFNs)
		f["data_pages"] = (len(rec.Body) + rec.Skipped - 8 - 8*len(p.PFNs)) / stream.PageSize
		f["pfn_first"] = lo
		f["pfn_last"] = hi
		f["page_types"] = types
		return
	}
	b, err := stream.Decode(rec.Type, rec.Body, order)
	if err != nil {
		return
	}
	switch v := b.(type) {
	case *stream.X86PVInfo:
		f["guest_width"] = v.GuestWidth
		f["pt_levels"] = v.PTLevels
	case *stream.X86PVP2MFrames:
		f["start_pfn"] = v.StartPFN
		f["end_pfn"] = v.EndPFN
		f["frames"] = len(v.Frames)
	case *stream.X86PVVCPU:
		f["vcpu"] = v.VCPUID
		f["context_length"] = len(v.Context)
	case *stream.X86TSCInfo:
		f["tsc_mode"] = v.Mode
		f["khz"] = v.KHz
		f["nsec"] = v.Nsec
		f["incarnation"] = v.Incarnation
	case *stream.HVMParams:
		f["count"] = len(v.Params)
	case *stream.X86CPUIDPolicy:
		f["leaves"] = len(v.Leaves)
	case *stream.X86MSRPolicy:
		f["msrs"] = len(v.MSRs)
	}
}

// Line returns the item's line in a listing: offset, layer, record index
// ("-" for headers), type, body length and summary, without a newline.
func Line(it *sniff.Item) string {
	idx := "-"
	if it.Index >= 0 {
		idx = strconv.Itoa(it.Index)
	}
	return fmt.Sprintf("%#010x %-5s %5s %-24s %9d  %s", it.Offset, it.Layer, idx, it.Name(), it.Length(), Summary(it))
}

// Summary returns a short human description of the item's content.
func Summary(it *sniff.Item) string {
	f := Fields(it)
	switch it.Kind {
	case sniff.XLHeader:
		s := fmt.Sprintf("mandatory %#x optional %#x, config %d octets", f["mandatory_flags"], f["optional_flags"], f["config_length"])
		if it.XL.StreamV2() {
			return s + ", libxl v2 stream follows"
		}
		return s + ", libxc stream follows"
	case sniff.LibxlHeader:
		s := "v2 " + endian(f["big_endian"])
		if f["legacy_converted"] == true {
			s += ", legacy converted"
		}
		return s
	case sniff.LibxcHeaders:
		return fmt.Sprintf("v%d %s, %s, page shift %d", it.Image.Version, endian(f["big_endian"]), it.Domain, it.Domain.PageShift)
	case sniff.LibxlRecord:
		if e, ok := f["emulator"]; ok {
			s := fmt.Sprintf("%v index %v", e, f["emulator_index"])
			if k, ok := f["keys"]; ok {
				s += fmt.Sprintf(", %v keys", k)
			}
			return s
		}
		return ""
	case sniff.QemuTail:
		return "legacy device model state"
	}
	rec := it.Libxc
	if rec.Implied {
		return "implied by a version 2 stream (not on the wire)"
	}
	switch rec.Type {
	case stream.RecPageData:
		if _, ok := f["count"]; !ok {
			return "malformed"
		}
		return fmt.Sprintf("%v pfns (%v with data) %#x-%#x %s", f["count"], f["data_pages"], f["pfn_first"], f["pfn_last"], typeList(f["page_types"].(map[string]int)))
	case stream.RecX86PVInfo:
		return fmt.Sprintf("%v-bit guest, %v page-table levels", 8*int(f["guest_width"].(uint8)), f["pt_levels"])
	case stream.RecX86PVP2MFrames:
		return fmt.Sprintf("pfns %#x-%#x in %v frames", f["start_pfn"], f["end_pfn"], f["frames"])
	case stream.RecX86PVVCPUBasic, stream.RecX86PVVCPUExtended, stream.RecX86PVVCPUXSave, stream.RecX86PVVCPUMSRs:
		return fmt.Sprintf("vcpu%v, %v octets of context", f["vcpu"], f["context_length"])
	case stream.RecX86TSCInfo:
		return fmt.Sprintf("mode %v, %v kHz, %v ns, incarnation %v", f["tsc_mode"], f["khz"], f["nsec"], f["incarnation"])
	case stream.RecHVMParams:
		return fmt.Sprintf("%v params", f["count"])
	case stream.RecX86CPUIDPolicy:
		return fmt.Sprintf("%v leaves", f["leaves"])
	case stream.RecX86MSRPolicy:
		return fmt.Sprintf("%v MSRs", f["msrs"])
	}
	return ""
}

func endian(v any) string {
	if v == true {
		return "big-endian"
	}
	return "little-endian"
}

func typeList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// TypeStats counts one record type.
type TypeStats struct {
	Layer string `json:"layer"`
	Type  string `json:"type"`
	Count int64  `json:"count"`
	Bytes int64  `json:"bytes"` // on the wire, headers and padding included
}

// Stats summarises a whole stream.
type Stats struct {
	Format        string           `json:"format"`
	DomainType    string           `json:"domain_type,omitempty"`
	Bytes         int64            `json:"bytes"`
	Records       []*TypeStats     `json:"records"`
	PageTypes     map[string]int64 `json:"page_types"`
	PagesWithData int64            `json:"pages_with_data"`
	ZeroPages     int64            `json:"zero_pages"`
	DistinctPFNs  int64            `json:"distinct_pfns"`
	ResentPages   int64            `json:"resent_pages"`
	MemoryBytes   int64            `json:"memory_bytes"`

	byKey map[string]*TypeStats
	seen  map[uint64]*[64]uint64 // pfn>>12 → bitmap of populated pfns
	page  stream.PageData
}

// NewStats returns empty statistics for an input of the given format.
func NewStats(format string) *Stats {
	return &Stats{Format: format, PageTypes: map[string]int64{}, byKey: map[string]*TypeStats{}, seen: map[uint64]*[64]uint64{}}
}

var zeroPage [stream.PageSize]byte

// maxSeenChunks bounds the distinct-pfn bitmap (512 octets per 4096
// pfns): 2^16 chunks cover 2^28 pfns, a 1 TiB domain, in 32 MiB.
const maxSeenChunks = 1 << 16

// Add counts one item.
func (s *Stats) Add(it *sniff.Item) error {
	s.Bytes += it.Size
	if it.Kind == sniff.LibxcHeaders {
		s.DomainType = it.Domain.Type.String()
	}
	key := string(it.Layer) + "/" + it.Name()
	ts := s.byKey[key]
	if ts == nil {
		ts = &TypeStats{Layer: string(it.Layer), Type: it.Name()}
		s.byKey[key] = ts
		s.Records = append(s.Records, ts)
	}
	ts.Count++
	ts.Bytes += it.Size
	if it.Kind != sniff.LibxcRecord || it.Libxc.Type != stream.RecPageData {
		return nil
	}
	if err := s.page.Decode(it.Libxc.Body, it.Order); err != nil {
		return err
	}
	data := s.page.Data
	for _, w := range s.page.PFNs {
		pfn, t, _ := stream.SplitPFNWord(w)
		s.PageTypes[t.String()]++
		if t.HasData() {
			s.PagesWithData++
			if bytes.Equal(data[:stream.PageSize], zeroPage[:]) {
				s.ZeroPages++
			}
			data = data[stream.PageSize:]
		}
		if t == stream.PageXTab {
			continue
		}
		c := s.seen[pfn>>12]
		if c == nil {
			if len(s.seen) >= maxSeenChunks {
				continue // too scattered to count; DistinctPFNs stays a lower bound
			}
			c = new([64]uint64)
			s.seen[pfn>>12] = c
		}
		word, bit := (pfn>>6)&63, pfn&63
		if c[word]&(1<<bit) != 0 {
			s.ResentPages++
		} else {
			c[word] |= 1 << bit
			s.DistinctPFNs++
		}
	}
	return nil
}

// Finish computes the derived figures.
func (s *Stats) Finish() {
	n := int64(0)
	for _, c := range s.seen {
		for _, w := range c {
			n += int64(bits.OnesCount64(w))
		}
	}
	s.DistinctPFNs = n
	s.MemoryBytes = n * stream.PageSize
}
