package sniff

import (
	"io"

	"github.com/xstream/xstream/lib/compress"
	"github.com/xstream/xstream/lib/stream"
)

// Input is a stream opened at the edge by Open: decompressed if it came
// compressed, and peeked, so that its format is known.
type Input struct {
	// Source reads the (decompressed) stream from its octet 0; hand it
	// to NewWalker or any stage that reads a stream.
	*stream.Source
	// Info is the format of the stream inside any compression.
	Info Info
	// Compression is how the input came: compress.None, Zstd or LZ4.
	Compression compress.Codec

	dec *compress.Reader
}

// Open looks at the start of r: zstd or lz4 input is decompressed (its
// frames checked as they pass, see lib/compress) and the format of what
// is inside detected. Inner stages read Source and never see compression.
// Corrupt compressed input fails their reads with a *stream.FormatError.
// Close stops the decompressor; it does not close r.
func Open(r io.Reader) (*Input, error) {
	info, src, err := Detect(r)
	if err != nil {
		return nil, err
	}
	in := &Input{Source: src, Info: info}
	switch info.Kind {
	case Zstd:
		in.Compression = compress.Zstd
	case LZ4:
		in.Compression = compress.LZ4
	default:
		return in, nil
	}
	if in.dec, err = compress.NewReader(src, in.Compression, nil); err != nil {
		return nil, err
	}
	if in.Info, in.Source, err = Detect(in.dec); err != nil {
		in.dec.Close()
		return nil, err
	}
	return in, nil
}

// String describes the input: its format, and its compression if any.
func (in *Input) String() string {
	if in.Compression == compress.None {
		return in.Info.String()
	}
	return in.Info.String() + ", " + in.Compression.String() + "-compressed"
}

// Close stops the decompressor, if any.
func (in *Input) Close() error {
	if in.dec != nil {
		return in.dec.Close()
	}
	return nil
}
