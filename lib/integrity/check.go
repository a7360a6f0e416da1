package integrity

import (
	"fmt"
	"hash/crc32"

	"github.com/xstream/xstream/lib/stream"
)

// Checker verifies the CHECKSUM records of a stream as it is read. Tap
// must see every octet the stream's readers consume, in order (a
// stream.Source calls it); Record is called at each CHECKSUM record, as
// soon as the record has been consumed; End at the end of the outer
// stream. A stream without CHECKSUM records passes.
type Checker struct {
	off  int64 // octets hashed; the lag follows them
	lag  [WireSize]byte
	nlag int
	crc  uint32

	start     int64 // first octet of the range the next record covers
	seen      bool
	tail      *Checksum
	tailAt    int64
	tailIndex int

	records int   // CHECKSUM records verified
	octets  int64 // octets they cover
	absent  bool  // the stream has none: see Absent
}

// Absent says that the stream's first libxc record is not a CHECKSUM
// record, so that the stream has none: Tap need no longer be called, and
// a CHECKSUM record that comes later is an error.
func (k *Checker) Absent() { k.absent = true }

// NewChecker returns a Checker of a stream whose first octet is at base.
func NewChecker(base int64) *Checker { return &Checker{off: base, start: base} }

// Tap hashes octets consumed from the stream. The last WireSize octets are
// held back: they may turn out to be a CHECKSUM record, which is not
// covered.
func (k *Checker) Tap(p []byte) {
	total := k.nlag + len(p)
	if total <= WireSize {
		copy(k.lag[k.nlag:], p)
		k.nlag = total
		return
	}
	flush := total - WireSize
	fromLag := min(flush, k.nlag)
	k.update(k.lag[:fromLag])
	k.update(p[:flush-fromLag])
	n := copy(k.lag[:], k.lag[fromLag:k.nlag])
	copy(k.lag[n:], p[flush-fromLag:])
	k.nlag = WireSize
}

func (k *Checker) update(p []byte) {
	k.crc = crc32.Update(k.crc, castagnoli, p)
	k.off += int64(len(p))
}

// Record checks the CHECKSUM record rec, just consumed, of a libxc stream
// in byte order o. Errors are to be wrapped with the record's position.
func (k *Checker) Record(rec *stream.Record, o stream.ByteOrder) error {
	if k.absent {
		return stream.Corrupt("a CHECKSUM record in a stream that does not begin with one (a checksummed stream's first libxc record is a CHECKSUM record)")
	}
	c, err := Decode(rec.Body, o)
	if err != nil {
		return err
	}
	if k.nlag != WireSize || k.off != rec.Offset {
		return fmt.Errorf("integrity: checker out of step: %d octets hashed to %#x at a record at %#x", k.nlag, k.off, rec.Offset)
	}
	k.nlag = 0 // the record's own octets are not covered
	next := rec.Offset + WireSize
	if k.tail != nil {
		return stream.Corrupt("a CHECKSUM record after the TAIL one at offset %#x", k.tailAt)
	}
	k.seen = true
	if c.Tail() {
		if k.start != rec.Offset {
			return stream.Corrupt("the TAIL CHECKSUM does not follow a CHECKSUM record: %s are not covered", rangeString(k.start, rec.Offset-k.start))
		}
		if c.Start != uint64(next) {
			return stream.Corrupt("the TAIL CHECKSUM covers from %#x, not from its own end at %#x", c.Start, next)
		}
		k.tail, k.tailAt, k.tailIndex = &c, rec.Offset, rec.Index
	} else {
		if c.Start != uint64(k.start) {
			return stream.Corrupt("CHECKSUM covers from offset %#x, but the previous one ended at %#x", c.Start, k.start)
		}
		if n := rec.Offset - k.start; c.Length != uint64(n) {
			return stream.Corrupt("CHECKSUM covers %d octets, but %d lie between the previous one and it", c.Length, n)
		}
		if c.Value != uint64(k.crc) {
			return stream.Corrupt("checksum mismatch over %s: their CRC32C is %08x, the record says %08x",
				rangeString(k.start, rec.Offset-k.start), k.crc, c.Value)
		}
		k.records++
		k.octets += rec.Offset - k.start
	}
	k.crc, k.off, k.start = 0, next, next
	return nil
}

// End checks the TAIL record, if the stream has checksums, against the
// octets that followed it; total is the outer stream's length.
func (k *Checker) End(total int64) error {
	if k.absent {
		return nil
	}
	k.update(k.lag[:k.nlag])
	k.nlag = 0
	if !k.seen {
		return nil
	}
	if k.tail == nil {
		return &stream.FormatError{Layer: "libxc", Offset: total, Index: -1, Type: "end of stream",
			Err: stream.Corrupt("the stream has CHECKSUM records but no TAIL one: %s are not covered", rangeString(k.start, total-k.start))}
	}
	terr := func(err error) error {
		return &stream.FormatError{Layer: "libxc", Offset: k.tailAt, Index: k.tailIndex, Type: RecChecksum.String(), Err: err}
	}
	if n := total - k.start; k.tail.Length != uint64(n) {
		return terr(stream.Corrupt("the TAIL CHECKSUM covers %d octets, but %d follow it", k.tail.Length, n))
	}
	if k.tail.Value != uint64(k.crc) {
		return terr(stream.Corrupt("checksum mismatch over %s: their CRC32C is %08x, the record says %08x",
			rangeString(k.start, total-k.start), k.crc, k.tail.Value))
	}
	k.records++
	k.octets += total - k.start
	k.tail = nil
	return nil
}

// Verified returns the CHECKSUM records verified so far and the octets
// they cover.
func (k *Checker) Verified() (records int, octets int64) { return k.records, k.octets }
