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
only once the whole stream has arrived and checked out: an invalid,
truncated or cut-off stream fails (exit 3, or 1 for I/O) and leaves nothing behind, and an
existing domain is replaced, atomically, only with --force.

The name comes from the xl config in the stream unless --name is given.

On a Xen host (dom0 with the xl toolstack) the domain is restored into
Xen through 'xl restore' (xl, libxl and libxc streams so far): it is
re-framed as xl reads it (a libxl or bare libxc stream needs --config, the domain's
xl config file). The new domain is unpaused only when the whole stream
has arrived and checked out; a restore that fails before then leaves no
domain. While a domain of the same name still runs (xsave vm | xrestore on
one host) the new one is built as NAME--incoming and renamed once the old
one has gone; --force replaces a domain that stays. A failure after the new
domain is complete leaves it paused as NAME--incoming, and says so: it may
be the only copy. --store-only restores into the store instead.

   ssh host xsave vm | xrestore --name vm-copy
   xrestore --force < /backups/vm.xl
   xrestore --config /etc/xen/vm.cfg vm.libxc   into Xen, from a bare libxc stream

` + cmdutil.ExitStatusHelp,
		Flags: append([]cli.Flag{
			cmdutil.StoreFlag(),
			cmdutil.BackendFlag(),
			&cli.BoolFlag{Name: "store-only", Usage: "restore into the store even on a Xen host (same as --backend store)"},
			&cli.StringFlag{Name: "config", Usage: "on Xen, the domain's xl config `FILE` (replaces the stream's; needed for a stream without an xl header)"},
			&cli.BoolFlag{Name: "paused", Usage: "on Xen, leave the restored domain paused"},
			&cli.StringFlag{Name: "name", Aliases: []string{"n"}, Usage: "name of the new domain (default: from the stream's xl config)"},
			&cli.BoolFlag{Name: "force", Usage: "replace an existing domain of that name"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress or summary on stderr"},
			cmdutil.VerboseFlag(),
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

				backend:   c.String("backend"),
				storeOnly: c.Bool("store-only"),
				config:    c.String("config"),
				paused:    c.Bool("paused"),
				verbose:   c.Bool("verbose"),
			})
		},
	}
}
