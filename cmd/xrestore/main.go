// Command xrestore reads a migration stream into a domain.
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
		Name:      "xrestore",
		Usage:     "read a Xen migration stream into a domain",
		ArgsUsage: "[FILE|-]",
		Description: `Reads a stream from FILE or standard input — an xl save file, a libxl v2
or libxc v2/v3 stream in either byte order, or a legacy (pre-v2) stream
of a 32- or 64-bit toolstack, upgraded on the fly; as it is or compressed
with zstd or lz4 — verifies every record (and the CHECKSUM records, if the
stream has them) on the way in, and stores the domain. The domain appears
only once the whole
stream has arrived and checked out: an invalid, truncated or cut-off
stream fails (exit 3, or 1 for I/O) and leaves nothing behind, and an
existing domain is replaced, atomically, only with --force.

The name comes from the xl config in the stream unless --name is given.

   ssh host xsave vm | xrestore --name vm-copy
   xrestore --force < /backups/vm.xl

` + cmdutil.ExitStatusHelp,
		Flags: append([]cli.Flag{
			cmdutil.StoreFlag(),
			&cli.StringFlag{Name: "name", Aliases: []string{"n"}, Usage: "name of the new domain (default: from the stream's xl config)"},
			&cli.BoolFlag{Name: "force", Usage: "replace an existing domain of that name"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress or summary on stderr"},
		}, cmdutil.LegacyFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return cmdutil.Usagef("one input at most, got %d", c.NArg())
			}
			width, guest, err := cmdutil.LegacyOverrides(c)
			if err != nil {
				return err
			}
			return run(options{
				width: width,
				guest: guest,
				store: c.String("store"),
				input: c.Args().First(),
				name:  c.String("name"),
				force: c.Bool("force"),
				quiet: c.Bool("quiet"),
			})
		},
	}
}
