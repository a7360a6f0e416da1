package libxl_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/stream"
)

// readAll reads a libxl stream whose libxc part it skips with a libxc
// Reader, returning record names.
func readAll(in []byte) ([]string, error) {
	r := libxl.NewReader(bytes.NewReader(in), 0)
	if _, err := r.Header(); err != nil {
		return nil, err
	}
	var names []string
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return names, nil
		}
		if err != nil {
			return names, err
		}
		names = append(names, rec.Type.String())
		if rec.Type == libxl.RecLibxcContext {
			lc := r.Libxc(nil)
			for {
				_, err := lc.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return names, err
				}
			}
		}
	}
}

func TestReadWrite(t *testing.T) {
	pv := testutil.PV{Pages: 2}.Stream(t)
	in := testutil.Framed(t, pv, []byte("device model"), nil)
	names, err := readAll(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, " "); got != "LIBXC_CONTEXT EMULATOR_CONTEXT END" {
		t.Fatalf("records: %s", got)
	}
	// Offsets: the EMULATOR_CONTEXT record sits right after the libxc END.
	r := libxl.NewReader(bytes.NewReader(in), 100)
	r.Header()
	r.Next()
	lc := r.Libxc(nil)
	for {
		if _, err := lc.Next(); err != nil {
			break
		}
	}
	rec, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(100 + 16 + 8 + len(pv)); rec.Offset != want {
		t.Fatalf("EMULATOR_CONTEXT at %d, want %d", rec.Offset, want)
	}
	id, idx, data, err := rec.Emulator(binary.LittleEndian)
	if err != nil || id != libxl.EmulatorQemuUpstream || idx != 0 || string(data) != "device model" {
		t.Fatalf("emulator record: %d %d %q %v", id, idx, data, err)
	}
}

func TestXenstorePairs(t *testing.T) {
	kv, err := libxl.XenstorePairs([]byte("a\x001\x00b/c\x00two\x00"))
	if err != nil || len(kv) != 2 || kv[1] != [2]string{"b/c", "two"} {
		t.Fatalf("%v %v", kv, err)
	}
	for _, bad := range []string{"a\x001", "a\x00"} {
		if _, err := libxl.XenstorePairs([]byte(bad)); !errors.Is(err, stream.ErrCorrupt) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestErrors(t *testing.T) {
	pv := testutil.PV{Pages: 1}.Stream(t)
	good := testutil.Framed(t, pv, nil, nil)
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"ident", append([]byte("LibxlFmX"), good[8:]...), "header at offset 0x0: bad libxl ident"},
		{"version", append(append(bytes.Clone(good[:8]), 0, 0, 0, 3), good[12:]...), "libxl stream version 3"},
		{"huge record", append(bytes.Clone(good[:16]), 3, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f), "libxl record 0 (EMULATOR_CONTEXT) at offset 0x10: body length 2147483647 exceeds the limit"},
		{"cut body", append(bytes.Clone(good[:16]), 3, 0, 0, 0, 16, 0, 0, 0, 1), "stream truncated inside the record body"},
		{"no END", good[:len(good)-8], "stream ends before its END record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSeedFiles(t *testing.T) {
	pv := testutil.PV{Pages: 1}.Stream(t)
	testutil.Golden(t, "testdata/seeds/libxl.bin", testutil.Framed(t, pv, []byte("emu"), nil))
}

// FuzzReader: read a libxl stream (libxc inside) and write every record
// back; what reads must rewrite to the same octets.
func FuzzReader(f *testing.F) {
	files, _ := filepath.Glob("testdata/seeds/*")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := libxl.NewReader(bytes.NewReader(in), 0)
		h, err := r.Header()
		if err != nil {
			return
		}
		var out bytes.Buffer
		w, _ := libxl.NewWriter(&out, h)
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
			for _, b := range rec.Padding {
				if b != 0 {
					return
				}
			}
			w.WriteRecord(rec.Type, rec.Body)
			if rec.Type == libxl.RecLibxcContext {
				lc := r.Libxc(nil)
				ih, dh, err := lc.Headers()
				if err != nil {
					return
				}
				lw := stream.NewWriter(&out)
				lw.WriteHeaders(ih, dh)
				for {
					lr, err := lc.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						return
					}
					for _, b := range lr.Padding {
						if b != 0 {
							return
						}
					}
					lw.Copy(lr)
				}
			}
		}
		if !bytes.Equal(out.Bytes(), in[:r.Offset()]) {
			t.Fatal("rewrite differs")
		}
	})
}
