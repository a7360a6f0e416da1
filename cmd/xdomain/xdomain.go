package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/internal/gen"
	"github.com/xstream/xstream/lib/digest"
	"github.com/xstream/xstream/lib/domain"
	"github.com/xstream/xstream/lib/restore"
	"github.com/xstream/xstream/lib/store"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/xen"
)

func openStore(root string) (*store.Store, error) { return store.Open(root) }

type createOptions struct {
	typ, memory, fill string
	vcpus             int
	seed              int64
	force             bool
}

// create generates the domain's stream and restores it: the same path a
// saved domain takes into the store.
func create(root, name string, o createOptions) error {
	if err := store.CheckName(name); err != nil {
		return cmdutil.Usagef("%v", err)
	}
	size, err := cmdutil.ParseSize(o.memory)
	if err != nil {
		return cmdutil.Usagef("--memory: %v", err)
	}
	if size < stream.PageSize {
		return cmdutil.Usagef("--memory %s is less than one page", o.memory)
	}
	if size/stream.PageSize > gen.MaxPages { // before int, which is 32 bits on 386
		return cmdutil.Usagef("--memory %s: more than the %s a synthetic domain may have", o.memory, cmdutil.Size(gen.MaxPages*stream.PageSize))
	}
	// No emulator xenstore data: a domain every format can carry whole
	// (bare libxc has a place for the device model's context, the legacy
	// qemu tail, but none for its xenstore keys).
	opts := gen.Options{Pages: int(size / stream.PageSize), VCPUs: o.vcpus, Fill: gen.Fill(o.fill), Seed: o.seed, Name: name, NoXenstoreData: true}
	switch o.typ {
	case "pv":
		opts.Type = stream.DomainX86PV
	case "hvm":
		opts.Type = stream.DomainX86HVM
	default:
		return cmdutil.Usagef("--type %q: want pv or hvm", o.typ)
	}
	d, err := gen.New(opts)
	if err != nil {
		return cmdutil.Usagef("%v", err)
	}
	st, err := openStore(root)
	if err != nil {
		return err
	}
	// A signal stops the stream; the half-made domain is removed.
	ctx, stop := cmdutil.SignalContext()
	defer stop()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(d.Write(pw)) }()
	stopPipe := context.AfterFunc(ctx, func() { pw.CloseWithError(context.Canceled) })
	info, err := restore.Restore(pr, st, restore.Options{Name: name, Replace: o.force})
	stopPipe()
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil && ctx.Err() != nil {
		return errors.New("interrupted; no domain was created")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "xdomain: created %s\n", restore.Describe(info))
	return nil
}

func list(root, backend string, asJSON bool) error {
	be, err := cmdutil.ChooseBackend(backend, false)
	if err != nil {
		return err
	}
	var doms []xen.Domain
	if be.Xen != nil {
		if doms, err = be.Xen.List(context.Background()); err != nil {
			return err
		}
	}
	var infos []domain.Info
	if be.Xen == nil || be.Auto {
		st, err := openStore(root)
		if err != nil {
			return err
		}
		if infos, err = st.List(); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(os.Stdout)
	if asJSON {
		for _, d := range doms {
			obj := map[string]any{"name": d.Name, "backend": "xen", "domid": d.ID, "type": xenType(d),
				"memory_bytes": d.MemoryMiB << 20, "vcpus": d.VCPUs, "state": d.Describe()}
			if err := enc.Encode(obj); err != nil {
				return err
			}
		}
		for _, in := range infos {
			obj := infoJSON(in)
			if be.Xen != nil {
				obj["backend"] = "store"
			}
			if err := enc.Encode(obj); err != nil {
				return err
			}
		}
		return nil
	}
	if be.Xen == nil {
		if len(infos) > 0 {
			fmt.Printf("%-24s %-8s %10s %6s\n", "NAME", "TYPE", "MEMORY", "VCPUS")
		}
		for _, in := range infos {
			fmt.Printf("%-24s %-8s %10s %6d\n", in.Name, in.Type, cmdutil.Size(int64(in.Pages)*stream.PageSize), in.VCPUs)
		}
		return nil
	}
	// On a Xen host: where each domain lives, and Xen's id and state.
	fmt.Printf("%-24s %-8s %10s %6s  %-7s %5s  %s\n", "NAME", "TYPE", "MEMORY", "VCPUS", "BACKEND", "ID", "STATE")
	for _, d := range doms {
		fmt.Printf("%-24s %-8s %10s %6d  %-7s %5d  %s\n", d.Name, xenType(d), cmdutil.Size(d.MemoryMiB<<20), d.VCPUs, "xen", d.ID, d.Describe())
	}
	for _, in := range infos {
		fmt.Printf("%-24s %-8s %10s %6d  %-7s %5s  %s\n", in.Name, in.Type, cmdutil.Size(int64(in.Pages)*stream.PageSize), in.VCPUs, "store", "-", "stored")
	}
	return nil
}

// xenType names a Xen domain's guest type as the store names its types.
func xenType(d xen.Domain) string {
	if d.Type == "" {
		return "x86 ?"
	}
	return "x86 " + strings.ToUpper(d.Type)
}

func infoJSON(in domain.Info) map[string]any {
	return map[string]any{
		"name": in.Name, "type": in.Type.String(), "pages": in.Pages, "pfns": in.PFNs,
		"memory_bytes": in.Pages * stream.PageSize, "vcpus": in.VCPUs,
		"xen_major": in.XenMajor, "xen_minor": in.XenMinor, "config_length": len(in.Config),
	}
}

func info(root, name string, asJSON bool) error {
	st, err := openStore(root)
	if err != nil {
		return err
	}
	src, err := st.Open(name)
	if err != nil {
		return err
	}
	defer src.Close()
	in := src.Info()
	recs, err := src.Records()
	if err != nil {
		return err
	}
	if asJSON {
		obj := infoJSON(in)
		obj["records"] = len(recs)
		return json.NewEncoder(os.Stdout).Encode(obj)
	}
	fmt.Printf("name:     %s\ntype:     %v\nmemory:   %s (%d pages of %d pfns)\nvcpus:    %d\n",
		in.Name, in.Type, cmdutil.Size(int64(in.Pages)*stream.PageSize), in.Pages, in.PFNs, in.VCPUs)
	if in.XenMajor != 0 {
		fmt.Printf("xen:      %d.%d\n", in.XenMajor, in.XenMinor)
	}
	fmt.Printf("config:   %d octets\nrecords:\n", len(in.Config))
	for _, r := range recs {
		name := stream.RecordType(r.Type).String()
		if r.Layer == domain.Libxl {
			name = "libxl " + map[uint32]string{2: "EMULATOR_XENSTORE_DATA", 3: "EMULATOR_CONTEXT"}[r.Type]
		}
		fmt.Printf("  %-28s %8d octets\n", name, len(r.Body))
	}
	return nil
}

func digestCmd(root, name string) error {
	st, err := openStore(root)
	if err != nil {
		return err
	}
	src, err := st.Open(name)
	if err != nil {
		return err
	}
	defer src.Close()
	d, err := digest.Source(src)
	if err != nil {
		return err
	}
	fmt.Println(d)
	return nil
}

func destroy(root, name string) error {
	st, err := openStore(root)
	if err != nil {
		return err
	}
	return st.Destroy(name)
}
