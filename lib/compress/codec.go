package compress

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is a compressed framing.
type Codec int

// Codecs.
const (
	None Codec = iota // no compression: the stream as it is
	Zstd              // zstd frames (RFC 8878)
	LZ4               // LZ4 frames
)

func (c Codec) String() string {
	switch c {
	case None:
		return "none"
	case Zstd:
		return "zstd"
	case LZ4:
		return "lz4"
	}
	return fmt.Sprintf("codec %d", int(c))
}

// ParseCodec reads a codec name: zstd, lz4 or none.
func ParseCodec(s string) (Codec, error) {
	switch strings.ToLower(s) {
	case "zstd", "zst":
		return Zstd, nil
	case "lz4":
		return LZ4, nil
	case "none", "":
		return None, nil
	}
	return None, fmt.Errorf("unknown compression %q: want zstd, lz4 or none", s)
}

// Extension returns the usual file name suffix of the codec's files.
func (c Codec) Extension() string {
	switch c {
	case Zstd:
		return ".zst"
	case LZ4:
		return ".lz4"
	}
	return ""
}

// Levels, as the codecs' command-line tools number them.
const (
	DefaultLevel = 1 // the fastest: a migration is usually bound by time
	MaxZstdLevel = 22
	MaxLZ4Level  = 12
)

// DefaultChunkSize is the input one frame holds.
const DefaultChunkSize = 4 << 20

// MaxChunkSize bounds WriterOptions.ChunkSize: one chunk's input and
// output are held in memory per chunk in flight.
const MaxChunkSize = 64 << 20

// MaxWindow is the largest zstd window the Reader accepts (zstd's own
// command-line tool accepts 128 MiB without --long); lz4 blocks are at
// most 4 MiB by the format.
const MaxWindow = 128 << 20

// WriterOptions tune a Writer. The zero value is the default.
type WriterOptions struct {
	// Level is the compression level as the command-line tools number
	// them: zstd 1 to 22, lz4 1 to 12; 0 means DefaultLevel.
	Level int
	// Concurrency is the number of chunks compressed at once: 0 means
	// GOMAXPROCS, 1 means no goroutines at all.
	Concurrency int
	// ChunkSize is the input octets of one frame: 0 means
	// DefaultChunkSize.
	ChunkSize int
	// NoChecksum leaves out the frames' content checksums.
	NoChecksum bool
}

// validate checks the options and fills in defaults: the one place
// defaults live.
func (o WriterOptions) validate(c Codec) (WriterOptions, error) {
	if o.Level == 0 {
		o.Level = DefaultLevel
	}
	max := 0
	switch c {
	case Zstd:
		max = MaxZstdLevel
	case LZ4:
		max = MaxLZ4Level
	default:
		return o, fmt.Errorf("compress: cannot write %v", c)
	}
	if o.Level < 1 || o.Level > max {
		return o, fmt.Errorf("compress: %v level %d out of range 1 to %d", c, o.Level, max)
	}
	if o.Concurrency < 0 {
		return o, fmt.Errorf("compress: concurrency %d is negative", o.Concurrency)
	}
	if o.Concurrency == 0 {
		o.Concurrency = runtime.GOMAXPROCS(0)
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ChunkSize < 1 || o.ChunkSize > MaxChunkSize {
		return o, fmt.Errorf("compress: chunk size %d out of range 1 to %d", o.ChunkSize, MaxChunkSize)
	}
	return o, nil
}

// zstdOptions maps a command-line level to the library's four speeds, as
// the library's own EncoderLevelFromZstd does; level 1 also leaves
// literals without entropy coding, which on guest memory is a fifth
// faster for a percent more output (level 2 keeps it).
func zstdOptions(level int) []zstd.EOption {
	o := []zstd.EOption{zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level))}
	if level == 1 {
		o = append(o, zstd.WithNoEntropyCompression(true))
	}
	return o
}

// lz4Level maps a command-line level: 1 and 2 are lz4's fast mode (as
// `lz4 -1` and `-2`), 3 to 9 the library's levels of the same number,
// and 10 to 12 its highest.
func lz4Level(level int) lz4.CompressionLevel {
	switch {
	case level <= 2:
		return lz4.Fast
	case level >= 9:
		return lz4.Level9
	}
	return lz4.Level1 << (level - 1)
}

// ReaderOptions tune a Reader. The zero value is the default.
type ReaderOptions struct {
	// Concurrency is the number of zstd blocks decoded at once: 0 and 1
	// mean one, on the calling goroutine, with no goroutines at all;
	// more pipelines the decoding on that many goroutines. One is the
	// default because it is the fastest: decoding runs at over 1.5 GiB/s
	// of output on one core, faster than any consumer, and the
	// pipelined decoder spends more CPU for the same octets. lz4
	// decoding is always done on the calling goroutine.
	Concurrency int
}

func (o ReaderOptions) validate() (ReaderOptions, error) {
	if o.Concurrency < 0 {
		return o, fmt.Errorf("compress: concurrency %d is negative", o.Concurrency)
	}
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	return o, nil
}
