package compress

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/xstream/xstream/lib/stream"
)

// Frame magics and limits of the two formats.
const (
	zstdMagic        = 0xFD2FB528
	lz4Magic         = 0x184D2204
	lz4LegacyMagic   = 0x184C2102
	skippableMagic   = 0x184D2A50 // both formats: 0x184D2A50 to 0x184D2A5F
	skippableMask    = 0xFFFFFFF0
	zstdMaxBlockSize = 128 << 10 // RFC 8878 Block_Maximum_Size
)

// The check frame: a skippable frame that precedes each frame a Writer
// writes and carries the CRC32C of that frame's compressed octets, from
// its magic to its last octet. Decoders skip it (both formats define
// skippable frames); the Reader checks it, so that a flipped bit the
// decoders would tolerate (bits a decoder does not interpret, octets
// that decode to the same output) still fails. docs/FORMAT.md specifies
// it.
//
//	+-------------+-------------+-----------+-------------+-------------+
//	| magic       | size 12     | "xsc1"    | CRC32C      | length      |
//	| 58 2A 4D 18 | 0C 00 00 00 |           | (LE)        | (LE, mod 2^32) |
//	+-------------+-------------+-----------+-------------+-------------+
const (
	checkMagic     = 0x184D2A58
	checkSize      = 12
	checkFrameSize = 8 + checkSize
)

var checkSignature = []byte("xsc1")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// putCheck writes into c (checkFrameSize octets) the check frame of the
// frame f.
func putCheck(c, f []byte) {
	binary.LittleEndian.PutUint32(c, checkMagic)
	binary.LittleEndian.PutUint32(c[4:], checkSize)
	copy(c[8:], checkSignature)
	binary.LittleEndian.PutUint32(c[12:], crc32.Checksum(f, castagnoli))
	binary.LittleEndian.PutUint32(c[16:], uint32(len(f)))
}

// Magic values as they appear on the wire, for sniffing.
var (
	ZstdMagic = []byte{0x28, 0xB5, 0x2F, 0xFD}
	LZ4Magic  = []byte{0x04, 0x22, 0x4D, 0x18}
)

// frame is what the scanner knows of one frame.
type frame struct {
	index  int
	off    int64 // compressed offset of its magic
	size   int64 // content size, or -1 when the header does not say
	dstart int64 // decompressed offset of its first octet, or -1 if unknown
}

// recentFrames is how many frames the scanner remembers, to say which one
// a decoding error belongs to: the decoders read only a few blocks ahead.
const recentFrames = 64

// scanner follows the framing of a compressed stream as its octets pass
// on their way to the decoder. It checks what the decoders let through
// and records where each frame starts, for error messages. It reads a
// field at a time: need octets are gathered and handed to field; skip
// octets (block contents) are passed over uncounted.
type scanner struct {
	codec Codec
	off   int64 // compressed octets scanned
	acc   [16]byte
	nacc  int
	need  int
	skip  int64
	field func(b []byte) error
	err   error

	recent  [recentFrames]frame // the last frames begun, by index modulo recentFrames
	cur     frame
	nframe  int
	between bool // waiting for a frame's magic

	// the current frame's flags
	checksum   bool
	blockCheck bool
	blockMax   int64

	// The CRC32C and length of the data frame being scanned, and what
	// the check frame before it says they are.
	inFrame   bool
	crc       uint32
	flen      int64
	pending   bool // a check frame was read; its frame comes next
	wantCRC   uint32
	wantLen   uint32
	checkAt   int64 // compressed offset of that check frame
	at        int64 // compressed offset of the last magic read
	skipStart int64 // compressed offset of the skippable frame being read
	// endAfterSkip ends the frame once the octets to skip are passed:
	// a zstd frame without a checksum ends with its last block.
	endAfterSkip bool
	checked      int // check frames verified
}

func newScanner(c Codec) *scanner {
	s := &scanner{codec: c, between: true}
	s.expectMagic()
	return s
}

func (s *scanner) expectMagic() { s.need, s.field = 4, s.magic }

// scan follows p, the next compressed octets.
func (s *scanner) scan(p []byte) error {
	for len(p) > 0 && s.err == nil {
		if s.skip > 0 {
			k := min(int64(len(p)), s.skip)
			s.hash(p[:k])
			s.skip -= k
			s.off += k
			p = p[k:]
			if s.skip == 0 && s.endAfterSkip {
				s.endFrame()
			}
			continue
		}
		k := copy(s.acc[s.nacc:s.need], p)
		s.hash(p[:k])
		s.nacc += k
		s.off += int64(k)
		p = p[k:]
		if s.nacc == s.need {
			s.nacc = 0
			if err := s.field(s.acc[:s.need]); err != nil {
				s.err = s.errorf(err)
			} else if s.skip == 0 && s.endAfterSkip {
				s.endFrame()
			}
		}
	}
	return s.err
}

func (s *scanner) hash(p []byte) {
	if s.inFrame {
		s.crc = crc32.Update(s.crc, castagnoli, p)
		s.flen += int64(len(p))
	}
}

