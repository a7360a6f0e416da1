// Command xstream-gen writes the migration stream of a synthetic domain.
package main

import (
	"github.com/urfave/cli/v2"

	"github.com/xstream/xstream/internal/cmdutil"
)

func main() {
	cmdutil.Run(newApp())
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "xstream-gen",
		Usage: "write the migration stream of a synthetic domain",
		Description: `Writes the stream of a made-up x86 PV or HVM domain, as Xen's saver would:
an xl save file (the default), a libxl v2 stream or a bare libxc stream.
The same options and seed give the same octets on every machine, and
streams that differ only in framing, batch size or byte order carry the
same domain (xstream-cat --digest agrees).

   --fill realistic  zero, repeated, text and random pages with page
                     tables, rings and vCPU state that look the part
   --fill zero       every page zero
   --fill random     every page random

The stream goes to standard output (never to a terminal) or to -o FILE,
which appears only once complete.

` + cmdutil.ExitStatusHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "type", Value: "pv", Usage: "domain type: pv or hvm"},
			&cli.StringFlag{Name: "memory", Aliases: []string{"m"}, Value: "64MiB", Usage: "guest memory, such as 512MiB or 4GiB (K, M, G with or without iB)"},
			&cli.IntFlag{Name: "pages", Usage: "guest memory in 4 KiB pages, instead of --memory"},
			&cli.IntFlag{Name: "vcpus", Value: 1, Usage: "number of vCPUs"},
			&cli.StringFlag{Name: "fill", Value: "realistic", Usage: "page contents: realistic, zero or random"},
			&cli.Int64Flag{Name: "seed", Usage: "seed; another seed makes another domain of the same shape"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "xl", Usage: "framing: xl, libxl or libxc"},
			&cli.BoolFlag{Name: "big-endian", Usage: "write a big-endian stream (Xen's x86 tools write little-endian)"},
			&cli.IntFlag{Name: "batch", Value: 1024, Usage: "pfns per PAGE_DATA record, 1 to 1024"},
			&cli.UintFlag{Name: "image-version", Value: 3, Usage: "libxc image version: 3, or 2 (no CPU policies, no STATIC_DATA_END)"},
			&cli.IntFlag{Name: "checkpoints", Usage: "checkpoints before the final round, each resending dirtied pages"},
			&cli.StringFlag{Name: "hole", Usage: "HVM: pfns without memory as START+LEN (hexadecimal with 0x), or none; default the VGA hole 0xa0+0x20"},
			&cli.StringFlag{Name: "name", Usage: "domain name in the xl config (default gen-pv or gen-hvm)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` instead of standard output"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cmdutil.Usagef("no arguments expected, got %q", c.Args().First())
			}
			opts, err := parseOptions(c)
			if err != nil {
				return err
			}
			return run(opts, c.String("output"))
		},
	}
}
