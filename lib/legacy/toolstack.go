package legacy

import (
	"bytes"
	"fmt"

	"github.com/xstream/xstream/lib/stream"
)

// physmapXenstore decodes libxl's legacy toolstack data and appends it to
// kv as EMULATOR_XENSTORE_DATA content, the way Xen's converter does.
//
//	uint32 version (1)
//	uint32 count
//	count × libxl__physmap_info:
//	  uint64 phys_offset, start_addr, size
//	  uint32 namelen
//	  char   name[namelen]     NUL-terminated
//
// libxl built the entries with a pointer to the struct's name member, so a
// 64-bit toolstack, whose struct has 4 octets of tail padding, wrote the
// name 4 octets later than namelen says and 4 octets of padding after it.
// Each entry becomes three keys under physmap/<phys_offset in hex>:
// start_addr and size (in hex) and name.
func physmapXenstore(kv, data []byte, width int) ([]byte, error) {
	if len(data) < 8 {
		return nil, stream.Corrupt("toolstack data of %d octets, too short for its version and count", len(data))
	}
	if v := le.Uint32(data); v != 1 {
		return nil, stream.Unsupported("libxl toolstack data version %d, only version 1 is known", v)
	}
	count := le.Uint32(data[4:])
	data = data[8:]
	for i := uint32(0); i < count; i++ {
		if len(data) < 28 {
			return nil, stream.Corrupt("toolstack physmap entry %d: %d octets left, too few for its header", i, len(data))
		}
		phys, start, size := le.Uint64(data), le.Uint64(data[8:]), le.Uint64(data[16:])
		namelen := uint64(le.Uint32(data[24:]))
		data = data[28:]
		if namelen == 0 {
			return nil, stream.Corrupt("toolstack physmap entry %d has no name", i)
		}
		pad := uint64(0)
		if width == 64 {
			pad = 4
		}
		if uint64(len(data)) < namelen+pad {
			return nil, stream.Corrupt("toolstack physmap entry %d: name of %d octets overruns the data", i, namelen)
		}
		name := data[:namelen]
		data = data[namelen+pad:]
		if name[len(name)-1] != 0 {
			return nil, stream.Corrupt("toolstack physmap entry %d: name is not NUL terminated", i)
		}
		name = name[:len(name)-1]
		if bytes.IndexByte(name, 0) >= 0 {
			return nil, stream.Corrupt("toolstack physmap entry %d: name has a NUL inside", i)
		}
		if len(kv)+len(name)+200 > MaxToolstack {
			return nil, stream.OverLimit("emulator xenstore data exceeds the limit of %d octets", MaxToolstack)
		}
		root := fmt.Sprintf("physmap/%x", phys)
		kv = fmt.Appendf(kv, "%s/start_addr\x00%x\x00%s/size\x00%x\x00%s/name\x00", root, start, root, size, root)
		kv = append(kv, name...)
		kv = append(kv, 0)
	}
	return kv, nil
}
