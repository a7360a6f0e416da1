package cmdutil

import (
	"bytes"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/xstream/xstream/internal/gen"
	"github.com/xstream/xstream/lib/sniff"
)

func TestIntersperse(t *testing.T) {
	app := &cli.App{
		Flags:    []cli.Flag{&cli.StringFlag{Name: "store"}, &cli.BoolFlag{Name: "json"}},
		Commands: []*cli.Command{{Name: "create", Flags: []cli.Flag{&cli.StringFlag{Name: "type"}, &cli.BoolFlag{Name: "force"}}}},
	}
	for in, want := range map[string]string{
		"x FILE --json":                   "x --json FILE",
		"x --store d create h --type hvm": "x --store d create --type hvm h",
		"x create h --force --type=pv":    "x create --force --type=pv h",
		"x create -- -h":                  "x create -- -h",
		"x --store d FILE":                "x --store d FILE",
	} {
		if got := strings.Join(Intersperse(app, strings.Fields(in)), " "); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// failAfter reads n octets of r, then fails with err.
type failAfter struct {
	r   io.Reader
	n   int
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	k, err := f.r.Read(p[:min(len(p), f.n)])
	f.n -= k
	return k, err
}

// A read that fails in the middle of a record says nothing of the
// stream: EIO from a disk exits 1, a stream that ends there exits 3.
func TestCodeOfReadErrors(t *testing.T) {
	d, err := gen.New(gen.Options{Pages: 1024, Name: "vm"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := d.Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		err  error
		code int
	}{
		{syscall.EIO, ExitFailure},
		{&os.PathError{Op: "read", Path: "/dev/sdz", Err: syscall.EIO}, ExitFailure},
		{syscall.ECONNRESET, ExitFailure},
		{io.EOF, ExitInvalid},
	} {
		wk, err := sniff.NewWalker(&failAfter{r: bytes.NewReader(b.Bytes()), n: 600000, err: c.err}, &sniff.Options{Verify: true})
		if err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = wk.Next()
		}
		if got := Code(err); got != c.code {
			t.Errorf("%v in a record: %v: exit %d, want %d", c.err, err, got, c.code)
		}
	}
}
