// Package store is the embedded, file-backed domain backend: every domain
// is a directory under a store root.
//
//	ROOT/NAME                 symlink to .d/NAME.XXXX, swapped atomically
//	ROOT/.d/NAME.XXXX/
//	    info.json             domain.Info
//	    config                the xl configuration, as it came
//	    types                 one octet per pfn: 0 absent, 0x80|type present
//	    memory                sparse file, page pfn at offset pfn<<12
//	    records               state records, appended: layer(4) type(4)
//	                          length(8) body, zero padded to 8; the last of
//	                          a kind and key wins
//	ROOT/.locks/NAME          flock(2) held by a writer of NAME
//
// A domain becomes visible only when its directory is complete and synced:
// the builder writes a fresh directory and then renames a symlink over
// NAME. A crash leaves at most a stray .d/NAME.XXXX.tmp directory, which
// the next writer of NAME removes.
package store

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/xstream/xstream/lib/domain"
	"github.com/xstream/xstream/lib/stream"
)

// MaxPFNs bounds the pfns a stored domain may have: 2^32-1 pfns are the
// largest memory file ext4 holds (16 TiB less a 4 KiB block).
const MaxPFNs = 1<<32 - 1

// maxRecordsFile bounds the records log read back into memory (a
// variable for the tests).
var maxRecordsFile int64 = 1 << 30

const (
	typePresent = 0x80
	dataDir     = ".d"
	lockDir     = ".locks"
)

// DefaultRoot returns the store root: $XSTREAM_STORE, else
// $XDG_DATA_HOME/xstream, else ~/.local/share/xstream.
func DefaultRoot() string {
	if r := os.Getenv("XSTREAM_STORE"); r != "" {
		return r
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "xstream")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "xstream")
	}
	return filepath.Join(home, ".local", "share", "xstream")
}

// Store is a store root.
type Store struct {
	root string
}

var _ domain.Backend = (*Store)(nil)

// Open opens (creating if needed) the store at root; "" means
// DefaultRoot().
func Open(root string) (*Store, error) {
	if root == "" {
		root = DefaultRoot()
	}
	for _, d := range []string{root, filepath.Join(root, dataDir), filepath.Join(root, lockDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	return &Store{root: root}, nil
}

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

// ErrBadName matches CheckName's errors.
var ErrBadName = errors.New("store: invalid domain name")

type badName string

func (n badName) Error() string {
	return fmt.Sprintf("invalid domain name %q: use up to 64 letters, digits, '.', '_' and '-', not starting with '.' or '-'", string(n))
}
func (badName) Is(target error) bool { return target == ErrBadName }

// CheckName reports whether name can name a domain.
func CheckName(name string) error {
	if len(name) == 0 || len(name) > 64 || name[0] == '.' || name[0] == '-' {
		return badName(name)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return badName(name)
		}
	}
	return nil
}

func (s *Store) dir(name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	target, err := os.Readlink(filepath.Join(s.root, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %s", domain.ErrNotFound, name)
	}
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, target), nil
}

// Exists reports whether a domain of that name exists.
func (s *Store) Exists(name string) bool {
	_, err := s.dir(name)
	return err == nil
}

// Has reports whether the store at root ("" for the default) holds a
// domain of that name, without creating the store.
func Has(root, name string) bool {
	if root == "" {
		root = DefaultRoot()
	}
	return (&Store{root: root}).Exists(name)
}

// List returns the stored domains, by name.
func (s *Store) List() ([]domain.Info, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, err
	}
	var out []domain.Info
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		d, err := s.dir(e.Name())
		if err != nil {
			continue
		}
		info, err := readInfo(d)
		if err != nil {
			continue
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Destroy removes a domain.
func (s *Store) Destroy(name string) error {
	unlock, err := s.lock(name)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := s.dir(name); err != nil { // not found, or a bad name
		return err
	}
	if err := os.Remove(filepath.Join(s.root, name)); err != nil {
		return err
	}
	// The link's removal must be on disk before the data goes: after a
	// crash, a link to a half-removed copy would be a broken domain.
	if err := syncDir(s.root); err != nil {
		return fmt.Errorf("store: %s is removed from the store, but its directory could not be synced (%w); its data stays until the next writer or destroy of %s removes it", name, err, name)
	}
	return s.removeLeftovers(name) // its copy among them: no link names it now
}

// removeLeftovers removes, under name's lock, every copy of name's in the
// data directory but the one its link names: what a writer or a destroy
// that crashed left, temporary or committed (a crash between the link's
// swap and the old copy's removal leaves a whole domain behind). It
// returns the first error.
func (s *Store) removeLeftovers(name string) error {
	current := ""
	if target, err := os.Readlink(filepath.Join(s.root, name)); err == nil {
		current = filepath.Base(target)
	}
	ents, err := os.ReadDir(filepath.Join(s.root, dataDir))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() != current && isCopyOf(e.Name(), name) {
			if rerr := os.RemoveAll(filepath.Join(s.root, dataDir, e.Name())); err == nil {
				err = rerr
			}
		}
	}
	return err
}

// lock takes the writer lock of name, or fails at once with ErrLocked.
func (s *Store) lock(name string) (func(), error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	p := filepath.Join(s.root, lockDir, name)
	// The holder removes the lock file before it lets go, so that lock
	// files do not pile up; a writer that locked a file removed
	// meanwhile holds nothing, and tries again with a new one.
	for {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%w: %s (another xrestore or xdomain is writing it)", domain.ErrLocked, name)
			}
			return nil, err
		}
		held, err1 := f.Stat()
		named, err2 := os.Stat(p)
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return func() {
				os.Remove(p)
				f.Close()
			}, nil
		}
		f.Close()
	}
}

