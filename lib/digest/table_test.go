package digest

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xstream/xstream/lib/stream"
)

type entry struct {
	t stream.PageType
	h [16]byte
}

// TestTableModel: random page, XTAB and resend operations over scattered
// pfns leave the same table whatever the cache size (from 1 chunk, where
// nearly every access goes through the file, up to one that holds all),
// and the same as a plain map.
func TestTableModel(t *testing.T) {
	for _, n := range []int{1, 2, 4, 64, 8192} {
		defer SetCacheChunks(n)()
		rng := rand.New(rand.NewPCG(1, 2))
		model := map[uint64]entry{}
		d := New()
		page := make([]byte, stream.PageSize)
		types := []stream.PageType{stream.PageNotab, stream.PageL1Tab, stream.PageL4Pin, stream.PageXAlloc, stream.PageBroken, stream.PageXTab}
		for i := 0; i < 20000; i++ {
			// Mostly a few hundred chunks; now and then far away.
			pfn := rng.Uint64N(300 * chunkPFNs)
			if rng.IntN(50) == 0 {
				pfn = rng.Uint64N(1 << 52)
			}
			typ := types[rng.IntN(len(types))]
			var data []byte
			var h [16]byte
			if typ.HasData() {
				page[rng.IntN(len(page))] = byte(i)
				data = page
				h = pageHash(page)
			}
			if err := d.Page(pfn, typ, data); err != nil {
				t.Fatal(err)
			}
			if typ == stream.PageXTab {
				delete(model, pfn)
			} else {
				model[pfn] = entry{typ, h}
			}
		}
		if d.Pages() != len(model) {
			t.Errorf("cache %d: Pages() = %d, want %d", n, d.Pages(), len(model))
		}
		want := slices.Sorted(func(yield func(uint64) bool) {
			for pfn := range model {
				if !yield(pfn) {
					return
				}
			}
		})
		var got []uint64
		err := d.table.each(func(ci uint64, c *chunk) {
			for i := uint64(0); i < chunkPFNs; i++ {
				if c.present&(1<<i) == 0 {
					continue
				}
				pfn := ci<<chunkShift | i
				got = append(got, pfn)
				if e := (entry{c.types[i], c.hashes[i]}); e != model[pfn] {
					t.Fatalf("cache %d: pfn %#x: %v %x, want %v %x", n, pfn, e.t, e.h, model[pfn].t, model[pfn].h)
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("cache %d: %d pfns in the table, want %d", n, len(got), len(want))
		}
		if n < 300 && d.table.file == nil {
			t.Errorf("cache %d: the file was not used", n)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Sum(); err == nil {
			t.Error("Sum after Close did not fail")
		}
		if err := d.Page(0, stream.PageNotab, page); err == nil {
			t.Error("Page after Close did not fail")
		}
	}
}

// TestTableFileError: when the temporary file cannot be made, the
// eviction that needs it fails with an error, and so does Sum.
func TestTableFileError(t *testing.T) {
	defer SetCacheChunks(1)()
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	d := New()
	defer d.Close()
	if err := d.Page(0, stream.PageXAlloc, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Page(chunkPFNs, stream.PageXAlloc, nil); err == nil || !strings.Contains(err.Error(), "pfn table file") {
		t.Fatalf("eviction without a temporary directory: error %v", err)
	}
	if _, err := d.Sum(); err == nil {
		t.Error("Sum after a failed eviction did not fail")
	}
}
