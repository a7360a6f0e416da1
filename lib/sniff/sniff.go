// Package sniff tells, from the first octets of an input, which of the
// formats xstream reads it is, and walks every layer of it (xl header,
// libxl records, the libxc stream inside) as one sequence of items.
//
// Detection happens once, at the edge: Detect peeks and hands back a
// reader that still starts at octet 0.
package sniff

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

// Kind is a recognised input format.
type Kind int

// Input kinds. Legacy and compressed inputs are recognised so that the
// tools can say what they are; reading them is for their own packages.
const (
	Unknown Kind = iota
	XL           // xl save-file header (followed by libxl v2 or libxc)
	Libxl        // libxl v2 stream
	Libxc        // libxc v2/v3 stream
	Legacy       // pre-v2 libxc stream (no marker)
	Zstd         // zstd frame
	LZ4          // lz4 frame
	Gzip
	Empty     // no input at all
	Xz        // xz, which nothing here reads
	Bzip2     // bzip2, likewise
	LZ4Legacy // lz4's legacy format (lz4 -l), which has no checksums
)

func (k Kind) String() string {
	switch k {
	case XL:
		return "xl"
	case Libxl:
		return "libxl"
	case Libxc:
		return "libxc"
	case Legacy:
		return "legacy"
	case Zstd:
		return "zstd"
	case LZ4:
		return "lz4"
	case Gzip:
		return "gzip"
	case Empty:
		return "empty"
	case Xz:
		return "xz"
	case Bzip2:
		return "bzip2"
	case LZ4Legacy:
		return "lz4-legacy"
	}
	return "unknown"
}

// Info is what one look at the first octets tells.
type Info struct {
	Kind Kind
	// Version is the libxc image version (Libxc) or 2 (Libxl).
	Version uint32
	// BigEndian reports the declared byte order (XL, Libxl, Libxc).
	BigEndian bool
}

func (i Info) String() string {
	s := i.Kind.String()
	if i.Kind == Libxc {
		s += fmt.Sprintf(" v%d", i.Version)
	}
	if i.Kind == XL || i.Kind == Libxl || i.Kind == Libxc {
		if i.BigEndian {
			s += " big-endian"
		} else {
			s += " little-endian"
		}
	}
	return s
}

// PeekSize is how many octets Detect looks at: enough for Identify.
const PeekSize = 48

var (
	zstdMagic = []byte{0x28, 0xB5, 0x2F, 0xFD}
	lz4Magic  = []byte{0x04, 0x22, 0x4D, 0x18}
	gzipMagic = []byte{0x1F, 0x8B}
	xzMagic   = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}
	lz4Legacy = []byte{0x02, 0x21, 0x4C, 0x18}
	// skippableMagic (0x184D2A50 to 0x184D2A5F, little-endian) starts a
	// skippable frame of zstd or lz4.
	skippableMagic uint32 = 0x184D2A50
	libxcHead             = []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 'X', 'E', 'N', 'F'}
)

