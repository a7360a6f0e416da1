package compress

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Writer compresses what is written to it into a sequence of independent
// frames, one per chunk, several chunks at a time. Close must be called:
// it writes the last frame and stops the goroutines.
type Writer struct {
	w     io.Writer
	codec Codec
	opts  WriterOptions
	err   error // sticky
	cur   []byte
	pool  sync.Pool // *[]byte of ChunkSize capacity, for cur and outputs

	zenc *zstd.Encoder
	lz   *lz4Frame // the encoder of a synchronous Writer

	// With Concurrency > 1: chunks in flight, oldest first, and the
	// workers' queue.
	inflight []*job
	work     chan *job
	wg       sync.WaitGroup
	closed   bool
	written  int64
}

type job struct {
	in   *[]byte
	out  *[]byte
	err  error
	done chan struct{}
}

// NewWriter returns a Writer of codec c (Zstd or LZ4) to w.
func NewWriter(w io.Writer, c Codec, opts *WriterOptions) (*Writer, error) {
	var o WriterOptions
	if opts != nil {
		o = *opts
	}
	o, err := o.validate(c)
	if err != nil {
		return nil, err
	}
	zw := &Writer{w: w, codec: c, opts: o}
	if c == Zstd {
		// EncodeAll of a chunk: one frame, single segment, with the
		// content size and (unless disabled) the checksum.
		zw.zenc, err = zstd.NewWriter(nil, append(zstdOptions(o.Level),
			zstd.WithEncoderConcurrency(o.Concurrency), zstd.WithEncoderCRC(!o.NoChecksum),
			zstd.WithSingleSegment(true), zstd.WithZeroFrames(true))...)
		if err != nil {
			return nil, err
		}
	}
	return zw, nil
}

// Written returns the compressed octets written so far.
func (w *Writer) Written() int64 { return w.written }

func (w *Writer) buffer() *[]byte {
	if b, ok := w.pool.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, w.opts.ChunkSize)
	return &b
}

// Write compresses p.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errWriterClosed
	}
	n := 0
	for len(p) > 0 {
		if w.cur == nil {
			w.cur = *w.buffer()
		}
		k := copy(w.cur[len(w.cur):cap(w.cur)], p)
		w.cur = w.cur[:len(w.cur)+k]
		p = p[k:]
		n += k
		if len(w.cur) == cap(w.cur) {
			if err := w.submit(false); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// ReadFrom reads r to its end straight into the chunk buffers.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	for {
		if w.err != nil {
			return n, w.err
		}
		if w.closed {
			return n, errWriterClosed
		}
		if w.cur == nil {
			w.cur = *w.buffer()
		}
		k, err := io.ReadFull(r, w.cur[len(w.cur):cap(w.cur)])
		w.cur = w.cur[:len(w.cur)+k]
		n += int64(k)
		if len(w.cur) == cap(w.cur) {
			if err := w.submit(false); err != nil {
				return n, err
			}
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return n, nil
		default:
			return n, err
		}
	}
}

var errWriterClosed = errors.New("compress: write to a closed Writer")

// submit hands the current chunk on: compressed at once by a synchronous
// Writer, queued to the workers otherwise. An empty chunk is dropped
// unless empty is set.
func (w *Writer) submit(empty bool) error {
	in := w.cur
	w.cur = nil
	if in == nil {
		in = *w.buffer()
	}
	if len(in) == 0 && !empty {
		w.pool.Put(&in)
		return nil
	}
	if w.opts.Concurrency == 1 {
		out := w.buffer()
		var err error
		if *out, err = w.compress(in, *out); err == nil {
			err = w.emit(*out)
		}
		w.pool.Put(&in)
		w.pool.Put(out)
		return w.fail(err)
	}
	if w.work == nil {
		w.work = make(chan *job, w.opts.Concurrency)
		for range w.opts.Concurrency {
			w.wg.Add(1)
			go w.worker()
		}
	}
	// At most two chunks per worker in flight: one being compressed, one
	// waiting, so that a worker never idles while the writer catches up.
	for len(w.inflight) >= 2*w.opts.Concurrency {
		if err := w.retire(); err != nil {
			return err
		}
	}
	j := &job{in: &in, out: w.buffer(), done: make(chan struct{})}
	w.inflight = append(w.inflight, j)
	w.work <- j
	// Write whatever is already done, without waiting.
	for len(w.inflight) > 0 {
		select {
		case <-w.inflight[0].done:
			if err := w.retire(); err != nil {
				return err
			}
			continue
		default:
		}
		break
	}
	return nil
}

