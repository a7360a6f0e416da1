package main

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/internal/gen"
	"github.com/xstream/xstream/lib/stream"
)

// parseOptions turns the flags into gen.Options.
func parseOptions(c *cli.Context) (gen.Options, error) {
	if err := cmdutil.AtLeastOne(c, "vcpus", "batch"); err != nil {
		return gen.Options{}, err
	}
	o := gen.Options{
		VCPUs:       c.Int("vcpus"),
		Fill:        gen.Fill(c.String("fill")),
		Seed:        c.Int64("seed"),
		Format:      c.String("format"),
		Batch:       c.Int("batch"),
		Version:     uint32(c.Uint("image-version")),
		Checkpoints: c.Int("checkpoints"),
		Name:        c.String("name"),
	}
	switch c.String("type") {
	case "pv":
		o.Type = stream.DomainX86PV
	case "hvm":
		o.Type = stream.DomainX86HVM
	default:
		return o, cmdutil.Usagef("--type %q: want pv or hvm", c.String("type"))
	}
	switch {
	case c.IsSet("pages") && c.IsSet("memory"):
		return o, cmdutil.Usagef("--pages and --memory say the same thing; give one")
	case c.IsSet("pages"):
		o.Pages = c.Int("pages")
		if o.Pages < 1 {
			return o, cmdutil.Usagef("--pages %d: want at least 1", o.Pages)
		}
	default:
		size, err := cmdutil.ParseSize(c.String("memory"))
		if err != nil {
			return o, cmdutil.Usagef("--memory: %v", err)
		}
		if size < stream.PageSize || size/stream.PageSize > gen.MaxPages {
			return o, cmdutil.Usagef("--memory %s: want 4KiB to %dGiB", c.String("memory"), gen.MaxPages/(1<<18))
		}
		o.Pages = int(size / stream.PageSize)
	}
	if c.Bool("big-endian") {
		o.ByteOrder = binary.BigEndian
	}
	if h := c.String("hole"); h != "" {
		hole, err := parseHole(h)
		if err != nil {
			return o, cmdutil.Usagef("--hole: %v", err)
		}
		o.Hole = hole
	}
	return o, nil
}

// parseHole reads "none" or START+LEN.
func parseHole(s string) (*gen.Hole, error) {
	if s == "none" {
		return &gen.Hole{}, nil
	}
	start, n, ok := strings.Cut(s, "+")
	if !ok {
		return nil, fmt.Errorf("%q: want START+LEN, such as 0xa0+0x20, or none", s)
	}
	a, err1 := strconv.ParseUint(start, 0, 64)
	b, err2 := strconv.ParseUint(n, 0, 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%q: want START+LEN, such as 0xa0+0x20, or none", s)
	}
	return &gen.Hole{Start: a, Len: b}, nil
}

// run writes the stream of the domain opts describe to output ("" or
// "-" for standard output).
func run(opts gen.Options, output string) error {
	d, err := gen.New(opts)
	if err != nil {
		return &cmdutil.UsageError{Err: err}
	}
	out, err := cmdutil.CreateOutput(output)
	if err != nil {
		return err
	}
	if err := d.Write(out); err != nil {
		out.Abort()
		return err
	}
	return out.Commit()
}
