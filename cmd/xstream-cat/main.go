// Command xstream-cat shows, verifies and summarises a migration stream.
package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/xstream/xstream/internal/cmdutil"
)

func main() {
	cmdutil.Run(newApp())
}

func newApp() *cli.App {
	return &cli.App{
		Name:      "xstream-cat",
		Usage:     "show, verify and summarise a Xen migration stream",
		ArgsUsage: "[FILE|-]",
		Description: `Reads an xl save file, a libxl v2 stream or a libxc v2/v3 stream (either
byte order; as it is, or compressed with zstd or lz4) from FILE or
standard input and prints one line per record: offset, layer, record
index, type, body length and a summary. Offsets are those of the
decompressed stream. Every mode checks the stream as --verify does
(and CHECKSUM records, if the stream has them): the output stops at the
first error, which names the record and its offset, with exit status 3.

A legacy (pre-v2) stream, 32- or 64-bit, PV or HVM, bare or behind an xl
header, is shown as the v3 stream xstream-upgrade makes of it (offsets are
the upgraded stream's; a note on standard error says so); --verify checks
the legacy structure on the way, and its errors name the legacy offsets.
--digest and --stats describe the domain xrestore would store from it
(upgraded to libxl framing, libxl's toolstack data kept).
-w and -g settle a legacy stream's layout when detection cannot (exit 2).

   --verify  checks every rule of Xen's verify-stream-v2 and more (record
             order, STATIC_DATA_END, page types, vCPU sizes, checkpoints,
             zero padding, limits); prints one line and exits 0 when valid,
             3 with the first error (offset and record) when not. Works on
             pipes, big-endian streams and streams with optional records.
   --stats   counts and bytes per record type, pages per type, zero pages,
             distinct pfns and the domain's memory size.
   --digest  the domain's content digest (docs/FORMAT.md): equal for two
             streams of the same domain whatever their framing or batching.

--verify, --stats and --digest combine; all run in one pass.

` + cmdutil.ExitStatusHelp,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON objects, one per line"},
			&cli.BoolFlag{Name: "verify", Usage: "check the stream; exit 3 at the first error"},
			&cli.BoolFlag{Name: "stats", Usage: "print statistics instead of records"},
			&cli.BoolFlag{Name: "digest", Usage: "print the domain's content digest"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "with --verify, print nothing; the exit status tells"},
		}, cmdutil.LegacyFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return cmdutil.Usagef("one input at most, got %d", c.NArg())
			}
			opts := options{
				input:  c.Args().First(),
				json:   c.Bool("json"),
				verify: c.Bool("verify"),
				stats:  c.Bool("stats"),
				digest: c.Bool("digest"),
				quiet:  c.Bool("quiet"),
				notes:  os.Stderr,
			}
			var err error
			if opts.width, opts.guest, err = cmdutil.LegacyOverrides(c); err != nil {
				return err
			}
			in, err := cmdutil.OpenInput(opts.input)
			if err != nil {
				return err
			}
			defer in.Close()
			return run(opts, in, os.Stdout)
		},
	}
}