// retire waits for the oldest chunk in flight and writes its frame.
func (w *Writer) retire() error {
	j := w.inflight[0]
	<-j.done
	w.inflight[0] = nil
	w.inflight = w.inflight[1:]
	err := j.err
	if err == nil && w.err == nil {
		err = w.emit(*j.out)
	}
	w.pool.Put(j.in)
	w.pool.Put(j.out)
	return w.fail(err)
}

func (w *Writer) fail(err error) error {
	if err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

func (w *Writer) emit(frame []byte) error {
	n, err := w.w.Write(frame)
	w.written += int64(n)
	return err
}

func (w *Writer) worker() {
	defer w.wg.Done()
	var lz *lz4Frame
	for j := range w.work {
		*j.out, j.err = w.compressWith(&lz, *j.in, *j.out)
		close(j.done)
	}
}

// compress encodes one chunk as one frame, after its check frame unless
// checksums are off, appended to out.
func (w *Writer) compress(in, out []byte) ([]byte, error) {
	return w.compressWith(&w.lz, in, out)
}

func (w *Writer) compressWith(lz **lz4Frame, in, out []byte) ([]byte, error) {
	check := len(out)
	if !w.opts.NoChecksum {
		out = append(out, make([]byte, checkFrameSize)...)
	}
	start := len(out)
	if w.codec == Zstd {
		out = w.zenc.EncodeAll(in, out)
	} else {
		if *lz == nil {
			*lz = newLZ4Frame(w.opts)
		}
		var err error
		if out, err = (*lz).compress(in, out); err != nil {
			return out, err
		}
	}
	if !w.opts.NoChecksum {
		putCheck(out[check:start], out[start:])
	}
	return out, nil
}

// Close compresses what is left, writes it, and stops the goroutines. It
// does not close the underlying writer. An empty input still gives one
// (empty) frame, so that the output is a valid compressed file.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	if w.err == nil {
		w.submit(w.written == 0 && len(w.inflight) == 0)
	}
	w.closed = true
	for len(w.inflight) > 0 {
		w.retire()
	}
	if w.work != nil {
		close(w.work)
		w.wg.Wait()
		w.work = nil
	}
	if w.zenc != nil {
		w.zenc.Close()
	}
	return w.err
}

// lz4Frame compresses chunks into lz4 frames, one goroutine's worth.
type lz4Frame struct {
	zw   *lz4.Writer
	buf  bytes.Buffer
	opts []lz4.Option
}

func newLZ4Frame(o WriterOptions) *lz4Frame {
	return &lz4Frame{zw: lz4.NewWriter(nil), opts: []lz4.Option{
		lz4.ConcurrencyOption(1),
		lz4.BlockSizeOption(lz4BlockSize(o.ChunkSize)),
		lz4.ChecksumOption(!o.NoChecksum),
		lz4.CompressionLevelOption(lz4Level(o.Level)),
	}}
}

// lz4BlockSize is the smallest block size of the format holding a chunk.
func lz4BlockSize(chunk int) lz4.BlockSize {
	for _, b := range []lz4.BlockSize{lz4.Block64Kb, lz4.Block256Kb, lz4.Block1Mb} {
		if chunk <= int(b) {
			return b
		}
	}
	return lz4.Block4Mb
}

func (f *lz4Frame) compress(in, out []byte) ([]byte, error) {
	f.buf = *bytes.NewBuffer(out)
	f.zw.Reset(&f.buf)
	opts := append(f.opts[:len(f.opts):len(f.opts)], lz4.SizeOption(uint64(len(in))))
	if err := f.zw.Apply(opts...); err != nil {
		return out, err
	}
	if _, err := f.zw.Write(in); err != nil {
		return out, err
	}
	if err := f.zw.Close(); err != nil {
		return out, err
	}
	b := f.buf.Bytes()
	f.buf = bytes.Buffer{}
	return b, nil
}
