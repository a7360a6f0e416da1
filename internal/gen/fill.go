package gen

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
)

// Fill says how the content of ordinary guest pages is made.
type Fill string

// Fills.
const (
	// FillRealistic mixes zero pages (about 40%), pages repeated across
	// the domain (about 15%), text-like pages of ASCII words (about
	// 25%) and random pages (about 20%), in runs of a few pages the way
	// memory is used; page tables, the p2m, start info, GDT and ring
	// pages get content shaped like the real thing.
	FillRealistic Fill = "realistic"
	// FillZero makes every page zero, system pages included.
	FillZero Fill = "zero"
	// FillRandom makes every page random, system pages included.
	FillRandom Fill = "random"
)

// Shares of the page classes in realistic memory, in percent.
const (
	pctZero   = 40
	pctRepeat = 15
	pctText   = 25
	// the rest (20%) is random

	// runShift groups pfns into runs of 8 that share a class; one page
	// in runDeviate leaves its run's class for one of its own.
	runShift   = 3
	runDeviate = 8

	// templates is how many distinct repeated pages a domain has.
	templates = 8
)

type pageClass uint8

const (
	classZero pageClass = iota
	classRepeat
	classText
	classRandom
)

// mix is splitmix64's finaliser: a cheap, well-spread hash of x.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// hash combines the seed with up to three values.
func hash(seed int64, a, b, c uint64) uint64 {
	return mix(mix(mix(uint64(seed)^a)^b) ^ c)
}

// Salts keep the hashes of different decisions apart.
const (
	saltClass uint64 = iota + 1
	saltPage
	saltTemplate
	saltDirty
	saltBlob
)

// filler makes page contents. It is read-only after newFiller, so one
// filler may serve several goroutines.
type filler struct {
	fill      Fill
	seed      int64
	templates [templates][]byte
}

func newFiller(fill Fill, seed int64) (*filler, error) {
	switch fill {
	case FillRealistic, FillZero, FillRandom:
	default:
		return nil, fmt.Errorf("gen: unknown fill %q (want realistic, zero or random)", fill)
	}
	f := &filler{fill: fill, seed: seed}
	if fill == FillRealistic {
		for i := range f.templates {
			f.templates[i] = make([]byte, pageSize)
			f.template(f.templates[i], i)
		}
	}
	return f, nil
}

// class picks the class of an ordinary page.
func (f *filler) class(pfn uint64, round int) pageClass {
	h := hash(f.seed, saltClass, pfn>>runShift, uint64(round))
	if p := hash(f.seed, saltPage, pfn, uint64(round)); p%runDeviate == 0 {
		h = p >> 8
	}
	switch pct := h % 100; {
	case pct < pctZero:
		return classZero
	case pct < pctZero+pctRepeat:
		return classRepeat
	case pct < pctZero+pctRepeat+pctText:
		return classText
	}
	return classRandom
}

// ordinary fills p with the content of an ordinary page: one with no
// role the domain's layout knows about.
func (f *filler) ordinary(p []byte, pfn uint64, round int) {
	switch f.fill {
	case FillZero:
		clear(p)
		return
	case FillRandom:
		randomPage(p, hash(f.seed, saltPage, pfn, uint64(round)))
		return
	}
	h := hash(f.seed, saltPage, pfn, uint64(round))
	switch f.class(pfn, round) {
	case classZero:
		clear(p)
	case classRepeat:
		copy(p, f.templates[h%templates])
	case classText:
		textPage(p, h)
	case classRandom:
		randomPage(p, h)
	}
}

// template makes repeated page number i: the kind of page that many
// guests hold many copies of.
func (f *filler) template(p []byte, i int) {
	h := hash(f.seed, saltTemplate, uint64(i), 0)
	switch i {
	case 0: // freshly poisoned or erased memory
		for j := range p {
			p[j] = 0xff
		}
	case 1: // int3 padding between functions
		for j := range p {
			p[j] = 0xcc
		}
	case 2: // an array of one 64-octet structure: a slab of free objects
		var obj [64]byte
		randomBytes(obj[:], h)
		clear(obj[16:40])
		for j := 0; j < len(p); j += len(obj) {
			copy(p[j:], obj[:])
		}
	case 3: // a page of one repeated line
		var line []byte
		r := rand.NewPCG(h, 0)
		for len(line) < 60 {
			line = append(line, vocabulary[r.Uint64()%uint64(len(vocabulary))]...)
			line = append(line, ' ')
		}
		line[len(line)-1] = '\n'
		for j := 0; j < len(p); j += len(line) {
			copy(p[j:], line)
		}
	default: // a shared binary page: the same library page in several places
		randomPage(p, h)
	}
}

// randomPage fills p with pseudo-random octets from seed h.
func randomPage(p []byte, h uint64) { randomBytes(p, h) }

func randomBytes(p []byte, h uint64) {
	r := rand.NewPCG(h, h^0x5bd1e995)
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], r.Uint64())
	}
	if i < len(p) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.Uint64())
		copy(p[i:], b[:])
	}
}

// textPage fills p with lines of ASCII words, some of them kernel-log
// lines; a quarter of the pages stop part way and are zero after.
func textPage(p []byte, h uint64) {
	r := rand.NewPCG(h, ^h)
	end := len(p)
	if v := r.Uint64(); v%4 == 0 {
		end = int(v >> 8 % uint64(len(p)))
	}
	n := 0
	var stamp [16]byte
	for n < end {
		if v := r.Uint64(); v%5 == 0 {
			n += copy(p[n:end], logStamp(stamp[:], v))
		}
		words := 4 + int(r.Uint64()%11)
		for i := 0; i < words && n < end; i++ {
			if i > 0 {
				n += copy(p[n:end], " ")
			}
			n += copy(p[n:end], vocabulary[r.Uint64()%uint64(len(vocabulary))])
		}
		n += copy(p[n:end], "\n")
	}
	clear(p[n:])
}

// logStamp formats a kernel-log time stamp "[sssss.uuuuuu] " from v
// into b (16 octets).
func logStamp(b []byte, v uint64) []byte {
	sec, usec := v>>8%100000, v>>32%1000000
	b[0], b[13], b[14] = '[', ']', ' '
	for i := 5; i >= 1; i-- {
		b[i] = byte('0' + sec%10)
		sec /= 10
	}
	b[6] = '.'
	for i := 12; i >= 7; i-- {
		b[i] = byte('0' + usec%10)
		usec /= 10
	}
	return b[:15]
}

// vocabulary is the words of text pages.
var vocabulary = []string{
	"the", "of", "and", "to", "a", "in", "is", "for", "on", "with", "not", "at",
	"kernel", "module", "device", "driver", "memory", "page", "cache", "block",
	"file", "path", "usr", "lib", "bin", "etc", "var", "log", "root", "home",
	"init", "systemd", "service", "started", "stopped", "failed", "error",
	"warning", "info", "debug", "network", "eth0", "link", "up", "down",
	"xen", "domain", "vcpu", "event", "channel", "grant", "table", "ring",
	"read", "write", "open", "close", "mount", "disk", "xvda", "xvda1", "ext4",
	"journal", "user", "session", "login", "ssh", "accepted", "key", "port",
	"time", "clock", "tsc", "irq", "cpu0", "cpu1", "console", "hvc0", "tty",
	"config", "value", "true", "false", "null", "0", "1", "42", "4096",
	"localhost", "example.com", "GET", "/index.html", "HTTP/1.1", "200", "OK",
}
