package stream_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/xstream/xstream/lib/stream"
)

// hvmStream writes an HVM stream whose closing records are the given
// ones, after one PAGE_DATA.
func hvmStream(t *testing.T, closing ...stream.Body) []byte {
	t.Helper()
	var b bytes.Buffer
	w := stream.NewWriter(&b)
	ih := stream.NewImageHeader(binary.LittleEndian)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.WriteHeaders(ih, stream.DomainHeader{Type: stream.DomainX86HVM, PageShift: stream.PageShift, XenMajor: 4, XenMinor: 17}))
	must(w.WriteRecord(stream.RecStaticDataEnd))
	must(w.Write(&stream.PageData{PFNs: []uint64{0}, Data: make([]byte, stream.PageSize)}))
	must(w.Write(&stream.X86TSCInfo{KHz: 2000000}))
	for _, c := range closing {
		must(w.Write(c))
	}
	must(w.WriteRecord(stream.RecEnd))
	return b.Bytes()
}

func verify(s []byte) error {
	r := stream.NewReader(bytes.NewReader(s), nil)
	ih, dh, err := r.Headers()
	if err != nil {
		return err
	}
	v, err := stream.NewVerifier(ih, dh)
	if err != nil {
		return err
	}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return v.End()
		}
		if err != nil {
			return err
		}
		if err := v.Record(rec); err != nil {
			return err
		}
	}
}

// TestVerifyHVMOrder: Xen's saver writes HVM_CONTEXT before HVM_PARAMS,
// the specification's example the other way round; both are valid, and
// HVM_CONTEXT is required.
func TestVerifyHVMOrder(t *testing.T) {
	ctx := &stream.Blob{T: stream.RecHVMContext, Data: []byte{1, 0, 0, 0, 0, 0, 0, 0}}
	params := &stream.HVMParams{Params: []stream.HVMParam{{Index: 1, Value: 0xfeffc}}}
	for _, tc := range []struct {
		name    string
		closing []stream.Body
		err     string
	}{
		{"xen order", []stream.Body{ctx, params}, ""},
		{"spec order", []stream.Body{params, ctx}, ""},
		{"no params", []stream.Body{ctx}, ""},
		{"no context", []stream.Body{params}, "END without HVM_CONTEXT"},
	} {
		err := verify(hvmStream(t, tc.closing...))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.err)
		}
	}
}
