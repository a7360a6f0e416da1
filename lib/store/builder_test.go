package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xstream/xstream/lib/domain"
	"github.com/xstream/xstream/lib/stream"
)

// Only name's own copies are its: not a.b's when the name is a.
func TestIsCopyOf(t *testing.T) {
	for _, c := range []struct {
		dir, name string
		want      bool
	}{
		{"a.0123456789ab.tmp", "a", true},
		{"a.b.0123456789ab.tmp", "a", false}, // a.b's
		{"a.b.0123456789ab.tmp", "a.b", true},
		{"a.0123456789ab", "a", true}, // a committed copy
		{"a.b.0123456789ab", "a", false},
		{"a.0123456789xy.tmp", "a", false},
		{"a.0123456789abc.tmp", "a", false},
		{"a.0123456789ab.tmp.tmp", "a", false},
		{"vm[1].0123456789ab.tmp", "vm[1]", true},
		{"vm1.0123456789ab.tmp", "vm[1]", false},
	} {
		if got := isCopyOf(c.dir, c.name); got != c.want {
			t.Errorf("isCopyOf(%q, %q) = %v", c.dir, c.name, got)
		}
	}
}

// What a crash left of a name, a temporary copy or a whole old one, goes
// with the next writer or destroy of that name; other names' copies and
// the live one stay.
func TestLeftoversRemoved(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	create := func(name string) {
		t.Helper()
		b, err := s.Create(name, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.SetInfo(domain.Info{Type: stream.DomainX86PV, PageShift: stream.PageShift, PFNs: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(s.Root(), dataDir)
	copies := func() []string {
		t.Helper()
		ents, err := os.ReadDir(data)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	create("a")
	create("a.b")
	live := copies()
	for _, d := range []string{"a.0123456789ab", "a.0123456789ac.tmp"} {
		if err := os.MkdirAll(filepath.Join(data, d, "x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.Create("a", true) // an xrestore --force that fails
	if err != nil {
		t.Fatal(err)
	}
	b.Abort()
	if got := copies(); !slices.Equal(got, live) {
		t.Fatalf("after a writer of a: %v, want %v", got, live)
	}
	os.Mkdir(filepath.Join(data, "a.0123456789ad"), 0o755)
	if err := s.Destroy("a"); err != nil {
		t.Fatal(err)
	}
	if got := copies(); len(got) != 1 || !isCopyOf(got[0], "a.b") {
		t.Fatalf("after destroying a: %v, want a.b's copy alone", got)
	}
}

// A lock is taken once at a time, and leaves no file behind.
func TestLockLeavesNothing(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := s.lock("vm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.lock("vm"); err == nil {
		t.Fatal("a second lock of vm was taken")
	}
	unlock()
	if ents, _ := os.ReadDir(filepath.Join(s.root, lockDir)); len(ents) != 0 {
		t.Fatalf("left in the lock directory: %v", ents)
	}
	unlock, err = s.lock("vm")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}

func TestCheckName(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, name := range []string{"a", "vm1", "_x", "9", "web.example-01", "A_b.c-D", long} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", ".hidden", "-x", "a/b", "a b", "é", "a\x00", "vm:1", long + "a", "a\n"} {
		err := CheckName(name)
		if !errors.Is(err, ErrBadName) {
			t.Errorf("CheckName(%q) = %v, want ErrBadName", name, err)
		}
	}
}

// newBuilder starts a writer of vm, a one-pfn PV domain, in a new store.
func newBuilder(t *testing.T) (*Store, domain.Builder) {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create("vm", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Abort() })
	if err := b.SetInfo(domain.Info{Type: stream.DomainX86PV, PageShift: stream.PageShift, PFNs: 1}); err != nil {
		t.Fatal(err)
	}
	return s, b
}

// The store takes no more records than it reads back, and says so as a
// limit of the stream's, which names the record.
func TestRecordsBounded(t *testing.T) {
	defer func(n int64) { maxRecordsFile = n }(maxRecordsFile)
	maxRecordsFile = 100
	_, b := newBuilder(t)
	rec := domain.Record{Layer: domain.Libxl, Type: 3, Body: make([]byte, 40)} // 56 octets logged
	if err := b.SetRecord(rec); err != nil {
		t.Fatalf("first record: %v", err)
	}
	if err := b.SetRecord(rec); !errors.Is(err, stream.ErrLimit) {
		t.Fatalf("second record: %v, want ErrLimit", err)
	}
	// Padding counts: a 41-octet body takes 64 octets, 120 with the first.
	maxRecordsFile = 119
	if err := b.SetRecord(domain.Record{Layer: domain.Libxl, Type: 3, Body: make([]byte, 41)}); !errors.Is(err, stream.ErrLimit) {
		t.Fatalf("a padded record past the limit: %v, want ErrLimit", err)
	}
}

// Too many pfns for the memory file is a limit of the stream's.
func TestPFNsBounded(t *testing.T) {
	_, b := newBuilder(t)
	info := domain.Info{Type: stream.DomainX86PV, PageShift: stream.PageShift, PFNs: MaxPFNs}
	if err := b.SetInfo(info); err != nil {
		t.Fatalf("%#x pfns: %v", info.PFNs, err)
	}
	info.PFNs++
	if err := b.SetInfo(info); !errors.Is(err, stream.ErrLimit) {
		t.Fatalf("%#x pfns: %v, want ErrLimit", info.PFNs, err)
	}
}

// A source reads the copy it opened, whole, even once a writer has
// replaced the domain and removed that copy.
func TestOpenSeesOneCopy(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	create := func(config string, body byte) {
		t.Helper()
		b, err := s.Create("vm", true)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.SetInfo(domain.Info{Type: stream.DomainX86PV, PageShift: stream.PageShift, PFNs: 1, Config: []byte(config)}); err != nil {
			t.Fatal(err)
		}
		page := bytes.Repeat([]byte{body}, stream.PageSize)
		if err := b.SetPages([]uint64{stream.PFNWord(0, stream.PageNotab)}, page); err != nil {
			t.Fatal(err)
		}
		if err := b.SetRecord(domain.Record{Layer: domain.Libxl, Type: 3, Body: []byte{0, 0, 0, 0, 0, 0, 0, 0, body}}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	create("one", 1)
	src, err := s.Open("vm")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	create("two", 2)
	recs, err := src.Records()
	if err != nil {
		t.Fatalf("records of the replaced copy: %v", err)
	}
	if len(recs) != 1 || recs[0].Body[8] != 1 || string(src.Info().Config) != "one" {
		t.Fatalf("read %v, config %q; want the first copy's", recs, src.Info().Config)
	}
	types := make([]stream.PageType, 1)
	data := make([]byte, stream.PageSize)
	if _, err := src.ReadPages(0, types, data); err != nil || data[0] != 1 || data[stream.PageSize-1] != 1 {
		t.Fatalf("page 0 of the replaced copy: %v, %d; want the first copy's, all 1", err, data[0])
	}
}

// A commit syncs every file of the copy before the copy is renamed into
// place, the data directory after that, and the store's directory after
// the name's link is swapped: a crash at any point leaves the old domain
// or the new one, whole.
func TestCommitOrder(t *testing.T) {
	defer func(s func(*os.File) error, r func(string, string) error) { syncFile, renamePath = s, r }(syncFile, renamePath)
	var log []string
	syncFile = func(f *os.File) error {
		log = append(log, "sync "+filepath.Base(f.Name()))
		return f.Sync()
	}
	renamePath = func(from, to string) error {
		log = append(log, "rename "+filepath.Base(from))
		return os.Rename(from, to)
	}
	s, b := newBuilder(t)
	log = nil
	if _, err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	at := func(entry string) int {
		t.Helper()
		i := slices.Index(log, entry)
		if i < 0 {
			t.Fatalf("no %q in %q", entry, log)
		}
		return i
	}
	renameCopy := slices.IndexFunc(log, func(e string) bool { return strings.HasPrefix(e, "rename vm.") })
	if renameCopy < 0 {
		t.Fatalf("the copy was not renamed: %q", log)
	}
	for _, f := range []string{"types", "memory", "records", "info.json", "config"} {
		if at("sync "+f) > renameCopy {
			t.Errorf("%s synced after the copy's rename: %q", f, log)
		}
	}
	if at("sync "+dataDir) < renameCopy {
		t.Errorf("the data directory synced before the copy's rename: %q", log)
	}
	if at("sync "+filepath.Base(s.Root())) < at("rename .vm.link") {
		t.Errorf("the store's directory synced before the link's swap: %q", log)
	}
}

// A directory that cannot be synced after the copy is in place is
// reported, with the domain's Info: stored, whole, but not durable yet.
func TestCommitNotDurable(t *testing.T) {
	defer func(s func(*os.File) error) { syncFile = s }(syncFile)
	syncFile = func(f *os.File) error {
		if filepath.Base(f.Name()) == dataDir {
			return errors.New("injected sync failure")
		}
		return f.Sync()
	}
	s, b := newBuilder(t)
	info, err := b.Commit()
	var nd *NotDurableError
	if !errors.As(err, &nd) || info.Name != "vm" {
		t.Fatalf("Commit: %+v, %v; want vm's Info and a NotDurableError", info, err)
	}
	src, err := s.Open("vm")
	if err != nil {
		t.Fatalf("the domain is not in place: %v", err)
	}
	src.Close()
}

// A destroy whose unlinking cannot be synced keeps the data: a crash
// must not leave a link to a half-removed copy.
func TestDestroyNotDurable(t *testing.T) {
	s, b := newBuilder(t)
	if _, err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	defer func(s func(*os.File) error) { syncFile = s }(syncFile)
	syncFile = func(f *os.File) error { return errors.New("injected sync failure") }
	if err := s.Destroy("vm"); err == nil {
		t.Fatal("Destroy succeeded with its unlinking not synced")
	}
	if s.Exists("vm") {
		t.Fatal("vm is still linked")
	}
	if copies, _ := os.ReadDir(filepath.Join(s.Root(), dataDir)); len(copies) != 1 {
		t.Fatalf("vm's data: %v, want it kept", copies)
	}
}