// Identify classifies the octets b, the start of an input.
func Identify(b []byte) Info {
	switch {
	case len(b) == 0:
		return Info{Kind: Empty}
	case xl.HasMagic(b) && len(b) >= len(xl.Magic):
		info := Info{Kind: XL}
		if len(b) >= 36 && binary.BigEndian.Uint32(b[32:]) == xl.ByteOrderValue {
			info.BigEndian = true
		}
		return info
	case len(b) >= libxl.HeaderSize && binary.BigEndian.Uint64(b) == libxl.Ident:
		return Info{Kind: Libxl, Version: binary.BigEndian.Uint32(b[8:]),
			BigEndian: binary.BigEndian.Uint32(b[12:])&libxl.OptionBigEndian != 0}
	case len(b) >= 18 && bytes.HasPrefix(b, libxcHead):
		return Info{Kind: Libxc, Version: binary.BigEndian.Uint32(b[12:]),
			BigEndian: binary.BigEndian.Uint16(b[16:])&stream.OptionBigEndian != 0}
	case bytes.HasPrefix(b, zstdMagic):
		return Info{Kind: Zstd}
	case bytes.HasPrefix(b, lz4Magic):
		return Info{Kind: LZ4}
	case bytes.HasPrefix(b, gzipMagic):
		return Info{Kind: Gzip}
	case bytes.HasPrefix(b, xzMagic):
		return Info{Kind: Xz}
	case len(b) >= 4 && string(b[:3]) == "BZh" && b[3] >= '1' && b[3] <= '9':
		return Info{Kind: Bzip2}
	case bytes.HasPrefix(b, lz4Legacy):
		return Info{Kind: LZ4Legacy}
	case len(b) >= 8 && binary.LittleEndian.Uint32(b)&0xFFFFFFF0 == skippableMagic:
		// A skippable frame, which zstd and lz4 both define (our
		// compressed output starts with one, a check frame): the frame
		// after it tells which.
		if n := 8 + int(binary.LittleEndian.Uint32(b[4:])); n >= 8 && n < len(b) {
			switch k := Identify(b[n:]).Kind; k {
			case Zstd, LZ4:
				return Info{Kind: k}
			}
		}
		return Info{Kind: Unknown}
	case len(b) >= 8 && !bytes.Equal(b[:8], libxcHead[:8]):
		// The libxc spec: a legacy image has one or more zero bits in
		// its first 8 octets. Whether it really is one is for the
		// legacy reader to confirm.
		return Info{Kind: Legacy}
	}
	return Info{Kind: Unknown}
}

// Detect peeks at the start of r and returns what it is and a Source that
// still starts at octet 0.
func Detect(r io.Reader) (Info, *stream.Source, error) {
	src := stream.NewSource(r, 0)
	b, err := src.Peek(PeekSize)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF && len(b) == 0 {
		return Info{}, src, err
	}
	return IdentifyNext(src), src, nil
}

// How much of what looks like gzip IdentifyNext decodes, out of how much.
const (
	gzipProbeIn  = 32 << 10
	gzipProbeOut = 4 << 10
)

// IdentifyNext classifies what src holds from where it is, reading
// nothing, as Identify does its first octets; but gzip's magic is two
// octets only, which a legacy stream also starts with when its p2m size
// is 0x8b1f in its low half (0x8b1f, 0x18b1f, ...): what looks like gzip
// is gzip only if its start decodes as gzip.
func IdentifyNext(src *stream.Source) Info {
	b, _ := src.Peek(PeekSize)
	info := Identify(b)
	if info.Kind == Gzip {
		head, _ := src.Peek(gzipProbeIn)
		if !decodesAsGzip(head) {
			// As Identify's last rule: the legacy reader confirms.
			info = Info{Kind: Unknown}
			if len(b) >= 8 {
				info = Info{Kind: Legacy}
			}
		}
	}
	return info
}

// decodesAsGzip tells whether b, which starts with gzip's magic, starts
// as gzip does (RFC 1952): a header with deflate as its method and no
// reserved flag, then deflate data that decodes. A legacy stream's octets
// do not: a reserved block type, a stored block whose length's complement
// does not match, codes that do not exist. Running out of b, a long name
// say, is no evidence against gzip; what follows the first member
// (another, or padding) is not looked at.
func decodesAsGzip(b []byte) bool {
	const (
		fhcrc    = 1 << 1
		fextra   = 1 << 2
		fname    = 1 << 3
		fcomment = 1 << 4
	)
	if len(b) < 10 {
		return true // too short to tell
	}
	flg := b[3]
	if b[2] != 8 || flg&0xE0 != 0 {
		return false
	}
	p := 10 // after MTIME, XFL and OS
	if flg&fextra != 0 {
		if len(b) < p+2 {
			return true
		}
		p += 2 + int(binary.LittleEndian.Uint16(b[p:]))
	}
	for _, f := range []byte{fname, fcomment} { // zero-terminated
		if flg&f != 0 && p < len(b) {
			i := bytes.IndexByte(b[p:], 0)
			if i < 0 {
				return true
			}
			p += i + 1
		}
	}
	if flg&fhcrc != 0 {
		p += 2
	}
	if p >= len(b) {
		return true
	}
	_, err := io.CopyN(io.Discard, flate.NewReader(bytes.NewReader(b[p:])), gzipProbeOut)
	var ce flate.CorruptInputError
	return !errors.As(err, &ce)
}
