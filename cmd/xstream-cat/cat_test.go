package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/compress"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/tests/legacygen"
)

func cat(t *testing.T, opts options, in []byte) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(opts, bytes.NewReader(in), &out)
	return out.String(), err
}

func TestListing(t *testing.T) {
	in := testutil.Framed(t, testutil.PV{Pages: 3}.Stream(t), []byte("qemu"), []byte(`{}`))
	out, err := cat(t, options{}, in)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 14 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	for i, want := range map[int][]string{
		0:  {"0x00000000", "xl", "XL_HEADER", "libxl v2 stream follows"},
		3:  {"libxc", "LIBXC_HEADER", "v3 little-endian, x86 PV from Xen 4.17"},
		4:  {"libxc", "0 X86_PV_INFO", "64-bit guest, 4 page-table levels"},
		7:  {"PAGE_DATA", "3 pfns (3 with data) 0x0-0x2 [notab:3]"},
		8:  {"X86_TSC_INFO", "mode 0, 2000000 kHz"},
		12: {"libxl", "EMULATOR_CONTEXT", "qemu-upstream index 0"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
}

func TestJSON(t *testing.T) {
	in := testutil.PV{Pages: 3}.Stream(t)
	out, err := cat(t, options{json: true}, in)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	n := 0
	for sc.Scan() {
		var obj map[string]any
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		for _, k := range []string{"offset", "layer", "index", "type", "length", "size"} {
			if _, ok := obj[k]; !ok {
				t.Fatalf("line %d lacks %q: %s", n, k, sc.Text())
			}
		}
		if obj["type"] == "PAGE_DATA" && (obj["count"].(float64) != 3 || obj["pfn_last"].(float64) != 2) {
			t.Fatalf("PAGE_DATA fields: %s", sc.Text())
		}
		n++
	}
	if n != 9 { // the libxc header and 8 records
		t.Fatalf("%d JSON lines, want 9", n)
	}
}

func TestVerifyExitCodes(t *testing.T) {
	in := testutil.PV{Pages: 3}.Stream(t)
	out, err := cat(t, options{verify: true}, in)
	if err != nil || !strings.HasPrefix(out, "valid: libxc stream") {
		t.Fatalf("%q %v", out, err)
	}
	bad := bytes.Clone(in)
	bad[len(bad)-20] = 1 // inside vCPU context: still valid
	if _, err := cat(t, options{verify: true}, bad); err != nil {
		t.Fatalf("content change flagged: %v", err)
	}
	_, err = cat(t, options{verify: true}, in[:len(in)-3])
	if cmdutil.Code(err) != cmdutil.ExitInvalid || !strings.Contains(err.Error(), "record 7 (record header) at offset") {
		t.Fatalf("truncated: code %d, %v", cmdutil.Code(err), err)
	}
	out, err = cat(t, options{verify: true, quiet: true}, in)
	if err != nil || out != "" {
		t.Fatalf("quiet: %q %v", out, err)
	}
	// With --json an invalid stream is reported on standard output too.
	out, err = cat(t, options{verify: true, json: true}, in[:len(in)-3])
	var got struct {
		Valid  bool
		Offset int64
		What   string
		Index  int
		Error  string
	}
	if cmdutil.Code(err) != cmdutil.ExitInvalid || json.Unmarshal([]byte(out), &got) != nil || got.Valid || got.What != "record header" || got.Offset == 0 || got.Index != 7 || got.Error != err.Error() {
		t.Fatalf("--json, truncated: %q, %v", out, err)
	}
	// A listing (no --verify) prints the records up to the error, and no
	// verdict object.
	out, err = cat(t, options{json: true}, in[:len(in)-3])
	if cmdutil.Code(err) != cmdutil.ExitInvalid || strings.Contains(out, `"valid"`) {
		t.Fatalf("--json listing, truncated: %q, %v", out, err)
	}
	// -q prints nothing, JSON included.
	out, err = cat(t, options{verify: true, json: true, quiet: true}, in[:len(in)-3])
	if cmdutil.Code(err) != cmdutil.ExitInvalid || out != "" {
		t.Fatalf("--json -q, truncated: %q, %v", out, err)
	}
	// What is wrong with the input as a whole belongs to no layer.
	out, err = cat(t, options{verify: true, json: true}, nil)
	var layer struct{ Layer string }
	if cmdutil.Code(err) != cmdutil.ExitInvalid || json.Unmarshal([]byte(out), &layer) != nil || layer.Layer != "input" {
		t.Fatalf("--json, empty input: %q, %v", out, err)
	}
}

func TestStatsAndDigest(t *testing.T) {
	in := testutil.PV{Pages: 30, Batch: 7}.Stream(t)
	out, err := cat(t, options{stats: true, digest: true, verify: true}, in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(strings.Fields(out), " "), "libxc PAGE_DATA 5 123200 octets") {
		t.Errorf("no PAGE_DATA count line:\n%s", out)
	}
	for _, want := range []string{"zero pages:      10", "distinct pfns:   30", "memory:          122880 octets", "xsd1:", "valid:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestCompressedInput: zstd and lz4 input lists and verifies as the
// stream inside, and --verify says so.
func TestCompressedInput(t *testing.T) {
	in := testutil.Framed(t, testutil.PV{Pages: 30}.Stream(t), []byte("qemu"), []byte(`{}`))
	want, err := cat(t, options{}, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []compress.Codec{compress.Zstd, compress.LZ4} {
		var z bytes.Buffer
		w, _ := compress.NewWriter(&z, c, nil)
		w.Write(in)
		w.Close()
		if got, err := cat(t, options{}, z.Bytes()); err != nil || got != want {
			t.Errorf("%v: listing differs: %v", c, err)
		}
		out, err := cat(t, options{verify: true}, z.Bytes())
		if err != nil || !strings.Contains(out, ", "+c.String()+"-compressed") {
			t.Errorf("%v: --verify: %q %v", c, out, err)
		}
		bad := bytes.Clone(z.Bytes())
		bad[len(bad)/2] ^= 1
		if _, err := cat(t, options{verify: true}, bad); cmdutil.Code(err) != cmdutil.ExitInvalid {
			t.Errorf("%v: damaged: code %d, %v", c, cmdutil.Code(err), err)
		}
	}
}

// TestEveryModeRefusesABadStream: listing, --json, --stats and --digest
// verify as --verify does: a stream that breaks the rules ends with exit
// status 3 and an error naming the record and its offset.
func TestEveryModeRefusesABadStream(t *testing.T) {
	in := testutil.PV{Pages: 30, Batch: 7}.Stream(t)
	rd := stream.NewReader(bytes.NewReader(in), nil)
	if _, _, err := rd.Headers(); err != nil {
		t.Fatal(err)
	}
	var pd *stream.Record
	for pd == nil {
		rec, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type == stream.RecPageData {
			pd = rec
		}
	}
	// The first PAGE_DATA record's first entry becomes XTAB, which must
	// carry no data: its page is one too many for the count.
	xtab := bytes.Clone(in)
	binary.LittleEndian.PutUint64(xtab[pd.Offset+16:], stream.PFNWord(0, stream.PageXTab))
	// A version 2 stream relabelled 3: no STATIC_DATA_END.
	v2as3 := testutil.PV{Pages: 30, Batch: 7, Version: 2}.Stream(t)
	v2as3 = bytes.Clone(v2as3)
	v2as3[15] = 3
	for name, c := range map[string]struct {
		in   []byte
		want string
	}{
		"xtab with data":        {xtab, fmt.Sprintf("record %d (PAGE_DATA) at offset %#x", pd.Index, pd.Offset)},
		"v3 without static end": {v2as3, "STATIC_DATA_END"},
	} {
		for mode, opts := range map[string]options{
			"listing": {}, "json": {json: true}, "stats": {stats: true}, "digest": {digest: true}, "verify": {verify: true},
		} {
			_, err := cat(t, opts, c.in)
			if cmdutil.Code(err) != cmdutil.ExitInvalid || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s, %s: exit %d, %v; want exit 3 naming %q", name, mode, cmdutil.Code(err), err, c.want)
			}
		}
	}
}

// A compressed legacy stream says so in --stats and --verify, as any
// compressed stream does.
func TestCompressedLegacy(t *testing.T) {
	var leg bytes.Buffer
	if err := legacygen.Write(&leg, legacygen.Config{Width: 64, Pages: 20}); err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	w, _ := compress.NewWriter(&z, compress.Zstd, nil)
	w.Write(leg.Bytes())
	w.Close()
	for _, o := range []options{{stats: true}, {verify: true}} {
		out, err := cat(t, o, z.Bytes())
		if err != nil || !strings.Contains(out, "legacy") || !strings.Contains(out, "zstd-compressed") {
			t.Errorf("%+v: %q %v", o, out, err)
		}
	}
}
