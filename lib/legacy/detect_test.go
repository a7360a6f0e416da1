package legacy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/xstream/xstream/internal/testcorpus"
	"github.com/xstream/xstream/lib/stream"
)

// outcomes runs the four probes over the start of a legacy stream (after
// any xl header), as Detect does.
func outcomes(t *testing.T, b []byte) []outcome {
	t.Helper()
	r := NewReader(bytes.NewReader(b), nil)
	if err := r.readXL(); err != nil {
		t.Fatal(err)
	}
	r.start = r.src.Offset()
	w, err := r.src.Peek(ProbeWindow)
	eof := err == io.EOF
	var outs []outcome
	for _, l := range candidates(w) {
		outs = append(outs, r.try(l, w, eof))
	}
	return outs
}

// TestDetectCorpus: in every corpus case exactly one layout reads, the
// manifest's, and every other fails within the first octets.
func TestDetectCorpus(t *testing.T) {
	dir, cases := testcorpus.Legacy(t)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, c.Name+".legacy"))
			if err != nil {
				t.Fatal(err)
			}
			want := Layout{Width: c.Width, Guest: map[string]Guest{"pv": GuestPV, "hvm": GuestHVM}[c.Guest]}
			outs := outcomes(t, b)
			if outs[0].layout != want {
				t.Errorf("first candidate %v, want %v", outs[0].layout, want)
			}
			for _, o := range outs {
				ok := o.err == nil || o.open
				if ok != (o.layout == want) {
					t.Errorf("%v: err %v", o.layout.short(), o.err)
				}
				var fe *stream.FormatError
				if !ok && errors.As(o.err, &fe) {
					t.Logf("%-12s fails at +%d: %v", o.layout.short(), fe.Offset, o.err)
				}
			}
			l, err := NewReader(bytes.NewReader(b), nil).Detect()
			if err != nil || l != want {
				t.Fatalf("Detect: %v, %v; want %v", l, err, want)
			}
		})
	}
}
