package sniff_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/xstream/xstream/internal/gen"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

// TestItemOffsets checks that items tile the input: each starts where
// the one before ends, including around the STATIC_DATA_END a version 2
// stream implies (it occupies no octets, and the PAGE_DATA held behind
// it keeps its own offset).
func TestItemOffsets(t *testing.T) {
	for _, o := range []gen.Options{
		{Pages: 64, Version: 2, Format: gen.FormatLibxc, Batch: 16},
		{Type: stream.DomainX86HVM, Pages: 64, Version: 2, Format: gen.FormatXL, Batch: 16},
		{Type: stream.DomainX86HVM, Pages: 64, Format: gen.FormatLibxl, Checkpoints: 2, ByteOrder: binary.BigEndian},
	} {
		var b bytes.Buffer
		if err := gen.Write(&b, o); err != nil {
			t.Fatal(err)
		}
		wk, err := sniff.NewWalker(bytes.NewReader(b.Bytes()), &sniff.Options{Verify: true})
		if err != nil {
			t.Fatal(err)
		}
		next := int64(0)
		for {
			it, err := wk.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if it.Offset != next {
				t.Errorf("%+v: %s %s at offset %#x, want %#x", o, it.Layer, it.Name(), it.Offset, next)
			}
			next = it.Offset + it.Size
		}
		if next != int64(b.Len()) {
			t.Errorf("%+v: items end at %#x, the stream at %#x", o, next, b.Len())
		}
	}
}
