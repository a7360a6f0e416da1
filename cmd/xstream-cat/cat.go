package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/lib/compress"
	"github.com/xstream/xstream/lib/digest"
	"github.com/xstream/xstream/lib/inspect"
	"github.com/xstream/xstream/lib/legacy"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/upgrade"
)

type options struct {
	input  string
	json   bool
	verify bool
	stats  bool
	digest bool
	quiet  bool
	notes  io.Writer    // standard error, for notes; nil for none
	width  int          // legacy input: the toolstack width, 0 to detect
	guest  legacy.Guest // legacy input: the guest type
}

// run reads the stream in r and writes the requested report to w.
func run(opts options, r io.Reader, w io.Writer) error {
	out := bufio.NewWriterSize(w, 64<<10)
	err := walk(opts, r, out)
	if err != nil && opts.verify && opts.json && !opts.quiet && cmdutil.Code(err) == cmdutil.ExitInvalid {
		// A script reading the JSON learns of an invalid stream there
		// too: where, and why (the message is also on stderr).
		obj := map[string]any{"valid": false, "error": err.Error()}
		var fe *stream.FormatError
		if errors.As(err, &fe) {
			layer := fe.Layer
			switch {
			case layer == "" && fe.Type == "input":
				layer = "input" // what the input is, before any layer
			case layer == "":
				layer = "libxc"
			}
			obj["offset"], obj["layer"], obj["what"] = fe.Offset, layer, fe.Type
			if fe.Index >= 0 {
				obj["index"] = fe.Index
			}
		}
		json.NewEncoder(out).Encode(obj)
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	return err
}

func walk(opts options, r io.Reader, out *bufio.Writer) (err error) {
	// Compressed input is decompressed here, at the edge.
	in, err := sniff.Open(r)
	if err != nil {
		return err
	}
	defer in.Close()
	// A legacy stream is shown (and verified) as the v3 stream it
	// upgrades to; the legacy reader checks its own structure on the way,
	// and its errors, which name the legacy input's offsets, come first.
	// A listing and --verify show what xstream-upgrade makes of it (by
	// default, as Xen's converter does); --digest and --stats, which
	// tell of the domain, upgrade it as xrestore does (libxl framing,
	// keeping libxl's toolstack data), so that they agree with the
	// domain xrestore stores.
	uo := &upgrade.Options{LegacyOnly: true, Width: opts.width, Guest: opts.guest}
	if opts.digest || opts.stats {
		uo.Format, uo.LenientToolstack = upgrade.FormatLibxl, true
	}
	up, uinfo, err := upgrade.Open(in.Source, uo)
	if err != nil {
		return err
	}
	defer up.Close()
	if uinfo.Legacy {
		defer func() {
			if uerr := up.Err(); uerr != nil {
				err = uerr
			} else if err != nil {
				err = fmt.Errorf("in the upgraded stream: %w", err)
			}
		}()
		if opts.notes != nil && !opts.verify && !opts.stats && !opts.digest {
			fmt.Fprintf(opts.notes, "xstream-cat: %v; showing the upgraded stream\n", uinfo)
		}
	}
	// Listing and verifying look at the structure only: the pages are
	// skipped, not read (seeked over in a file, dropped in the kernel from
	// a pipe; read after all where CHECKSUM records need them).
	skip := !opts.stats && !opts.digest
	// Every mode verifies: a listing, statistics or a digest of a stream
	// that breaks the rules ends at the first error, with exit status 3.
	wk, err := sniff.NewWalker(up, &sniff.Options{Verify: true, SkipPageData: skip})
	if err != nil {
		return err
	}
	list := !opts.verify && !opts.stats && !opts.digest
	var (
		st    *inspect.Stats
		dg    *digest.Digester
		enc   = json.NewEncoder(out)
		count int
		layer = map[sniff.Layer]bool{}
	)
	if opts.stats {
		format := in.String()
		if uinfo.Legacy {
			format = fmt.Sprintf("legacy (%v), upgraded to %s", uinfo.Layout, wk.Info())
			if in.Compression != compress.None {
				format += fmt.Sprintf(", %v-compressed", in.Compression)
			}
		}
		st = inspect.NewStats(format)
	}
	if opts.digest {
		dg = digest.New()
		defer dg.Close()
	}
	for {
		it, err := wk.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		count++
		layer[it.Layer] = true
		if list {
			if err := printItem(opts, it, out, enc); err != nil {
				return err
			}
		}
		if st != nil {
			if err := st.Add(it); err != nil {
				return it.Error(err)
			}
		}
		if dg != nil {
			if err := dg.Add(it); err != nil {
				return it.Error(err)
			}
		}
	}
	if st != nil {
		st.Finish()
		if opts.json {
			if err := enc.Encode(st); err != nil {
				return err
			}
		} else {
			printStats(st, out)
		}
	}
	if dg != nil {
		sum, err := dg.Sum()
		if err != nil {
			return err
		}
		if opts.json {
			if err := enc.Encode(map[string]any{"digest": sum, "pages": dg.Pages()}); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(out, "%s\n", sum)
		}
	}
	if opts.verify && !opts.quiet {
		framing := ""
		for _, l := range []sniff.Layer{sniff.LayerXL, sniff.LayerLibxl, sniff.LayerLibxc, sniff.LayerQemu} {
			if layer[l] {
				if framing != "" {
					framing += "+"
				}
				framing += string(l)
			}
		}
		sums, covered := wk.Checksums()
		if opts.json {
			obj := map[string]any{"valid": true, "format": framing, "items": count, "bytes": wk.Offset(),
				"compression": in.Compression.String(), "checksums": sums, "checksummed_bytes": covered}
			if uinfo.Legacy {
				obj["legacy"] = map[string]any{"width": uinfo.Layout.Width, "guest": uinfo.Layout.Guest.String()}
			}
			return enc.Encode(obj)
		}
		if uinfo.Legacy {
			fmt.Fprintf(out, "valid: legacy stream (%v); upgraded: %s stream, %d records and headers, %d octets",
				uinfo.Layout, framing, count, wk.Offset())
		} else {
			fmt.Fprintf(out, "valid: %s stream, %d records and headers, %d octets", framing, count, wk.Offset())
		}
		if in.Compression != compress.None {
			fmt.Fprintf(out, ", %v-compressed", in.Compression)
		}
		if sums > 0 {
			fmt.Fprintf(out, ", %d CHECKSUM records over %d octets", sums, covered)
		}
		fmt.Fprintln(out)
	}
	return nil
}

func printItem(opts options, it *sniff.Item, out *bufio.Writer, enc *json.Encoder) error {
	if opts.json {
		obj := inspect.Fields(it)
		obj["offset"] = it.Offset
		obj["layer"] = it.Layer
		obj["index"] = it.Index
		obj["type"] = it.Name()
		obj["length"] = it.Length()
		obj["size"] = it.Size
		return enc.Encode(obj)
	}
	out.WriteString(inspect.Line(it))
	return out.WriteByte('\n')
}

func printStats(st *inspect.Stats, out *bufio.Writer) {
	fmt.Fprintf(out, "format:          %s\n", st.Format)
	if st.DomainType != "" {
		fmt.Fprintf(out, "domain type:     %s\n", st.DomainType)
	}
	fmt.Fprintf(out, "stream size:     %d octets\n", st.Bytes)
	fmt.Fprintf(out, "records:\n")
	for _, r := range st.Records {
		fmt.Fprintf(out, "  %-5s %-24s %8d  %14d octets\n", r.Layer, r.Type, r.Count, r.Bytes)
	}
	fmt.Fprintf(out, "pages by type:\n")
	for _, t := range sortedKeys(st.PageTypes) {
		fmt.Fprintf(out, "  %-8s %10d\n", t, st.PageTypes[t])
	}
	fmt.Fprintf(out, "pages with data: %d\n", st.PagesWithData)
	fmt.Fprintf(out, "zero pages:      %d\n", st.ZeroPages)
	fmt.Fprintf(out, "distinct pfns:   %d\n", st.DistinctPFNs)
	fmt.Fprintf(out, "resent pages:    %d\n", st.ResentPages)
	fmt.Fprintf(out, "memory:          %d octets (%.1f MiB)\n", st.MemoryBytes, float64(st.MemoryBytes)/(1<<20))
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
