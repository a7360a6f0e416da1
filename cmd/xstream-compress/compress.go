package main

import (
	"bufio"
	"io"

	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/lib/compress"
	"github.com/xstream/xstream/lib/rewrite"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

type options struct {
	codec      compress.Codec
	level      int
	decompress bool
	checksum   bool
	noCheck    bool
	threads    int
	input      string
	output     string
}

func run(opts options) error {
	// Options are checked before anything is opened.
	if !opts.decompress && opts.codec != compress.None {
		if _, err := compress.NewWriter(io.Discard, opts.codec, &compress.WriterOptions{Level: opts.level, Concurrency: 1}); err != nil {
			return cmdutil.Usagef("%v", err)
		}
	}
	in, err := cmdutil.OpenInput(opts.input)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := cmdutil.CreateOutput(opts.output)
	if err != nil {
		return err
	}
	defer out.Abort()
	if err := filter(opts, in, out); err != nil {
		return err
	}
	return out.Commit()
}

// filter copies r to w: decompressed (-d), with new CHECKSUM records
// (--checksum), compressed (unless -d or --none).
func filter(opts options, r io.Reader, w io.Writer) (err error) {
	src := r
	if opts.decompress {
		info, s, err := sniff.Detect(r)
		if err != nil {
			return err
		}
		var codec compress.Codec
		switch info.Kind {
		case sniff.Zstd:
			codec = compress.Zstd
		case sniff.LZ4:
			codec = compress.LZ4
		default:
			return &stream.FormatError{Index: -1, Type: "input", Err: stream.Corrupt("not zstd or lz4 input (it looks like %v input)", info.Kind)}
		}
		dec, err := compress.NewReader(s, codec, &compress.ReaderOptions{Concurrency: opts.threads})
		if err != nil {
			return err
		}
		defer dec.Close()
		src = dec
	}
	if !opts.checksum && !opts.decompress {
		// Compressed input is decompressed first (zstd to lz4, say):
		// compressed twice, no reader would take it.
		in := stream.NewSource(src, 0)
		if _, err := in.Peek(sniff.PeekSize); err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return err
		}
		src = in
		switch k := sniff.IdentifyNext(in).Kind; k {
		case sniff.Zstd, sniff.LZ4:
			zin, err := sniff.Open(src)
			if err != nil {
				return err
			}
			defer zin.Close()
			src = zin.Source
		case sniff.Gzip, sniff.Xz, sniff.Bzip2, sniff.LZ4Legacy:
			return &stream.FormatError{Index: -1, Type: "input", Err: stream.Unsupported("%v-compressed input, which no reader here takes; decompress it first", k)}
		}
	}
	dst := w
	if !opts.decompress && opts.codec != compress.None {
		zw, zerr := compress.NewWriter(w, opts.codec, &compress.WriterOptions{Level: opts.level,
			Concurrency: opts.threads, NoChecksum: opts.noCheck})
		if zerr != nil {
			return zerr
		}
		// Close always: it stops the workers, also after an error; its
		// error (the last frames' write) is the result's.
		defer func() {
			if cerr := zw.Close(); err == nil {
				err = cerr
			}
		}()
		dst = zw
	}
	if !opts.checksum {
		_, err = io.Copy(dst, src)
		return err
	}
	if !opts.decompress {
		// A compressed stream gets its checksums too: decompressed
		// here, rewritten, compressed again (or not, with --none).
		zin, err := sniff.Open(src)
		if err != nil {
			return err
		}
		defer zin.Close()
		src = zin.Source
	}
	bw := bufio.NewWriterSize(dst, 1<<20)
	if _, err := rewrite.Copy(bw, src, &sniff.Options{Verify: true}, &rewrite.Options{Checksum: true}); err != nil {
		return err
	}
	return bw.Flush()
}
