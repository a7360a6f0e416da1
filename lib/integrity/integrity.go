// Package integrity defines xstream's CHECKSUM record, writes it into
// streams and checks it: a fast checksum of the stream's octets every few
// MiB, so that a stream damaged on a disk or a link cannot be restored
// silently.
//
// CHECKSUM is an optional libxc record (bit 31 of its type set), so Xen's
// restorer skips it; Xen's Python verifier rejects it, as it rejects every
// record type it does not know, which is why checksums are opt-in. The
// record body, in the libxc stream's byte order:
//
//	 0     1     2     3     4     5     6     7 octet
//	+-----------------------+-------------------------+
//	| algorithm (1: CRC32C) | flags (bit 0: TAIL)     |
//	+-----------------------+-------------------------+
//	| start: offset of the first octet covered        |
//	+-------------------------------------------------+
//	| length: octets covered                          |
//	+-------------------------------------------------+
//	| value: the checksum, zero-extended              |
//	+-------------------------------------------------+
//
// Offsets count the octets of the outermost stream, the one that starts
// with the xl header (or the libxl header, or the libxc image header for
// the bare formats) and that compression, if any, wraps. A CHECKSUM record
// covers every octet of that stream from the end of the previous CHECKSUM
// record (offset 0 for the first) up to its own first octet: xl and libxl
// framing included. The records themselves are not covered; their fields
// are checked instead. Only the last CHECKSUM record, flagged TAIL, looks
// forward: it covers every octet after itself to the end of the outer
// stream, which is the libxc END record and whatever the outer layers
// write after it (the libxl emulator records and END, or the legacy qemu
// tail), where no libxc record can go.
//
// A writer puts one CHECKSUM record right after the libxc headers, one at
// the first record boundary at least Interval octets after the last, one
// just before the libxc END, and the TAIL record right after that one.
// So every octet of the stream is covered, and a single flipped bit is
// caught wherever it lands: in covered octets by the checksum, in a
// CHECKSUM record by its checked fields or by the next record's start,
// and in a type field that turns a CHECKSUM record into another optional
// record by the gap it leaves (once a stream has one CHECKSUM record it
// must end with a TAIL one).
//
// docs/FORMAT.md §4 specifies the record; this package is the reference.
package integrity

import (
	"fmt"
	"hash/crc32"

	"github.com/xstream/xstream/lib/stream"
)

// RecChecksum is the CHECKSUM record type, in the range xstream reserves
// for its optional records (docs/FORMAT.md §4).
const RecChecksum stream.RecordType = 0xFE580001

func init() { stream.RegisterName(RecChecksum, "CHECKSUM") }

// Wire sizes.
const (
	BodySize = 32
	WireSize = stream.RecordHeaderSize + BodySize // no padding: 32 is a multiple of 8
)

// Algorithms.
const (
	// AlgCRC32C is CRC-32C (Castagnoli), as iSCSI and ext4 use it, with
	// the usual inversions; the value is its 32 bits zero-extended.
	AlgCRC32C uint32 = 1
)

// Flags.
const (
	// FlagTail marks the last CHECKSUM record: it covers the octets after
	// itself to the end of the outer stream.
	FlagTail   uint32 = 1 << 0
	flagsKnown        = FlagTail
)

// DefaultInterval is how many octets a writer lets pass between two
// CHECKSUM records, at least: at the next record boundary after it.
const DefaultInterval = 4 << 20

// MaxTail bounds what follows the libxc END record: a writer holds it in
// memory to checksum it before writing it.
const MaxTail = 256 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is a CHECKSUM record's body.
type Checksum struct {
	Algorithm uint32
	Flags     uint32
	Start     uint64
	Length    uint64
	Value     uint64
}

// Tail reports whether the record is the TAIL one.
func (c Checksum) Tail() bool { return c.Flags&FlagTail != 0 }

// AppendBody appends the body in the given byte order.
func (c Checksum) AppendBody(b []byte, o stream.ByteOrder) []byte {
	b = o.AppendUint32(b, c.Algorithm)
	b = o.AppendUint32(b, c.Flags)
	b = o.AppendUint64(b, c.Start)
	b = o.AppendUint64(b, c.Length)
	return o.AppendUint64(b, c.Value)
}

// AppendRecord appends the whole record, header included.
func (c Checksum) AppendRecord(b []byte, o stream.ByteOrder) []byte {
	b = o.AppendUint32(b, uint32(RecChecksum))
	b = o.AppendUint32(b, BodySize)
	return c.AppendBody(b, o)
}

// Decode reads a CHECKSUM body and checks its fields.
func Decode(body []byte, o stream.ByteOrder) (Checksum, error) {
	var c Checksum
	if len(body) != BodySize {
		return c, stream.Corrupt("CHECKSUM body of %d octets, want %d", len(body), BodySize)
	}
	c = Checksum{Algorithm: o.Uint32(body), Flags: o.Uint32(body[4:]), Start: o.Uint64(body[8:]),
		Length: o.Uint64(body[16:]), Value: o.Uint64(body[24:])}
	if c.Algorithm != AlgCRC32C {
		return c, stream.Corrupt("CHECKSUM algorithm %d unknown (1 is CRC32C)", c.Algorithm)
	}
	if c.Flags&^flagsKnown != 0 {
		return c, stream.Corrupt("CHECKSUM flags %#x has unknown bits", c.Flags)
	}
	if c.Value>>32 != 0 {
		return c, stream.Corrupt("CRC32C value %#x wider than 32 bits", c.Value)
	}
	if c.Start > 1<<62 || c.Length > 1<<62 {
		return c, stream.Corrupt("CHECKSUM range %#x+%#x out of bounds", c.Start, c.Length)
	}
	return c, nil
}

// rangeString names a covered range for errors.
func rangeString(start, length int64) string {
	if length == 0 {
		return fmt.Sprintf("the empty range at offset %#x", start)
	}
	return fmt.Sprintf("octets %#x-%#x", start, start+length-1)
}