// end checks that the input stopped between two frames.
func (s *scanner) end() error {
	if s.err != nil {
		return s.err
	}
	switch {
	case s.between && s.nacc != 0 && s.skip == 0 && !s.pending:
		s.at = s.off - int64(s.nacc)
		s.err = s.errorf(stream.Corrupt("%d octets after the last frame, too few to be a frame", s.nacc))
	case s.nacc != 0 || s.skip != 0 || !s.between:
		s.err = s.errorf(fmt.Errorf("compressed input truncated inside a frame: %w", io.ErrUnexpectedEOF))
	case s.pending:
		s.err = s.errorf(fmt.Errorf("compressed input ends after the check frame at offset %#x, before its frame: %w", s.checkAt, io.ErrUnexpectedEOF))
	}
	return s.err
}

// errorf places err: in the data frame being read, or, between data
// frames (in a check or skippable frame, at a magic), at what comes
// before the next frame, whose error it is.
func (s *scanner) errorf(err error) error {
	index, off := s.cur.index, s.cur.off
	if !s.inFrame && s.nframe > 0 {
		index, off = s.nframe, s.at
	}
	return s.frameError(index, off, err)
}

func (s *scanner) frameError(index int, off int64, err error) error {
	fe := &stream.FormatError{Layer: s.codec.String(), Offset: off, Index: -1, Type: fmt.Sprintf("frame %d", index), Err: err}
	if s.nframe == 0 {
		fe.Type = "input"
	}
	return fe
}

func (s *scanner) magic(b []byte) error {
	m := binary.LittleEndian.Uint32(b)
	start := s.off - 4
	s.at = start
	if s.pending && m&skippableMask == skippableMagic {
		return stream.Corrupt("the check frame at compressed offset %#x is followed by a skippable frame, not by its frame", s.checkAt)
	}
	switch {
	case m&skippableMask == skippableMagic:
		s.between = false
		s.skipStart = start
		s.need, s.field = 4, func(b []byte) error {
			size := binary.LittleEndian.Uint32(b)
			if m == checkMagic || size == checkSize {
				if m == checkMagic && size != checkSize {
					return stream.Corrupt("check frame at compressed offset %#x has size %d, want %d", start, size, checkSize)
				}
				s.need, s.field = checkSize, func(b []byte) error { return s.checkFrame(m, b) }
				return nil
			}
			s.skip = int64(size)
			s.expectMagic()
			s.between = true
			return nil
		}
		return nil
	case s.codec == Zstd && m == zstdMagic:
		s.begin(start, b)
		s.need, s.field = 1, s.zstdHeader
		return nil
	case s.codec == LZ4 && m == lz4Magic:
		s.begin(start, b)
		s.need, s.field = 2, s.lz4Descriptor
		return nil
	case s.codec == LZ4 && m == lz4LegacyMagic:
		s.cur.off = start
		return stream.Corrupt("a legacy lz4 frame at compressed offset %#x (only LZ4 frames are read)", start)
	}
	s.cur.off = start
	return stream.Corrupt("not a %v frame: magic %08x at compressed offset %#x", s.codec, m, start)
}

// checkFrame checks a check frame (or a skippable frame of its size that
// may be one with a flipped magic).
func (s *scanner) checkFrame(m uint32, b []byte) error {
	ours := bytes.Equal(b[:4], checkSignature)
	if !ours && m != checkMagic {
		// Someone else's skippable frame of the same size.
		s.expectMagic()
		s.between = true
		return nil
	}
	if !ours || m != checkMagic {
		return stream.Corrupt("damaged check frame at compressed offset %#x (magic %08x, signature %q)", s.skipStart, m, b[:4])
	}
	s.pending, s.checkAt = true, s.skipStart
	s.wantCRC, s.wantLen = binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])
	s.expectMagic()
	s.between = true
	return nil
}

func (s *scanner) begin(off int64, magic []byte) {
	s.inFrame = true
	s.crc = crc32.Update(0, castagnoli, magic)
	s.flen = int64(len(magic))
	s.between = false
	dstart := int64(0)
	if s.nframe > 0 {
		if p := s.cur; p.dstart >= 0 && p.size >= 0 {
			dstart = p.dstart + p.size
		} else {
			dstart = -1
		}
	}
	s.cur = frame{index: s.nframe, off: off, size: -1, dstart: dstart}
	s.recent[s.nframe%recentFrames] = s.cur
	s.nframe++
}

// setSize records the current frame's content size from its header.
func (s *scanner) setSize(n uint64) {
	s.cur.size = int64(min(n, 1<<62))
	s.recent[s.cur.index%recentFrames] = s.cur
}

// frameAt returns the frame holding decompressed offset d, if the
// scanner still knows it.
func (s *scanner) frameAt(d int64) (frame, bool) {
	for i := max(0, s.nframe-recentFrames); i < s.nframe; i++ {
		f := s.recent[i%recentFrames]
		if f.dstart >= 0 && f.size >= 0 && f.dstart <= d && d < f.dstart+f.size {
			return f, true
		}
	}
	return s.cur, false
}

