// Package restore reads a migration stream into a backend: every record
// is verified on the way in, and the domain appears only when the whole
// stream has arrived and checked out; any failure aborts the builder and
// leaves nothing behind.
package restore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/xstream/xstream/lib/domain"
	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

// Options tune Restore.
type Options struct {
	// Name of the new domain; empty means the name in the xl config.
	Name string
	// Replace allows an existing domain of that name to be replaced.
	Replace bool
	// Progress, if set, is called now and then with the octets read.
	Progress func(read int64)
	// Filter, if set, turns the input into the v2/v3 stream to read
	// (upgrading a legacy stream, decompressing). It runs after the
	// domain's name is taken, so that a second restore of a name fails at
	// once rather than after the first has read its input's start.
	Filter func(io.Reader) (io.Reader, error)
}

// ErrNoName is returned when the stream carries no name and none was given.
var ErrNoName = errors.New("the stream has no xl config naming the domain; give a name")

// Restore reads the stream in r, compressed (zstd, lz4) or not, into be
// and returns the new domain's info.
func Restore(r io.Reader, be domain.Backend, opts Options) (info domain.Info, err error) {
	var (
		b       domain.Builder
		config  []byte
		verify  bool // VERIFY seen: later pages are checks, not content
		page    stream.PageData
		vcpus   = map[uint32]bool{}
		lastRep int64
	)
	defer func() {
		if err != nil && b != nil {
			b.Abort()
		}
	}()
	// With the name known, take the domain (and its writer lock) before
	// reading: a second restore of the name fails at once.
	if opts.Name != "" {
		if b, err = be.Create(opts.Name, opts.Replace); err != nil {
			return info, err
		}
	}
	// Compressed input is decompressed here, at the edge, once the lock
	// is held (opening it reads); a legacy stream is then upgraded by the
	// Filter.
	in, err := sniff.Open(r)
	if err != nil {
		return info, err
	}
	defer in.Close()
	var rr io.Reader = in.Source
	if opts.Filter != nil {
		if rr, err = opts.Filter(rr); err != nil {
			return info, err
		}
	}
	wk, err := sniff.NewWalker(rr, &sniff.Options{Verify: true})
	if err != nil {
		return info, err
	}
	var early []earlyRecord // emulator records that came before the domain
	var earlyBytes int64
	for {
		it, err := wk.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return info, err
		}
		if opts.Progress != nil && wk.Offset()-lastRep >= 16<<20 {
			lastRep = wk.Offset()
			opts.Progress(lastRep)
		}
		switch it.Kind {
		case sniff.XLHeader:
			config = append([]byte(nil), it.XL.Config...)
		case sniff.LibxcHeaders:
			if info.Type != 0 {
				return info, errors.New("restore: a second libxc stream")
			}
			name := opts.Name
			if b == nil {
				if name = NameFromConfig(config); name == "" {
					return info, ErrNoName
				}
				if b, err = be.Create(name, opts.Replace); err != nil {
					return info, err
				}
			}
			info = domain.Info{Name: name, Type: it.Domain.Type, PageShift: it.Domain.PageShift,
				XenMajor: it.Domain.XenMajor, XenMinor: it.Domain.XenMinor, Config: config}
			if err := b.SetInfo(info); err != nil {
				return info, err
			}
			for _, p := range early {
				if err := b.SetRecord(p.r); err != nil {
					return info, inRecord(p.rec, err)
				}
			}
			early = nil
		case sniff.LibxcRecord:
			rec := it.Libxc
			switch rec.Type {
			case stream.RecVerify:
				verify = true
				continue
			case stream.RecPageData:
				if verify {
					continue
				}
				if err := page.Decode(rec.Body, it.Order); err != nil {
					return info, rec.Error(err)
				}
				if err := b.SetPages(page.PFNs, page.Data); err != nil {
					return info, inRecord(rec, err)
				}
				continue
			case stream.RecX86PVInfo, stream.RecX86PVP2MFrames, stream.RecSharedInfo, stream.RecX86TSCInfo,
				stream.RecHVMContext, stream.RecHVMParams, stream.RecX86CPUIDPolicy, stream.RecX86MSRPolicy,
				stream.RecX86PVVCPUBasic, stream.RecX86PVVCPUExtended, stream.RecX86PVVCPUXSave, stream.RecX86PVVCPUMSRs:
			default:
				continue // signalling and optional records are not domain state
			}
			body, err := stream.Decode(rec.Type, rec.Body, it.Order)
			if err != nil {
				return info, rec.Error(err)
			}
			switch v := body.(type) {
			case *stream.X86PVVCPU:
				if len(v.Context) == 0 {
					continue // erratum 1
				}
				vcpus[v.VCPUID] = true
			case *stream.HVMParams:
				if len(v.Params) == 0 {
					continue
				}
			case *stream.X86PVP2MFrames:
				info.PFNs = uint64(v.EndPFN) + 1
				if err := b.SetInfo(info); err != nil {
					return info, inRecord(rec, err)
				}
			}
			if err := b.SetRecord(domain.Record{Layer: domain.Libxc, Type: uint32(rec.Type),
				Body: body.AppendBody(nil, binary.LittleEndian)}); err != nil {
				return info, inRecord(rec, err)
			}
		case sniff.LibxlRecord:
			rec := it.Libxl
			if rec.Type != libxl.RecEmulatorContext && rec.Type != libxl.RecEmulatorXenstoreData {
				continue
			}
			id, idx, data, err := rec.Emulator(it.Order)
			if err != nil {
				return info, rec.Error(err)
			}
			r := emulatorRecord(rec.Type, id, idx, data)
			if b == nil {
				// Before LIBXC_CONTEXT, which libxl allows: the domain is
				// made once the libxc headers name its type. Held in
				// memory meanwhile, so bounded.
				if earlyBytes += int64(len(r.Body)); earlyBytes > maxEarly {
					return info, rec.Error(stream.OverLimit("more than %d octets of emulator records before LIBXC_CONTEXT", maxEarly))
				}
				at := *rec // the walker reuses its record
				at.Body = nil
				early = append(early, earlyRecord{&at, r})
				continue
			}
			if err := b.SetRecord(r); err != nil {
				return info, inRecord(rec, err)
			}
		case sniff.QemuTail:
			if b == nil {
				return info, errors.New("restore: qemu tail without a domain")
			}
			if err := b.SetRecord(emulatorRecord(libxl.RecEmulatorContext, libxl.EmulatorUnknown, 0, it.Qemu)); err != nil {
				return info, err
			}
		}
	}
	if b == nil {
		return info, errors.New("restore: the stream holds no domain")
	}
	info.VCPUs = len(vcpus)
	if info.VCPUs == 0 { // HVM: the count is in the config, not the stream
		info.VCPUs = vcpusFromConfig(config)
	}
	if err := b.SetInfo(info); err != nil {
		return info, err
	}
	return b.Commit()
}

