// Command xsave writes a domain as a migration stream.
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
		Name:      "xsave",
		Usage:     "write a domain as a Xen migration stream",
		ArgsUsage: "NAME",
		Description: `Writes domain NAME to standard output, or with -o to FILE: the file is
written under a temporary name in the same directory, synced and renamed
into place only when complete, so a failed or killed save never replaces
the last good copy.

On a Xen host (dom0 with the xl toolstack) NAME is a running Xen domain,
saved through the toolstack ('xl save') and checked record by record on
its way; like 'xl save', xsave then stops the domain, but only once the
whole stream is out (and, with -o, synced). Until then the domain is
only paused: any failure, a closed pipe or Ctrl-C resumes it. --keep
leaves it running (a checkpoint, 'xl save -c'). A name Xen does not know
is looked up in the store; --backend chooses explicitly.

From the store, the default format is an xl save file (xl header with the
domain's config, libxl v2, libxc v3), as 'xl save' writes it; libxl and
libxc give the inner layers alone. Every populated page is sent, in
batches of up to 1024.

   xsave vm | ssh host xrestore            move a domain
   xsave -o /backups/vm.xl vm              a cron-friendly backup
   xsave --keep -o vm.xl vm                a checkpoint of a running Xen domain
   xsave --compress zstd -o vm.xl.zst vm   compressed, on all CPUs

--compress writes zstd or lz4 frames that the zstd and lz4 tools read as
well as every xstream reader. --checksum adds CHECKSUM records
(docs/FORMAT.md §4) so that xrestore and xstream-cat fail on any damage;
Xen's restorer skips them, but Xen's Python verifier rejects them, so
they are not written by default.

` + cmdutil.ExitStatusHelp,
		Flags: []cli.Flag{
			cmdutil.StoreFlag(),
			cmdutil.BackendFlag(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` (atomically) instead of standard output"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "xl", Usage: "stream framing: xl, libxl or libxc"},
			&cli.StringFlag{Name: "byte-order", Value: "native", Usage: "byte order of the records: little, big or native"},
			&cli.StringFlag{Name: "compress", Aliases: []string{"z"}, Value: "none", Usage: "compress with zstd or lz4 (none: as it is)"},
			&cli.IntFlag{Name: "level", Aliases: []string{"l"}, DefaultText: "1", Usage: "compression `LEVEL`: zstd 1-22, in the library's five settings 1, 2, 3-5, 6-9 and 10-22 (levels within one compress alike); lz4 1-12, 1 and 2 its fast mode"},
			&cli.BoolFlag{Name: "checksum", Usage: "add CHECKSUM records every 4 MiB"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress or summary on stderr"},
			&cli.BoolFlag{Name: "keep", Usage: "on Xen, leave the domain running: a checkpoint (xl save -c)"},
			cmdutil.VerboseFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cmdutil.Usagef("need exactly one domain NAME (see xdomain list)")
			}
			if err := cmdutil.AtLeastOne(c, "level"); err != nil {
				return err
			}
			return run(options{
				store:     c.String("store"),
				name:      c.Args().First(),
				output:    c.String("output"),
				format:    c.String("format"),
				byteOrder: c.String("byte-order"),
				compress:  c.String("compress"),
				level:     c.Int("level"),
				checksum:  c.Bool("checksum"),
				quiet:     c.Bool("quiet"),
				backend:   c.String("backend"),
				keep:      c.Bool("keep"),
				verbose:   c.Bool("verbose"),
			})
		},
	}
}
