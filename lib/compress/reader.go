package compress

import (
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/xstream/xstream/lib/stream"
)

// Reader decompresses a stream of zstd or lz4 frames. Close must be
// called: it stops the decoder's goroutines.
type Reader struct {
	codec Codec
	src   *scanningReader
	dec   io.Reader
	zdec  *zstd.Decoder
	out   int64 // decompressed octets returned
	err   error // sticky
}

// NewReader returns a Reader of the codec c (Zstd or LZ4) frames in r.
// Nothing is read before the first call to Read.
func NewReader(r io.Reader, c Codec, opts *ReaderOptions) (*Reader, error) {
	var o ReaderOptions
	if opts != nil {
		o = *opts
	}
	o, err := o.validate()
	if err != nil {
		return nil, err
	}
	zr := &Reader{codec: c, src: &scanningReader{r: r, scan: newScanner(c)}}
	switch c {
	case Zstd:
		zr.zdec, err = zstd.NewReader(zr.src, zstd.WithDecoderConcurrency(o.Concurrency),
			zstd.WithDecoderMaxWindow(MaxWindow), zstd.WithDecoderMaxMemory(MaxWindow))
		if err != nil {
			return nil, err
		}
		zr.dec = zr.zdec
	case LZ4:
		lr := lz4.NewReader(zr.src)
		if err := lr.Apply(lz4.ConcurrencyOption(1)); err != nil {
			return nil, err
		}
		zr.dec = lr
	default:
		return nil, fmt.Errorf("compress: cannot read %v", c)
	}
	return zr, nil
}

// Codec returns the codec the Reader decodes.
func (r *Reader) Codec() Codec { return r.codec }

// Read reads decompressed octets. A corrupt or truncated input gives a
// *stream.FormatError; an error of the underlying reader is returned as
// it is, wrapped.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.dec.Read(p)
	r.out += int64(n)
	if err != nil {
		if err == io.EOF {
			// The decoders stop at the end of the input; the scanner saw
			// it too and would have failed a frame cut short.
			if serr := r.src.scan.end(); serr != nil {
				err = serr
			}
		} else {
			err = r.wrap(err)
		}
		r.err = err
	}
	return n, err
}

// WriteTo writes the decompressed octets to w until the end of the input
// or an error, without the copy a Read makes.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	if r.err != nil {
		if r.err == io.EOF {
			return 0, nil
		}
		return 0, r.err
	}
	wt, ok := r.dec.(io.WriterTo)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{r})
	}
	cw := &countingWriter{w: w, out: &r.out}
	n, err := wt.WriteTo(cw)
	switch {
	case err == nil:
		// The decoders' WriteTo returns nil at the end of the input.
		if serr := r.src.scan.end(); serr != nil {
			err = serr
		}
	case cw.err != nil && errors.Is(err, cw.err):
		// The destination failed: its error, as it is.
	default:
		err = r.wrap(err)
	}
	if err != nil {
		r.err = err
	} else {
		r.err = io.EOF
	}
	return n, err
}

// countingWriter counts the decompressed octets written, for errors, and
// keeps the destination's error apart from the decoder's.
type countingWriter struct {
	w   io.Writer
	out *int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.out += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// Close stops the decoder's goroutines. It does not close the underlying
// reader.
func (r *Reader) Close() error {
	if r.zdec != nil {
		r.zdec.Close()
		r.zdec = nil
	}
	if r.err == nil {
		r.err = errors.New("compress: read from a closed Reader")
	}
	return nil
}

// wrap turns a decoder's error into the error Read returns: the scanner's
// finding if it has one, the underlying reader's error if it failed,
// otherwise a FormatError naming the frame at fault.
func (r *Reader) wrap(err error) error {
	if r.src.scan.err != nil {
		return r.src.scan.err
	}
	if r.src.ioErr != nil {
		return fmt.Errorf("reading %v input: %w", r.codec, r.src.ioErr)
	}
	f, exact := r.src.scan.frameAt(r.out)
	where := fmt.Sprintf("its data starts at offset %#x of the decompressed stream", f.dstart)
	if !exact {
		where = fmt.Sprintf("after %#x octets of decompressed stream", r.out)
	}
	var inner error
	if errors.Is(err, io.ErrUnexpectedEOF) {
		inner = fmt.Errorf("%w (%s)", io.ErrUnexpectedEOF, where)
	} else {
		inner = stream.Corrupt("%v (%s)", err, where)
	}
	return &stream.FormatError{Layer: r.codec.String(), Offset: f.off, Index: -1, Type: fmt.Sprintf("frame %d", f.index), Err: inner}
}

// scanningReader feeds the compressed octets read to the scanner on their
// way to the decoder, and keeps the underlying reader's error apart.
type scanningReader struct {
	r     io.Reader
	scan  *scanner
	ioErr error
}

func (s *scanningReader) Read(p []byte) (int, error) {
	if s.scan.err != nil {
		return 0, s.scan.err
	}
	n, err := s.r.Read(p)
	if n > 0 {
		if serr := s.scan.scan(p[:n]); serr != nil {
			return 0, serr
		}
	}
	switch {
	case err == io.EOF:
		if serr := s.scan.end(); serr != nil {
			return n, serr
		}
	case err != nil:
		s.ioErr = err
	}
	return n, err
}
