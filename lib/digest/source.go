package digest

import (
	"encoding/binary"
	"io"

	"github.com/xstream/xstream/lib/domain"
	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

// Source computes the digest of a domain held by a backend, from its
// pages and records directly (not through a stream), so that comparing it
// with the digest of a saved stream checks the saver.
func Source(src domain.Source) (string, error) {
	d := New()
	defer d.Close()
	info := src.Info()
	d.SetDomainType(info.Type)
	recs, err := src.Records()
	if err != nil {
		return "", err
	}
	for _, r := range recs {
		if r.Layer == domain.Libxl {
			if len(r.Body) < 8 {
				continue
			}
			d.Emulator(libxl.RecordType(r.Type), binary.LittleEndian.Uint32(r.Body), binary.LittleEndian.Uint32(r.Body[4:]), r.Body[8:])
			continue
		}
		if err := d.Record(stream.RecordType(r.Type), r.Body, binary.LittleEndian); err != nil {
			return "", err
		}
	}
	const n = 1024
	types := make([]stream.PageType, n)
	data := make([]byte, n*stream.PageSize)
	for start := uint64(0); start < info.PFNs; start += n {
		k := int(min(n, info.PFNs-start))
		if _, err := src.ReadPages(start, types[:k], data); err != nil {
			return "", err
		}
		off := 0
		for i, t := range types[:k] {
			if t == domain.PageAbsent {
				continue
			}
			var page []byte
			if t.HasData() {
				page = data[off : off+stream.PageSize]
				off += stream.PageSize
			}
			if err := d.Page(start+uint64(i), t, page); err != nil {
				return "", err
			}
		}
	}
	return d.Sum()
}

// Stream returns the digest of the stream in r (xl, libxl or libxc),
// verifying it on the way.
func Stream(r io.Reader) (string, error) {
	wk, err := sniff.NewWalker(r, &sniff.Options{Verify: true})
	if err != nil {
		return "", err
	}
	d := New()
	defer d.Close()
	for {
		it, err := wk.Next()
		if err == io.EOF {
			return d.Sum()
		}
		if err != nil {
			return "", err
		}
		if err := d.Add(it); err != nil {
			return "", err
		}
	}
}
