package xen

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xstream/xstream/internal/gen"
	"github.com/xstream/xstream/lib/digest"
	"github.com/xstream/xstream/lib/domain"
	"github.com/xstream/xstream/lib/rewrite"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xl"
)

// fake is a Host driving testdata/fakexl, whose domains are files.
type fake struct {
	t    *testing.T
	dir  string
	host *Host
}

func newFake(t *testing.T) *fake {
	t.Helper()
	xlPath, err := filepath.Abs("testdata/fakexl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("FAKEXL_DIR", dir)
	return &fake{t: t, dir: dir, host: &Host{XL: xlPath, AbortTimeout: 20 * time.Second, NameTimeout: 300 * time.Millisecond}}
}

func (f *fake) addDomain(name string, id int, state string) {
	f.t.Helper()
	os.MkdirAll(filepath.Join(f.dir, "dom"), 0o755)
	if err := os.WriteFile(filepath.Join(f.dir, "dom", name), []byte(strings.Join([]string{itoa(id), state, "pv", "128"}, " ")+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

var be = binary.BigEndian

func (f *fake) domains() map[string]string {
	out := map[string]string{}
	ents, _ := os.ReadDir(filepath.Join(f.dir, "dom"))
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(f.dir, "dom", e.Name()))
		out[e.Name()] = strings.TrimSpace(string(b))
	}
	return out
}

func (f *fake) calls() string {
	b, _ := os.ReadFile(filepath.Join(f.dir, "calls"))
	return string(b)
}

func (f *fake) write(name string, b []byte) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), b, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fake) read(name string) []byte {
	b, _ := os.ReadFile(filepath.Join(f.dir, name))
	return b
}

func genStream(t *testing.T, o gen.Options) []byte {
	t.Helper()
	d, err := gen.New(o)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := d.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func digestOf(t *testing.T, b []byte) string {
	t.Helper()
	d, err := digest.Stream(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// saveAll runs a save the way xsave does and returns the stream.
func saveAll(t *testing.T, f *fake, name string, keep bool) ([]byte, error) {
	t.Helper()
	sv, err := f.host.Save(context.Background(), name, SaveOptions{Keep: keep})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = rewrite.Copy(&out, sv, &sniff.Options{Verify: true}, nil)
	if err == nil {
		err = sv.Wait()
	}
	if err != nil {
		return nil, sv.Abort(err)
	}
	return out.Bytes(), sv.Commit(context.Background())
}

func TestSaveDestroysOnlyAtCommit(t *testing.T) {
	f := newFake(t)
	f.addDomain("vm", 3, "-b----")
	src := genStream(t, gen.Options{Pages: 2048, Name: "vm"})
	f.write("save.stream", src)
	got, err := saveAll(t, f, "vm", false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, src) {
		t.Fatal("the saved stream differs from what xl wrote")
	}
	if want := "save -p vm /proc/self/fd/3\ndestroy vm\n"; f.calls() != want {
		t.Fatalf("xl calls:\n%s\nwant:\n%s", f.calls(), want)
	}
	if len(f.domains()) != 0 {
		t.Fatalf("domains left: %v", f.domains())
	}
}

// slowSaveToFile starts saving "vm" of a fake xl that writes a 1024-page
// stream (returned) slowly into a file (named).
func slowSaveToFile(t *testing.T) (*fake, *Saving, []byte, string) {
	t.Helper()
	f := newFake(t)
	f.addDomain("vm", 3, "-b----")
	src := genStream(t, gen.Options{Pages: 1024, Name: "vm"})
	f.write("save.stream", src)
	f.write("save.slow", nil)
	file := filepath.Join(t.TempDir(), "vm.xl")
	fd, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close() })
	sv, err := f.host.Save(context.Background(), "vm", SaveOptions{File: fd})
	if err != nil {
		t.Fatal(err)
	}
	return f, sv, src, file
}

// To a file: xl writes it, and the caller checks it once Wait returns;
// the Saving has nothing to read.
func TestSaveToFile(t *testing.T) {
	f, sv, src, file := slowSaveToFile(t)
	if _, err := sv.Read(make([]byte, 8)); err != errNoPipe {
		t.Fatalf("Read of a save to a file: %v", err)
	}
	if err := sv.Wait(); err != nil {
		t.Fatal(sv.Abort(err))
	}
	if err := sv.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); !bytes.Equal(b, src) {
		t.Fatal("the file differs from what xl wrote")
	}
	if want := "save -p vm /proc/self/fd/3\ndestroy vm\n"; f.calls() != want {
		t.Fatalf("xl calls:\n%s", f.calls())
	}
}

