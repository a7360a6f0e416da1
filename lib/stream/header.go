package stream

import (
	"encoding/binary"
	"fmt"
)

// ImageHeader is the first 24 octets of a libxc image. It is always
// big-endian on the wire.
type ImageHeader struct {
	Version  uint32 // 2 or 3
	Options  uint16 // bit 0: big-endian records; the rest reserved
	Reserved [6]byte
}

// ByteOrder returns the byte order the header declares for the domain
// header and the records.
func (h ImageHeader) ByteOrder() ByteOrder {
	if h.Options&OptionBigEndian != 0 {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// BigEndian reports whether the records are big-endian.
func (h ImageHeader) BigEndian() bool { return h.Options&OptionBigEndian != 0 }

// NewImageHeader returns a version 3 header for the given byte order.
func NewImageHeader(order ByteOrder) ImageHeader {
	h := ImageHeader{Version: Version3}
	if order == binary.BigEndian {
		h.Options |= OptionBigEndian
	}
	return h
}

// AppendBinary appends the 24-octet wire form of h.
func (h ImageHeader) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint64(b, ImageMarker)
	b = binary.BigEndian.AppendUint32(b, ImageID)
	b = binary.BigEndian.AppendUint32(b, h.Version)
	b = binary.BigEndian.AppendUint16(b, h.Options)
	return append(b, h.Reserved[:]...), nil
}

// parseImageHeader decodes the 24 octets in b. It checks what a reader
// needs to go on (marker, id, version); reserved fields are kept for the
// verifier and for a byte-exact copy.
func parseImageHeader(b []byte) (ImageHeader, error) {
	var h ImageHeader
	if m := binary.BigEndian.Uint64(b[0:]); m != ImageMarker {
		return h, corrupt("bad image marker %#016x, want %#016x (not a libxc v2/v3 stream; a legacy stream has zero bits here)", m, ImageMarker)
	}
	if id := binary.BigEndian.Uint32(b[8:]); id != ImageID {
		return h, corrupt("bad image id %#08x, want %#08x (\"XENF\")", id, ImageID)
	}
	h.Version = binary.BigEndian.Uint32(b[12:])
	h.Options = binary.BigEndian.Uint16(b[16:])
	copy(h.Reserved[:], b[18:24])
	if h.Version != Version2 && h.Version != Version3 {
		return h, unsupported("image version %d, this reader knows 2 and 3", h.Version)
	}
	return h, nil
}

// DomainHeader is the 16 octets after the image header.
type DomainHeader struct {
	Type      DomainType
	PageShift uint16
	Reserved  uint16
	XenMajor  uint32 // 0 in streams written by the legacy converter
	XenMinor  uint32
}

// AppendBinary appends the 16-octet wire form of h in the given order.
func (h DomainHeader) appendBinary(b []byte, order ByteOrder) []byte {
	b = order.AppendUint32(b, uint32(h.Type))
	b = order.AppendUint16(b, h.PageShift)
	b = order.AppendUint16(b, h.Reserved)
	b = order.AppendUint32(b, h.XenMajor)
	return order.AppendUint32(b, h.XenMinor)
}

func parseDomainHeader(b []byte, order ByteOrder) (DomainHeader, error) {
	h := DomainHeader{
		Type:      DomainType(order.Uint32(b[0:])),
		PageShift: order.Uint16(b[4:]),
		Reserved:  order.Uint16(b[6:]),
		XenMajor:  order.Uint32(b[8:]),
		XenMinor:  order.Uint32(b[12:]),
	}
	if h.Type != DomainX86PV && h.Type != DomainX86HVM {
		var other ByteOrder = binary.BigEndian
		if order == binary.BigEndian {
			other = binary.LittleEndian
		}
		if t := DomainType(other.Uint32(b)); t == DomainX86PV || t == DomainX86HVM {
			return h, corrupt("domain type %#x, which is %v read in the other byte order: the image header's byte-order bit disagrees with the data", uint32(h.Type), t)
		}
		return h, unsupported("unknown domain type %#x", uint32(h.Type))
	}
	if h.PageShift != PageShift {
		return h, unsupported("page shift %d, x86 streams use %d", h.PageShift, PageShift)
	}
	return h, nil
}

func (h DomainHeader) String() string {
	if h.XenMajor == 0 {
		return fmt.Sprintf("%v, legacy converted (converter version %d)", h.Type, h.XenMinor)
	}
	return fmt.Sprintf("%v from Xen %d.%d", h.Type, h.XenMajor, h.XenMinor)
}
