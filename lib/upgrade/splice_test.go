package upgrade

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

// TestOSPipes converts between real pipes (*os.File at both ends), where
// page data moves with splice(2) on Linux, and from a file into a pipe.
func TestOSPipes(t *testing.T) {
	dir, cases := testcorpus.Legacy(t)
	for _, c := range cases {
		in, err := os.ReadFile(filepath.Join(dir, c.Name+".legacy"))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(filepath.Join(dir, c.Name+".v3"))
		got, err := throughPipes(t, in, corpusOptions(t, c))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: err %v, output equal: %v", c.Name, err, bytes.Equal(got, want))
		}
	}
	// Truncated inside page data that is being spliced.
	in, _ := os.ReadFile(filepath.Join(dir, "w64-hvm-libxc.legacy"))
	_, err := throughPipes(t, in[:500000], nil)
	var fe *stream.FormatError
	if !errors.As(err, &fe) || !errors.Is(err, io.ErrUnexpectedEOF) || fe.Type != "PAGE_BATCH" {
		t.Fatalf("truncated: %v", err)
	}
	t.Log(err)
}

// throughPipes feeds in through an OS pipe to Upgrade, whose output goes
// to another OS pipe, and returns what came out.
func throughPipes(t *testing.T, in []byte, opts *Options) ([]byte, error) {
	t.Helper()
	ir, iw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	or, ow, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		iw.Write(in)
		iw.Close()
	}()
	out := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(or)
		out <- b
	}()
	_, err = Upgrade(ow, ir, opts)
	ow.Close()
	ir.Close()
	return <-out, err
}