func TestSaveKeep(t *testing.T) {
	f := newFake(t)
	f.addDomain("vm", 3, "-b----")
	f.write("save.stream", genStream(t, gen.Options{Pages: 256, Name: "vm"}))
	if _, err := saveAll(t, f, "vm", true); err != nil {
		t.Fatal(err)
	}
	if want := "save -c vm /proc/self/fd/3\n"; f.calls() != want {
		t.Fatalf("xl calls:\n%s", f.calls())
	}
	if f.domains()["vm"] != "3 -b---- pv 128" {
		t.Fatalf("domain: %q", f.domains()["vm"])
	}
}

// A pipeline that fails half-way (a closed stdout, a full disk) leaves
// the domain running: xl's write fails and xl resumes it.
func TestSaveAbortHalfWay(t *testing.T) {
	f := newFake(t)
	f.addDomain("vm", 3, "-b----")
	f.write("save.stream", genStream(t, gen.Options{Pages: 4096, Name: "vm"}))
	sv, err := f.host.Save(context.Background(), "vm", SaveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	io.CopyN(io.Discard, sv, 100000)
	cause := errors.New("output closed early")
	if err := sv.Abort(cause); err != cause {
		t.Fatalf("Abort returned %v, want the pipeline's error", err)
	}
	if f.domains()["vm"] != "3 -b---- pv 128" {
		t.Fatalf("domain: %q", f.domains()["vm"])
	}
	if strings.Contains(f.calls(), "unpause") || strings.Contains(f.calls(), "destroy") {
		t.Fatalf("xl calls:\n%s", f.calls())
	}
}

// A stream that xl completed but we could not store (say -o's fsync
// failed) leaves the domain paused by xl: Abort unpauses it.
func TestSaveAbortAfterXL(t *testing.T) {
	f := newFake(t)
	f.addDomain("vm", 3, "-b----")
	f.write("save.stream", genStream(t, gen.Options{Pages: 256, Name: "vm"}))
	sv, err := f.host.Save(context.Background(), "vm", SaveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, sv)
	if err := sv.Wait(); err != nil {
		t.Fatal(err)
	}
	if f.domains()["vm"] != "3 --p--- pv 128" {
		t.Fatalf("after xl save -p: %q", f.domains()["vm"])
	}
	cause := errors.New("no space left on device")
	if err := sv.Abort(cause); err != cause {
		t.Fatalf("Abort: %v", err)
	}
	if f.domains()["vm"] != "3 -b---- pv 128" || !strings.HasSuffix(f.calls(), "unpause vm\n") {
		t.Fatalf("domain %q, calls:\n%s", f.domains()["vm"], f.calls())
	}
}

// When xl fails, its own message is the error, not the short stream.
func TestSaveXLFails(t *testing.T) {
	f := newFake(t)
	f.addDomain("vm", 3, "-b----")
	f.write("save.stream", genStream(t, gen.Options{Pages: 256, Name: "vm"}))
	f.write("save.fail", []byte("libxl: error: libxl_dom_suspend.c:123:suspend_common: Domain 3:guest did not suspend\n"))
	_, err := saveAll(t, f, "vm", false)
	var xe *Error
	if !errors.As(err, &xe) {
		t.Fatalf("error %v (%T), want an *Error", err, err)
	}
	want := "xl save vm: libxl: error: libxl_dom_suspend.c:123:suspend_common: Domain 3:guest did not suspend (and 1 more error lines; -v shows all of xl's output)"
	if err.Error() != want {
		t.Fatalf("error\n%q\nwant\n%q", err, want)
	}
}

func TestSaveNotFound(t *testing.T) {
	f := newFake(t)
	_, err := saveAll(t, f, "nosuch", false)
	if !errors.Is(err, domain.ErrNotFound) || err.Error() != "xl save nosuch: nosuch is an invalid domain identifier (rc=-6)" {
		t.Fatalf("error %v, want xl's, matching ErrNotFound", err)
	}
	f.addDomain("Domain-0", 0, "r-----")
	if _, err := f.host.Save(context.Background(), "Domain-0", SaveOptions{}); err == nil || !strings.Contains(err.Error(), "control domain") {
		t.Fatalf("saving Domain-0: %v", err)
	}
}

func restoreBytes(f *fake, b []byte, opts RestoreOptions) (Restored, error) {
	return f.host.Restore(context.Background(), bytes.NewReader(b), opts)
}

// An xl save file reaches xl restore octet for octet, and the domain is
// unpaused only after it.
func TestRestoreXL(t *testing.T) {
	f := newFake(t)
	src := genStream(t, gen.Options{Pages: 2048, Name: "vm"})
	res, err := restoreBytes(f, src, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.read("restored.stream"), src) {
		t.Fatal("xl restore got other octets than the xl save file")
	}
	if res.Name != "vm" || res.Type != stream.DomainX86PV || res.Bytes != int64(len(src)) {
		t.Fatalf("result %+v", res)
	}
	// xl restore starts beside xl list, guessing the name is free.
	if got := sortedLines(f.calls()); got != "list\nrestore /proc/self/fd/3" {
		t.Fatalf("xl calls:\n%s", f.calls())
	}
	if f.domains()["vm"] != "7 -b---- pv 128" {
		t.Fatalf("domains %v", f.domains())
	}
	if _, err := restoreBytes(f, src, RestoreOptions{Name: "paused", Paused: true}); err != nil {
		t.Fatal(err)
	}
	if f.domains()["paused"] != "8 --p--- pv 128" {
		t.Fatalf("domains %v", f.domains())
	}
}

// xsave vm | xrestore on one host: the old domain still runs while the
// new one is built, under NAME--incoming, renamed when the old has gone.
func TestRestoreBesideTheSavedDomain(t *testing.T) {
	f := newFake(t)
	f.addDomain("vm", 3, "--p---")
	f.write("restore.gone", []byte("vm"))
	src := genStream(t, gen.Options{Pages: 256, Name: "vm"})
	res, err := restoreBytes(f, src, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "vm" {
		t.Fatalf("restored as %q", res.Name)
	}
	got := f.read("restored.stream")
	wk, err := sniff.NewWalker(bytes.NewReader(got), &sniff.Options{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wk.Next(); err != nil || restoreName(wk.Config()) != "vm--incoming" {
		t.Fatalf("config name %q (%v)", restoreName(wk.Config()), err)
	}
	if digestOf(t, got) != digestOf(t, src) {
		t.Fatal("renaming changed the domain")
	}
	// The guess that the name was free was wrong: a second xl restore,
	// paused, replaces the first, which saw no header.
	if !strings.HasSuffix(f.calls(), "restore -p /proc/self/fd/3\nlist\nrename vm--incoming vm\nunpause vm\n") {
		t.Fatalf("xl calls:\n%s", f.calls())
	}
}

func restoreName(c []byte) string { return Config{Data: c}.Name() }

func sortedLines(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}

// A domain of that name that stays: the restore fails, leaving the
// domain it restored paused beside it (the stream may have been its only
// copy), unless told to replace it.
func TestRestoreNameTaken(t *testing.T) {
	f := newFake(t)
	f.addDomain("vm", 3, "-b----")
	src := genStream(t, gen.Options{Pages: 256, Name: "vm"})
	_, err := restoreBytes(f, src, RestoreOptions{})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "left paused as vm--incoming") {
		t.Fatalf("error %v, want ErrExists, and to be told of vm--incoming", err)
	}
	if d := f.domains(); len(d) != 2 || d["vm"] != "3 -b---- pv 128" || !strings.Contains(d["vm--incoming"], "--p---") {
		t.Fatalf("domains %v", d)
	}
	if _, err := restoreBytes(f, src, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "both exist") {
		t.Fatalf("restoring again beside vm--incoming: %v", err)
	}
	os.Remove(filepath.Join(f.dir, "dom", "vm--incoming"))
	if _, err := restoreBytes(f, src, RestoreOptions{Replace: true}); err != nil {
		t.Fatal(err)
	}
	if d := f.domains(); len(d) != 1 || d["vm"] != "8 -b---- pv 128" {
		t.Fatalf("domains %v after replacing", d)
	}
	if _, err := restoreBytes(f, src, RestoreOptions{Name: "copy", Paused: true}); err != nil {
		t.Fatal(err)
	}
	if d := f.domains(); d["copy"] == "" || !strings.Contains(d["copy"], "--p---") {
		t.Fatalf("domains %v after restoring a paused copy", d)
	}
}

func TestRestoreNeedsConfig(t *testing.T) {
	f := newFake(t)
	src := genStream(t, gen.Options{Pages: 256, Format: gen.FormatLibxl})
	if _, err := restoreBytes(f, src, RestoreOptions{}); !errors.Is(err, ErrNeedConfig) {
		t.Fatalf("error %v, want ErrNeedConfig", err)
	}
	if f.calls() != "" {
		t.Fatalf("xl called:\n%s", f.calls())
	}
}

// Any stream we read reaches xl as an xl save file of the same domain:
// bare libxc (with the legacy qemu tail), big-endian, checkpointed.
func TestRestoreReframes(t *testing.T) {
	cfg := TextConfig([]byte("name = \"other\"\ntype = \"hvm\"\nmemory = 16\n"))
	for _, tc := range []struct {
		name string
		o    gen.Options
		cfg  *Config
	}{
		{"libxc hvm with qemu tail", gen.Options{Type: stream.DomainX86HVM, Pages: 4096, Format: gen.FormatLibxc, NoXenstoreData: true}, &cfg},
		{"libxl big-endian v2", gen.Options{Pages: 512, Format: gen.FormatLibxl, ByteOrder: be, Version: 2}, &cfg},
		{"xl big-endian hvm checkpointed", gen.Options{Type: stream.DomainX86HVM, Pages: 4096, VCPUs: 2, ByteOrder: be, Checkpoints: 3}, nil},
		{"libxl pv checkpointed", gen.Options{Pages: 1024, Format: gen.FormatLibxl, Checkpoints: 2, Batch: 100}, &cfg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			src := genStream(t, tc.o)
			if _, err := restoreBytes(f, src, RestoreOptions{Config: tc.cfg, Name: "vm"}); err != nil {
				t.Fatal(err)
			}
			got := f.read("restored.stream")
			if digestOf(t, got) != digestOf(t, src) {
				t.Fatal("the domain changed on its way to xl")
			}
			wk, err := sniff.NewWalker(bytes.NewReader(got), &sniff.Options{Verify: true})
			if err != nil {
				t.Fatal(err)
			}
			for {
				it, err := wk.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if it.Order != le {
					t.Fatalf("%s in big-endian", it.Name())
				}
				switch it.Name() {
				case "CHECKPOINT", "CHECKPOINT_END", "QEMU_TAIL":
					t.Fatalf("%s reached xl", it.Name())
				case "XL_HEADER":
					if !it.XL.StreamV2() || it.XL.Order != le {
						t.Fatalf("xl header %+v", it.XL)
					}
					if want := "vm"; restoreName(it.XL.Config) != want {
						t.Fatalf("config names %q", restoreName(it.XL.Config))
					}
					if tc.cfg != nil && it.XL.MandatoryFlags&xl.FlagJSON != 0 {
						t.Fatal("a text config marked JSON")
					}
				}
			}
			if wk.Info().Kind != sniff.XL {
				t.Fatalf("xl got %v", wk.Info())
			}
		})
	}
}

// xl's refusal comes back with its own first error line, and nothing is
// left behind.
func TestRestoreXLFails(t *testing.T) {
	f := newFake(t)
	f.write("restore.fail", []byte(`xc: error: Failed to read Record Header from stream (0 = Success): Internal error
xc: error: Restore failed (0 = Success): Internal error
libxl: error: libxl_stream_read.c:852:libxl__xc_domain_restore_done: Domain 7:restoring domain: Success
`))
	_, err := restoreBytes(f, genStream(t, gen.Options{Pages: 256, Name: "vm"}), RestoreOptions{})
	want := "xl restore: xc: error: Failed to read Record Header from stream (0 = Success): Internal error (and 2 more error lines; -v shows all of xl's output)"
	if err == nil || err.Error() != want {
		t.Fatalf("error\n%v\nwant\n%s", err, want)
	}
	if len(f.domains()) != 0 {
		t.Fatalf("domains %v", f.domains())
	}
}

// A stream that turns out corrupt half-way is our error, not xl's, and
// the domain xl was building is gone.
func TestRestoreCorrupt(t *testing.T) {
	f := newFake(t)
	src := genStream(t, gen.Options{Pages: 2048, Name: "vm"})
	bad := bytes.Clone(src)
	// The pfn word of the last PAGE_DATA's first page gets reserved bits.
	i := bytes.LastIndex(bad, []byte{1, 0, 0, 0, 0x08, 0x20, 0x40, 0}) // PAGE_DATA, 1024 pages
	if i < 0 {
		t.Fatal("no PAGE_DATA record found")
	}
	bad[i+8+8+7] |= 0x01
	_, err := restoreBytes(f, bad, RestoreOptions{})
	var fe *stream.FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v, want a FormatError", err)
	}
	if len(f.domains()) != 0 {
		t.Fatalf("domains %v", f.domains())
	}
	if strings.Contains(f.calls(), "unpause") {
		t.Fatalf("xl calls:\n%s", f.calls())
	}
	// Cut short: the same.
	if _, err := restoreBytes(f, src[:len(src)/2], RestoreOptions{}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut stream: %v", err)
	}
	if len(f.domains()) != 0 {
		t.Fatalf("domains %v", f.domains())
	}
}

func TestList(t *testing.T) {
	f := newFake(t)
	f.addDomain("Domain-0", 0, "r-----")
	f.addDomain("vm", 3, "--p---")
	doms, err := f.host.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) != 2 || doms[1].Name != "vm" || doms[1].ID != 3 || !doms[1].Paused() || doms[1].Type != "pv" ||
		doms[1].MemoryMiB != 128 || doms[1].Describe() != "paused" || doms[0].Describe() != "running" {
		t.Fatalf("%+v", doms)
	}
}

