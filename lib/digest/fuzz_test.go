package digest_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/compress"
	"github.com/xstream/xstream/lib/digest"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/upgrade"
	"github.com/xstream/xstream/tests/legacygen"
)

// fuzzLimit bounds the (decompressed, upgraded) stream read per input: a
// few octets of compressed input can stand for a great deal.
const fuzzLimit = 8 << 20

// digestInput digests b as xstream-cat --digest does: decompressed and
// upgraded from legacy if need be, walked without verifying (so that
// more reaches the Digester).
func digestInput(b []byte) (sum string, pages int, err error) {
	in, err := sniff.Open(bytes.NewReader(b))
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	up, _, err := upgrade.Open(in.Source, &upgrade.Options{LegacyOnly: true})
	if err != nil {
		return "", 0, err
	}
	defer up.Close()
	defer func() {
		if uerr := up.Err(); uerr != nil {
			err = uerr
		}
	}()
	wk, err := sniff.NewWalker(io.LimitReader(up, fuzzLimit), nil)
	if err != nil {
		return "", 0, err
	}
	d := digest.New()
	defer d.Close()
	for {
		it, err := wk.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, err
		}
		if err := d.Add(it); err != nil {
			return "", 0, err
		}
	}
	sum, err = d.Sum()
	return sum, d.Pages(), err
}

// FuzzDigest digests arbitrary input, compressed, legacy or v2/v3, with
// a cache of two chunks (so that the pfn table goes through its file)
// and with the normal one. It must not panic or hang, a failure must be
// an error with a message, and both caches must give the same digest and
// page count.
//
// Seeds: the walker's and the decompressor's seed files, a small legacy
// stream, a small stream plain and compressed, and one that scatters,
// resends and removes pfns.
func FuzzDigest(f *testing.F) {
	for _, dir := range []string{"../sniff/testdata/seeds", "../compress/testdata/seeds"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	var leg bytes.Buffer
	if err := legacygen.Write(&leg, legacygen.Config{Width: 64, Pages: 12, Batch: 4, Special: true, BareXTab: 1, Rounds: 1, Seed: 2}); err != nil {
		f.Fatal(err)
	}
	f.Add(leg.Bytes())
	pv := testutil.PV{Pages: 3, Batch: 1, Reverse: true}.Stream(f)
	f.Add(pv)
	for _, c := range []compress.Codec{compress.Zstd, compress.LZ4} {
		var z bytes.Buffer
		w, err := compress.NewWriter(&z, c, nil)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := w.Write(pv); err != nil {
			f.Fatal(err)
		}
		if err := w.Close(); err != nil {
			f.Fatal(err)
		}
		f.Add(z.Bytes())
	}
	f.Add(pvStream(f, [][]uint64{
		words(stream.PageNotab, 0, 64, 200, 1<<40),
		words(stream.PageXAlloc, 128, 4096),
		cat(words(stream.PageXTab, 64, 1<<30), words(stream.PageL1Tab, 0)),
		nil,
		words(stream.PageNotab, 200),
	}, binary.BigEndian))

	f.Fuzz(func(t *testing.T, b []byte) {
		restore := digest.SetCacheChunks(2)
		sum2, pages2, err2 := digestInput(b)
		restore()
		sum, pages, err := digestInput(b)
		for _, e := range []error{err, err2} {
			if e != nil && e.Error() == "" {
				t.Fatalf("error %#v without a message", e)
			}
		}
		if (err == nil) != (err2 == nil) || sum != sum2 || pages != pages2 {
			t.Fatalf("cache of 2 chunks: %q, %d pages, error %v; normal cache: %q, %d pages, error %v",
				sum2, pages2, err2, sum, pages, err)
		}
		if err == nil && (!strings.HasPrefix(sum, digest.Version+":") || len(sum) != len(digest.Version)+65) {
			t.Fatalf("digest %q", sum)
		}
	})
}
