package legacy

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/xstream/xstream/lib/stream"
)

// Tail is the device-model (qemu) state that legacy libxl wrote after an
// HVM guest's libxc stream. Read it for the data; Header is the signature
// and length as found on the wire, for an exact copy.
type Tail struct {
	Offset    int64
	Signature string
	// Size is the length of the data, or -1 when the data runs to the
	// end of the input (the QemuDeviceModelRecord signature).
	Size   int64
	Header []byte

	r    *Reader
	left int64 // data octets not yet read; -1: to EOF
	part part
}

// Supported reports whether the tail has the one signature Xen's
// converter (and libxl's restore) accept: DeviceModelRecord0002.
func (t *Tail) Supported() bool { return t.Signature == QemuSignature }

// Read reads the tail's data.
func (t *Tail) Read(p []byte) (int, error) {
	if t.left == 0 {
		return 0, io.EOF
	}
	if t.left > 0 && int64(len(p)) > t.left {
		p = p[:t.left]
	}
	n, err := t.r.src.Read(p)
	if t.left > 0 {
		t.left -= int64(n)
	}
	switch {
	case err == io.EOF && t.left > 0:
		err = t.part.errorf(truncated{have: t.Size - t.left, want: t.Size})
		t.r.err = err
	case err == io.EOF:
		t.left = 0
	case err == nil && t.left == 0:
		err = io.EOF
	}
	return n, err
}

// Tail returns the device-model tail after END, or nil when the stream
// ends there. A PV stream has none: anything after its END is an error,
// reported by Tail or End.
func (r *Reader) Tail() (*Tail, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.state != stAfterEnd {
		return nil, errors.New("legacy: Tail called before END")
	}
	if r.tail != nil {
		return r.tail, nil
	}
	p := part{off: r.src.Offset(), index: -1, name: "qemu tail"}
	n := len(QemuSignature) + 4
	b, err := r.src.Peek(n)
	if len(b) == 0 && err == io.EOF {
		return nil, nil
	}
	if r.layout.Guest != GuestHVM {
		return nil, r.trailing()
	}
	sig := string(b[:min(len(b), len(QemuSignature))])
	switch {
	case sig == qemuSignatureToEOF:
		h := bytes.Clone(b[:len(QemuSignature)])
		r.src.Discard(len(h))
		r.tail = &Tail{Offset: p.off, Signature: sig, Size: -1, Header: h, r: r, left: -1, part: p}
		return r.tail, nil
	case sig == QemuSignature, sig == qemuSignatureRemus:
		if len(b) < n {
			if err == errWindow {
				r.err = p.errorf(err)
				return nil, r.err
			}
			r.err = p.errorf(truncated{have: int64(len(b)), want: int64(n)})
			return nil, r.err
		}
		size := int64(le.Uint32(b[len(QemuSignature):]))
		if size > MaxQemuTail {
			r.err = p.errorf(stream.OverLimit("qemu tail of %d octets exceeds the limit of %d", size, MaxQemuTail))
			return nil, r.err
		}
		h := bytes.Clone(b)
		r.src.Discard(n)
		r.tail = &Tail{Offset: p.off, Signature: sig, Size: size, Header: h, r: r, left: size, part: p}
		return r.tail, nil
	}
	if len(b) < len(QemuSignature) && err != nil {
		for _, s := range []string{QemuSignature, qemuSignatureToEOF, qemuSignatureRemus} {
			if s[:len(b)] == string(b) {
				// The input stops inside a signature.
				if err != errWindow {
					err = truncated{have: int64(len(b)), want: int64(len(s))}
				}
				r.err = p.errorf(err)
				return nil, r.err
			}
		}
	}
	return nil, r.trailing()
}

// End skips whatever is left of the tail and checks that the input ends
// there. After End the Reader is done.
func (r *Reader) End() error {
	if r.err != nil {
		return r.err
	}
	if r.state == stDone {
		return nil
	}
	if r.state != stAfterEnd {
		return errors.New("legacy: End called before END")
	}
	if r.tail == nil {
		if _, err := r.Tail(); err != nil {
			return err
		}
	}
	if t := r.tail; t != nil && t.left != 0 {
		if _, err := io.Copy(io.Discard, t); err != nil {
			return err
		}
	}
	if b, err := r.src.Peek(1); len(b) > 0 {
		return r.trailing()
	} else if err != nil && err != io.EOF {
		r.err = &stream.FormatError{Layer: "legacy", Offset: r.src.Offset(), Index: -1, Type: "end of stream", Err: err}
		return r.err
	}
	r.state = stDone
	return nil
}

// trailing reports data after the end of the stream.
func (r *Reader) trailing() error {
	off := r.src.Offset()
	b, _ := r.src.Peek(64)
	if len(b) == 0 {
		return nil
	}
	what := "octets"
	n, err := io.CopyN(io.Discard, r.src, 1<<20)
	count := fmt.Sprint(n)
	if n == 1<<20 {
		count = "at least " + count
	}
	if errors.Is(err, errWindow) {
		count = "more"
	}
	var e error = stream.Corrupt("%s %s of trailing data after the end of the stream", count, what)
	if len(b) >= 4 {
		if m := int32(le.Uint32(b)); m >= chunkMin && m <= MaxBatch {
			e = withHint(e, "it looks like another checkpoint's chunks: checkpointed (Remus) streams are not supported")
		}
	}
	r.err = &stream.FormatError{Layer: "legacy", Offset: off, Index: -1, Type: "end of stream", Err: e}
	return r.err
}