// The listing of Xen 4.17's xl, as the lab printed it.
func TestParseList(t *testing.T) {
	out := "Name                                        ID   Mem VCPUs\tState\tTime(s)\n" +
		"Domain-0                                     0  1024     2     r-----     164.9\n" +
		"xlguest                                      1   128     1     -b----      21.4\n"
	doms, err := parseList([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []Domain{{Name: "Domain-0", ID: 0, MemoryMiB: 1024, VCPUs: 2, State: "r-----"}, {Name: "xlguest", ID: 1, MemoryMiB: 128, VCPUs: 1, State: "-b----"}}
	if len(doms) != 2 || doms[0] != want[0] || doms[1] != want[1] {
		t.Fatalf("%+v", doms)
	}
	if _, err := parseList([]byte("garbage\n")); err == nil {
		t.Fatal("garbage parsed")
	}
}

func TestConfig(t *testing.T) {
	js := Config{Data: []byte(`{"c_info": {"type": "hvm", "name": "vm", "uuid": "0550a34a"}, "b_info": {"max_memkb": 18446744073709551615, "device_model_version": "qemu_xen_traditional"}}` + "\x00"), JSON: true}
	if js.Name() != "vm" || js.Type() != "hvm" || js.Emulator() != 1 {
		t.Fatalf("name %q type %q emulator %d", js.Name(), js.Type(), js.Emulator())
	}
	c, err := js.WithName("vm--incoming")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "vm--incoming" || !c.JSON || !bytes.HasSuffix(c.Data, []byte{0}) ||
		!bytes.Contains(c.Data, []byte("18446744073709551615")) || !bytes.Contains(c.Data, []byte(`"0550a34a"`)) {
		t.Fatalf("renamed JSON config:\n%s", c.Data)
	}
	txt := TextConfig([]byte("# a guest\nname = \"vm\"\ntype = 'pvh'\nmemory = 128\n"))
	if txt.Name() != "vm" || txt.Type() != "pvh" || txt.Emulator() != 2 {
		t.Fatalf("text config: name %q type %q", txt.Name(), txt.Type())
	}
	c, _ = txt.WithName("b")
	if string(c.Data) != "# a guest\nname = \"b\"\ntype = 'pvh'\nmemory = 128\n" {
		t.Fatalf("renamed text config:\n%s", c.Data)
	}
	c, _ = TextConfig([]byte("memory = 128\n")).WithName("b")
	if c.Name() != "b" {
		t.Fatalf("named text config:\n%s", c.Data)
	}
}

func TestErrorMessage(t *testing.T) {
	e := newError("xl list x", []string{"x is an invalid domain identifier (rc=-6)"}, errors.New("exit status 1"))
	if e.Error() != "xl list x: x is an invalid domain identifier (rc=-6)" {
		t.Fatal(e.Error())
	}
	e = newError("xl save x", []string{"Saving to /proc/self/fd/3 new xl format", "something odd"}, errors.New("exit status 1"))
	if e.Error() != "xl save x: something odd" {
		t.Fatal(e.Error())
	}
	e = newError("xl save x", nil, errors.New("exit status 1"))
	if e.Error() != "xl save x: exit status 1" {
		t.Fatal(e.Error())
	}
}