// endFrame is called after a frame's last octet.
func (s *scanner) endFrame() {
	s.endAfterSkip = false
	s.inFrame = false
	s.expectMagic()
	s.between = true
	if s.pending {
		s.pending = false
		if s.crc != s.wantCRC || uint32(s.flen) != s.wantLen {
			s.err = s.frameError(s.cur.index, s.cur.off, stream.Corrupt("the frame's %d compressed octets have CRC32C %08x; its check frame says %08x over %d octets",
				s.flen, s.crc, s.wantCRC, s.wantLen))
			return
		}
		s.checked++
	}
}

// zstd: Frame_Header_Descriptor, then the rest of the header.
func (s *scanner) zstdHeader(b []byte) error {
	fhd := b[0]
	fcsFlag, single := fhd>>6, fhd&(1<<5) != 0
	if fhd&(1<<3) != 0 {
		return stream.Corrupt("zstd frame header: reserved bit set")
	}
	s.checksum = fhd&(1<<2) != 0
	didSize := [4]int{0, 1, 2, 4}[fhd&3]
	fcsSize := [4]int{0, 2, 4, 8}[fcsFlag]
	if fcsFlag == 0 && single {
		fcsSize = 1
	}
	wdSize := 1
	if single {
		wdSize = 0
	}
	rest := wdSize + didSize + fcsSize
	parse := func(b []byte) error {
		var window uint64
		if !single {
			wd := b[0]
			log := 10 + uint(wd>>3)
			window = 1 << log
			window += (window / 8) * uint64(wd&7)
		}
		f := b[wdSize+didSize:]
		var fcs uint64
		switch fcsSize {
		case 1:
			fcs = uint64(f[0])
		case 2:
			fcs = uint64(binary.LittleEndian.Uint16(f)) + 256
		case 4:
			fcs = uint64(binary.LittleEndian.Uint32(f))
		case 8:
			fcs = binary.LittleEndian.Uint64(f)
		}
		if fcsSize > 0 {
			s.setSize(fcs)
		}
		if single {
			window = fcs
		}
		if window > MaxWindow {
			return stream.OverLimit("zstd frame needs a window of %d octets, over the limit of %d", window, MaxWindow)
		}
		s.need, s.field = 3, s.zstdBlock
		return nil
	}
	if rest == 0 {
		return parse(nil)
	}
	s.need, s.field = rest, parse
	return nil
}

func (s *scanner) zstdBlock(b []byte) error {
	h := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
	last, typ, size := h&1 != 0, h>>1&3, int64(h>>3)
	switch typ {
	case 0: // raw
		s.skip = size
	case 1: // RLE: one octet repeated size times
		s.skip = 1
	case 2: // compressed
		s.skip = size
	default:
		return stream.Corrupt("zstd block of the reserved type 3")
	}
	if size > zstdMaxBlockSize {
		return stream.Corrupt("zstd block of %d octets, over the format's %d", size, zstdMaxBlockSize)
	}
	switch {
	case !last:
		s.need, s.field = 3, s.zstdBlock
	case s.checksum:
		s.need, s.field = 4, func([]byte) error { s.endFrame(); return nil }
	default:
		s.endAfterSkip = true
	}
	return nil
}

// lz4: FLG and BD, then content size, dictionary id and header checksum.
func (s *scanner) lz4Descriptor(b []byte) error {
	flg, bd := b[0], b[1]
	if flg>>6 != 1 {
		return stream.Corrupt("lz4 frame version %d, want 1", flg>>6)
	}
	if flg&(1<<1) != 0 || bd&0x8F != 0 {
		return stream.Corrupt("lz4 frame descriptor: reserved bits set (FLG %#02x BD %#02x)", flg, bd)
	}
	idx := bd >> 4 & 7
	if idx < 4 {
		return stream.Corrupt("lz4 frame descriptor: block size index %d", idx)
	}
	s.blockMax = 1 << (8 + 2*int64(idx))
	s.blockCheck = flg&(1<<4) != 0
	s.checksum = flg&(1<<2) != 0
	hasSize, hasDict := flg&(1<<3) != 0, flg&1 != 0
	rest := 1
	if hasSize {
		rest += 8
	}
	if hasDict {
		rest += 4
	}
	s.need, s.field = rest, func(b []byte) error {
		if hasSize {
			s.setSize(binary.LittleEndian.Uint64(b))
		}
		s.need, s.field = 4, s.lz4Block
		return nil
	}
	return nil
}

func (s *scanner) lz4Block(b []byte) error {
	v := binary.LittleEndian.Uint32(b)
	if v == 0 { // EndMark
		if s.checksum {
			s.need, s.field = 4, func([]byte) error { s.endFrame(); return nil }
		} else {
			s.endFrame()
		}
		return nil
	}
	size := int64(v &^ (1 << 31))
	if size > s.blockMax {
		return stream.Corrupt("lz4 block of %d octets, over the frame's maximum of %d", size, s.blockMax)
	}
	s.skip = size
	if s.blockCheck {
		s.need, s.field = 4, func([]byte) error { s.need, s.field = 4, s.lz4Block; return nil }
	} else {
		s.need, s.field = 4, s.lz4Block
	}
	return nil
}
