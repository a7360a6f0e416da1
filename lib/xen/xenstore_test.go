//go:build linux

package xen

import (
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xstream/xstream/internal/gen"
)

// fakeXenstore serves xenstore reads of the given paths on a unix socket
// and returns the socket's path.
func fakeXenstore(t *testing.T, tree map[string]string) string {
	return fakeXenstoreFunc(t, func(p string) (string, bool) { v, ok := tree[p]; return v, ok })
}

// fakeXenstoreFunc serves what get says: a directory as names separated
// by spaces.
func fakeXenstoreFunc(t *testing.T, get func(string) (string, bool)) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "socket")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					var h [16]byte
					if _, err := io.ReadFull(c, h[:]); err != nil {
						return
					}
					o := binary.NativeEndian
					body := make([]byte, o.Uint32(h[12:]))
					if _, err := io.ReadFull(c, body); err != nil {
						return
					}
					path := strings.TrimRight(string(body), "\x00")
					typ := o.Uint32(h[0:])
					var ans string
					switch v, ok := get(path); {
					case !ok:
						typ, ans = xsError, "ENOENT\x00"
					case typ == xsDirectory:
						ans = strings.ReplaceAll(v, " ", "\x00") + "\x00"
					default:
						ans = v
					}
					o.PutUint32(h[0:], typ)
					o.PutUint32(h[12:], uint32(len(ans)))
					c.Write(append(h[:], ans...))
				}
			}()
		}
	}()
	return sock
}

func TestXenstoreNames(t *testing.T) {
	sock := fakeXenstore(t, map[string]string{
		"/local/domain":        "0 3 9",
		"/local/domain/0/name": "Domain-0",
		"/local/domain/3/name": "vm",
	})
	names, err := xenstoreNames([]string{filepath.Join(t.TempDir(), "none"), sock})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || names["Domain-0"] != 0 || names["vm"] != 3 || !names.has("Domain-0") {
		t.Fatalf("names %v", names)
	}
	if _, err := xenstoreNames([]string{filepath.Join(t.TempDir(), "none")}); err == nil {
		t.Fatal("no socket, no error")
	}
}

// xenstore serves the fake xl's domains.
func (f *fake) xenstore() []string {
	return []string{fakeXenstoreFunc(f.t, func(p string) (string, bool) {
		var ids []string
		for name, line := range f.domains() {
			id, _, _ := strings.Cut(line, " ")
			if p == "/local/domain/"+id+"/name" {
				return name, true
			}
			ids = append(ids, id)
		}
		if p == "/local/domain" {
			return strings.Join(append(ids, "0"), " "), true
		}
		if p == "/local/domain/0/name" {
			return "Domain-0", true
		}
		return "", false
	})}
}

// With xenstore, a restore beside its namesake starts one xl restore,
// paused, and asks no xl list.
func TestRestoreBesideWithXenstore(t *testing.T) {
	f := newFake(t)
	f.host.Xenstore = f.xenstore()
	f.addDomain("vm", 3, "--p---")
	f.write("restore.gone", []byte("vm"))
	src := genStream(t, gen.Options{Pages: 256, Name: "vm"})
	if _, err := restoreBytes(f, src, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := "restore -p /proc/self/fd/3\nrename vm--incoming vm\nunpause vm\n"; f.calls() != want {
		t.Fatalf("xl calls:\n%s\nwant:\n%s", f.calls(), want)
	}
	if f.domains()["vm"] != "7 -b---- pv 128" {
		t.Fatalf("domains %v", f.domains())
	}
}