// maxEarly bounds the emulator records held before the domain is made:
// a device model's state is a few MiB at most, and libxl writes it after
// LIBXC_CONTEXT.
var maxEarly int64 = 256 << 20 // a variable for the tests

// earlyRecord is an emulator record met before the libxc headers, kept
// until the domain is made.
type earlyRecord struct {
	rec *libxl.Record
	r   domain.Record
}

// recordError is a record of either layer, which can name itself in an
// error.
type recordError interface {
	Error(error) *stream.FormatError
}

// inRecord names the record in a backend's error that the record's
// content caused (a pfn over the store's limit, say), so that it reads,
// and exits, as a bad stream; other errors (I/O) pass as they are.
func inRecord(rec recordError, err error) error {
	if errors.Is(err, stream.ErrLimit) || errors.Is(err, stream.ErrCorrupt) || errors.Is(err, stream.ErrUnsupported) {
		return rec.Error(err)
	}
	return err
}

func emulatorRecord(t libxl.RecordType, id, idx uint32, data []byte) domain.Record {
	body := make([]byte, 8, 8+len(data))
	binary.LittleEndian.PutUint32(body, id)
	binary.LittleEndian.PutUint32(body[4:], idx)
	return domain.Record{Layer: domain.Libxl, Type: uint32(t), Body: append(body, data...)}
}

var textName = regexp.MustCompile(`(?m)^\s*name\s*=\s*["']([^"']+)["']`)

// NameFromConfig returns the domain name in an xl config: JSON
// (c_info.name) or the classic text form (name = "...").
func NameFromConfig(config []byte) string {
	var j struct {
		CInfo struct {
			Name string `json:"name"`
		} `json:"c_info"`
	}
	// xl counts the config's terminating NUL in its length.
	config = bytes.TrimRight(config, "\x00")
	if json.Unmarshal(config, &j) == nil && j.CInfo.Name != "" {
		return j.CInfo.Name
	}
	// xl's config parser keeps the last of several settings.
	if m := textName.FindAllSubmatch(config, -1); m != nil {
		return string(m[len(m)-1][1])
	}
	return ""
}

// vcpusFromConfig returns b_info.max_vcpus of a JSON xl config, or 0.
func vcpusFromConfig(config []byte) int {
	var j struct {
		BInfo struct {
			MaxVCPUs int `json:"max_vcpus"`
		} `json:"b_info"`
	}
	if json.Unmarshal(bytes.TrimRight(config, "\x00"), &j) == nil {
		return j.BInfo.MaxVCPUs
	}
	return 0
}

// Describe gives a one-line account of a restored domain.
func Describe(info domain.Info) string {
	return fmt.Sprintf("%s: %v, %d pages (%d MiB), %d vCPUs", info.Name, info.Type, info.Pages, info.Pages*stream.PageSize>>20, info.VCPUs)
}
