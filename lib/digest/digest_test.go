package digest_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/xstream/xstream/internal/testutil"
	"github.com/xstream/xstream/lib/digest"
)

func sum(t *testing.T, in []byte) string {
	t.Helper()
	d, err := digest.Stream(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestInvariance: batching, batch order, byte order, stream version and
// framing do not change the digest.
func TestInvariance(t *testing.T) {
	ref := sum(t, testutil.PV{Pages: 700}.Stream(t))
	for name, in := range map[string][]byte{
		"batch 100":      testutil.PV{Pages: 700, Batch: 100}.Stream(t),
		"batch 1, rev":   testutil.PV{Pages: 700, Batch: 1, Reverse: true}.Stream(t),
		"big-endian":     testutil.PV{Pages: 700, Batch: 333, Order: binary.BigEndian}.Stream(t),
		"version 2":      testutil.PV{Pages: 700, Version: 2}.Stream(t),
		"libxl":          testutil.Framed(t, testutil.PV{Pages: 700, Batch: 7}.Stream(t), nil, nil),
		"xl":             testutil.Framed(t, testutil.PV{Pages: 700}.Stream(t), nil, []byte(`{"c_info":{"name":"x"}}`)),
		"xl, other conf": testutil.Framed(t, testutil.PV{Pages: 700}.Stream(t), nil, []byte(`{"c_info":{"name":"y"}}`)),
	} {
		if got := sum(t, in); got != ref {
			t.Errorf("%s: digest %s, want %s", name, got, ref)
		}
	}
}

// TestSensitivity: a different page, vCPU context or emulator state
// changes the digest.
func TestSensitivity(t *testing.T) {
	ref := sum(t, testutil.PV{Pages: 700}.Stream(t))
	seen := map[string]string{ref: "reference"}
	for name, in := range map[string][]byte{
		"other content": testutil.PV{Pages: 700, Seed: 1}.Stream(t),
		"one page more": testutil.PV{Pages: 701}.Stream(t),
		"emulator":      testutil.Framed(t, testutil.PV{Pages: 700}.Stream(t), []byte("qemu"), nil),
	} {
		got := sum(t, in)
		if other, dup := seen[got]; dup {
			t.Errorf("%s: same digest as %s", name, other)
		}
		seen[got] = name
	}
	// One flipped bit in one page.
	in := testutil.PV{Pages: 700}.Stream(t)
	in[len(in)/2] ^= 1
	if sum(t, in) == ref {
		t.Error("a flipped bit in page data kept the digest")
	}
}

// TestCorpusDigestsStable pins the digest of the real Xen save file:
// digests are compared across machines and releases, so the format of
// docs/FORMAT.md must not drift silently. The value was computed once by
// this implementation; a change here needs a new digest Version.
func TestCorpusDigestsStable(t *testing.T) {
	for name, b := range testutil.XenReal(t) {
		if got, want := sum(t, b), "xsd1:bfaf32a2263d87500c86411442e04951682ebf679ee5aa1dd966beea194d74a4"; got != want {
			t.Errorf("%s: digest %s, want %s (the digest format changed?)", name, got, want)
		}
	}
}
