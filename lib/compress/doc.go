// Package compress writes and reads the two compressed framings xstream
// speaks, zstd (RFC 8878) and lz4 (the LZ4 frame format), through
// github.com/klauspost/compress/zstd and github.com/pierrec/lz4/v4.
//
// The output is standard: `zstd -d` and `lz4 -d` decompress it, and the
// Reader reads what the command-line tools write. A Writer cuts its input
// into chunks (4 MiB by default) and compresses each into one complete,
// independent frame, several chunks at a time on a bounded set of
// goroutines, and writes the frames in input order:
//
//	zstd frame (one per chunk)
//	+-------------+------------------------+--------------------+-----------+
//	| magic       | frame header:          | blocks, each at    | content   |
//	| 28 B5 2F FD | single segment, the    | most 128 KiB of    | checksum  |
//	|             | chunk's size (FCS)     | output             | (4 octets)|
//	+-------------+------------------------+--------------------+-----------+
//
//	lz4 frame (one per chunk)
//	+-------------+---------------------------+---------------+-----+-------+
//	| magic       | FLG BD content size (8)   | one block     | end | xxh32 |
//	| 04 22 4D 18 | header checksum           | (size, data)  | mark| of    |
//	|             |                           |               | 0000| data  |
//	+-------------+---------------------------+---------------+-----+-------+
//
// A stream of concatenated frames is what both formats define as a valid
// compressed file. Every frame carries its content size and a content
// checksum, so a decoder that holds to the format notices any change to
// the data; and before every frame the Writer puts a check frame, a
// skippable frame (which decoders pass over) with the CRC32C of the
// frame's compressed octets, so that the Reader also notices a change no
// decoder would (see putCheck, and docs/FORMAT.md §5). Both are on unless
// WriterOptions.NoChecksum.
//
// The Reader is stricter than the libraries it wraps: a frame scanner runs
// over the compressed octets as they pass and refuses what the decoders
// would let through, such as a damaged check frame, a legacy lz4 frame in
// the middle of a stream, or a stream that stops between a frame's last
// block and its checksum. Decoding errors come back as a
// *stream.FormatError naming the codec, the frame and its compressed
// offset, so the commands map them to exit status 3 like any other
// corrupt stream; I/O errors of the underlying reader pass through as
// they are.
//
// Compressed input arrives from the network as readily as any stream, so
// the Reader keeps the memory it commits bounded: zstd windows are capped
// at MaxWindow, lz4 blocks at 4 MiB by the format.
//
// Concurrency lives here and nowhere in the format packages. A Writer or
// Reader with Concurrency 1 starts no goroutine; otherwise the work is
// bounded (at most twice as many chunks in flight as workers), results
// come out in order, and Close stops every goroutine, also after an error.
package compress