func readInfo(dir string) (domain.Info, error) {
	var info domain.Info
	b, err := os.ReadFile(filepath.Join(dir, "info.json"))
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("store: %s/info.json: %w", dir, err)
	}
	if info.Config, err = os.ReadFile(filepath.Join(dir, "config")); err != nil {
		return info, err
	}
	return info, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return syncFile(d)
}

// The syncs and renames of a commit, which must come in their order:
// variables, so that a test can watch the order.
var (
	syncFile   = (*os.File).Sync
	renamePath = os.Rename
)

// suffixBytes is how many random octets randomSuffix writes, in hex.
const suffixBytes = 6

func randomSuffix() string {
	var b [suffixBytes]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// domainFiles are the open files of a stored domain.
type domainFiles struct {
	types, memory *os.File
}

// Open returns a stored domain to save.
func (s *Store) Open(name string) (domain.Source, error) {
	for try := 1; ; try++ {
		src, err := s.open(name)
		// A writer that replaced the domain meanwhile removed the copy
		// being opened: open the new one.
		if errors.Is(err, fs.ErrNotExist) && try < 3 && s.Exists(name) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return src, nil
	}
}

// open opens every file of name's current copy at once, so that the
// source reads one copy whatever a writer of the name does after.
func (s *Store) open(name string) (_ *source, err error) {
	d, err := s.dir(name)
	if err != nil {
		return nil, err
	}
	src := &source{dir: d}
	defer func() {
		if err != nil {
			src.Close()
		}
	}()
	if src.types, err = os.Open(filepath.Join(d, "types")); err != nil {
		return nil, err
	}
	if src.memory, err = os.Open(filepath.Join(d, "memory")); err != nil {
		return nil, err
	}
	if src.records, err = os.Open(filepath.Join(d, "records")); err != nil {
		return nil, err
	}
	if src.info, err = readInfo(d); err != nil {
		return nil, err
	}
	return src, nil
}

type source struct {
	dir     string
	info    domain.Info
	records *os.File
	domainFiles
	tbuf []byte
}

func (s *source) Info() domain.Info { return s.info }
func (s *source) Pause() error      { return nil }
func (s *source) Resume() error     { return nil }

func (s *source) Close() error {
	var err error
	for _, f := range []*os.File{s.types, s.records, s.memory} {
		if f != nil {
			err = f.Close()
		}
	}
	return err
}

func (s *source) Records() ([]domain.Record, error) {
	if _, err := s.records.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return readRecords(s.records)
}

// MemoryFile returns the memory file: pfn p's page at p<<PageShift.
func (s *source) MemoryFile() *os.File { return s.memory }

// PageTypes fills types for the pfns from start on, reading no page data.
func (s *source) PageTypes(start uint64, types []stream.PageType) error {
	tb, err := s.readTypes(start, len(types))
	if err != nil {
		return err
	}
	for i, b := range tb {
		if b&typePresent == 0 {
			types[i] = domain.PageAbsent
		} else {
			types[i] = stream.PageType(b &^ typePresent)
		}
	}
	return nil
}

// readTypes returns the type octets of n pfns from start on, zero (not
// present) past the end of the types file.
func (s *source) readTypes(start uint64, n int) ([]byte, error) {
	if cap(s.tbuf) < n {
		s.tbuf = make([]byte, n)
	}
	tb := s.tbuf[:n]
	m, err := s.types.ReadAt(tb, int64(start))
	if err != nil && err != io.EOF {
		return nil, err
	}
	clear(tb[m:])
	return tb, nil
}

func (s *source) ReadPages(start uint64, types []stream.PageType, data []byte) (int, error) {
	tb, err := s.readTypes(start, len(types))
	if err != nil {
		return 0, err
	}
	filled := 0
	runStart, runSlot := -1, 0
	flush := func(end int) error {
		if runStart < 0 {
			return nil
		}
		cnt := end - runStart
		buf := data[runSlot*stream.PageSize : (runSlot+cnt)*stream.PageSize]
		k, err := s.memory.ReadAt(buf, int64(start+uint64(runStart))<<stream.PageShift)
		if err == io.EOF {
			clear(buf[k:]) // a trailing hole
			err = nil
		}
		runStart = -1
		return err
	}
	for i, b := range tb {
		if b&typePresent == 0 {
			types[i] = domain.PageAbsent
			if err := flush(i); err != nil {
				return 0, err
			}
			continue
		}
		t := stream.PageType(b &^ typePresent)
		types[i] = t
		if !t.HasData() {
			if err := flush(i); err != nil {
				return 0, err
			}
			continue
		}
		if runStart < 0 {
			runStart, runSlot = i, filled
		}
		filled++
	}
	return filled, flush(len(tb))
}

func readRecords(f *os.File) ([]domain.Record, error) {
	path := f.Name()
	if st, err := f.Stat(); err == nil && st.Size() > maxRecordsFile {
		return nil, fmt.Errorf("store: %s is %d octets, more than the %d a domain's records may take", path, st.Size(), maxRecordsFile)
	}
	r := bufio.NewReader(f)
	type key struct {
		layer domain.Layer
		typ   uint32
		sub   uint64
	}
	byKey := map[key]int{}
	var out []domain.Record
	for {
		var h [16]byte
		if _, err := io.ReadFull(r, h[:]); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("store: %s: %w", path, err)
		}
		n := binary.LittleEndian.Uint64(h[8:])
		if n > stream.MaxRecordLength {
			return nil, fmt.Errorf("store: %s: record of %d octets", path, n)
		}
		body := make([]byte, (n+7)&^7)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, fmt.Errorf("store: %s: %w", path, err)
		}
		rec := domain.Record{Layer: domain.Layer(binary.LittleEndian.Uint32(h[:])), Type: binary.LittleEndian.Uint32(h[4:]), Body: body[:n]}
		sub, err := rec.Key()
		if err != nil {
			return nil, err
		}
		k := key{rec.Layer, rec.Type, sub}
		if i, ok := byKey[k]; ok {
			out[i] = rec
			continue
		}
		byKey[k] = len(out)
		out = append(out, rec)
	}
	return out, nil
}
