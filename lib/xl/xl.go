// Package xl reads and writes the header of an xl save file, which xl
// (tools/xl/xl_saverestore.c) writes in front of the libxl stream.
//
//	+--------------------------------------------------+
//	| magic "Xen saved domain, xl format\n \0 \r" (32)  |
//	+------------------+-------------------------------+
//	| byteorder        | mandatory_flags               |   4 × uint32 in the
//	+------------------+-------------------------------+   saver's byte order;
//	| optional_flags   | optional_data_len             |   byteorder is
//	+------------------+-------------------------------+   0x01020304
//	| optional data: config_len (uint32), config (JSON) |
//	+--------------------------------------------------+
//
// Mandatory flag bit 0 says the config is JSON, bit 1 (STREAMV2) that a
// libxl v2 stream follows; without it a legacy libxc stream follows.
package xl

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/xstream/xstream/lib/stream"
)

// Magic is the 32-octet xl save-file magic.
const Magic = "Xen saved domain, xl format\n \x00 \r"

// Header layout and flag values (tools/xl/xl.h).
const (
	FixedSize      = 48 // magic + four uint32
	ByteOrderValue = 0x01020304

	FlagJSON     uint32 = 1 << 0
	FlagStreamV2 uint32 = 1 << 1
	flagsKnown          = FlagJSON | FlagStreamV2

	// MaxOptionalData caps the optional data (the domain config). xl
	// reads it whole; a config is a few KiB.
	MaxOptionalData = 16 << 20
)

// Header is an xl save-file header.
type Header struct {
	Order          stream.ByteOrder
	MandatoryFlags uint32
	OptionalFlags  uint32
	// Config is the domain configuration (JSON when FlagJSON is set).
	Config []byte
	// Extra is optional data after the config, kept for an exact copy.
	Extra []byte
	// NoConfigLength is set when the optional data is empty, so there is
	// no config_len field at all (as opposed to a zero length).
	NoConfigLength bool
}

// StreamV2 reports whether a libxl v2 stream follows the header.
func (h *Header) StreamV2() bool { return h.MandatoryFlags&FlagStreamV2 != 0 }

// Size returns the header's size on the wire.
func (h *Header) Size() int64 {
	return FixedSize + int64(h.optLen())
}

func (h *Header) optLen() int {
	if h.NoConfigLength && len(h.Config) == 0 && len(h.Extra) == 0 {
		return 0
	}
	return 4 + len(h.Config) + len(h.Extra)
}

// AppendBinary appends the wire form of h.
func (h *Header) AppendBinary(b []byte) ([]byte, error) {
	o := h.Order
	if o == nil {
		o = binary.LittleEndian
	}
	if h.optLen() > MaxOptionalData {
		return b, fmt.Errorf("xl: config of %d octets exceeds the limit of %d", len(h.Config), MaxOptionalData)
	}
	b = append(b, Magic...)
	b = o.AppendUint32(b, ByteOrderValue)
	b = o.AppendUint32(b, h.MandatoryFlags)
	b = o.AppendUint32(b, h.OptionalFlags)
	b = o.AppendUint32(b, uint32(h.optLen()))
	if h.optLen() > 0 {
		b = o.AppendUint32(b, uint32(len(h.Config)))
		b = append(b, h.Config...)
		b = append(b, h.Extra...)
	}
	return b, nil
}

// HasMagic reports whether b starts with the xl magic (or with as much of
// it as b holds, when b is shorter).
func HasMagic(b []byte) bool {
	n := min(len(b), len(Magic))
	return n > 0 && string(b[:n]) == Magic[:n]
}

// Read reads an xl header from r, at the given offset for error messages.
func Read(r io.Reader, offset int64) (*Header, error) {
	herr := func(off int64, err error) error {
		return &stream.FormatError{Layer: "xl", Offset: off, Index: -1, Type: "header", Err: err}
	}
	var fixed [FixedSize]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, herr(offset, err)
	}
	if string(fixed[:32]) != Magic {
		return nil, herr(offset, stream.Corrupt("no xl save-file magic"))
	}
	h := &Header{}
	switch {
	case binary.LittleEndian.Uint32(fixed[32:]) == ByteOrderValue:
		h.Order = binary.LittleEndian
	case binary.BigEndian.Uint32(fixed[32:]) == ByteOrderValue:
		h.Order = binary.BigEndian
	default:
		return nil, herr(offset+32, stream.Corrupt("bad byte-order marker % x, want 01020304 in either order", fixed[32:36]))
	}
	h.MandatoryFlags = h.Order.Uint32(fixed[36:])
	h.OptionalFlags = h.Order.Uint32(fixed[40:])
	optLen := h.Order.Uint32(fixed[44:])
	if bad := h.MandatoryFlags &^ flagsKnown; bad != 0 {
		return nil, herr(offset+36, stream.Unsupported("unknown mandatory flags %#x", bad))
	}
	if optLen > MaxOptionalData {
		return nil, herr(offset+44, stream.OverLimit("optional data length %d exceeds the limit of %d", optLen, MaxOptionalData))
	}
	if optLen == 0 {
		h.NoConfigLength = true
		return h, nil
	}
	opt := make([]byte, optLen)
	if _, err := io.ReadFull(r, opt); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, herr(offset+FixedSize, fmt.Errorf("optional data truncated: %w", err))
	}
	if optLen < 4 {
		return nil, herr(offset+FixedSize, stream.Corrupt("optional data of %d octets cannot hold the config length", optLen))
	}
	cl := h.Order.Uint32(opt)
	if uint64(cl) > uint64(optLen-4) {
		return nil, herr(offset+FixedSize, stream.Corrupt("config length %d exceeds the optional data (%d octets)", cl, optLen-4))
	}
	h.Config = opt[4 : 4+cl]
	h.Extra = opt[4+cl:]
	return h, nil
}
