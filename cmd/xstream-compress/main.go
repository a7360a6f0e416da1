// Command xstream-compress compresses or decompresses a migration stream
// on a pipe, and can add CHECKSUM records to it.
package main

import (
	"github.com/urfave/cli/v2"

	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/lib/compress"
)

func main() {
	cmdutil.Run(newApp())
}

func newApp() *cli.App {
	return &cli.App{
		Name:      "xstream-compress",
		Usage:     "compress or decompress a Xen migration stream, zstd or lz4, in parallel",
		ArgsUsage: "[FILE|-]",
		Description: `A filter: reads FILE or standard input, writes standard output (or -o
FILE, atomically). It compresses with zstd (the default) or lz4 into
standard frames that 'zstd -d' and 'lz4 -d' read, a 4 MiB chunk per
frame, on all CPUs; -d decompresses either, whichever it finds. Every
xstream reader (xrestore, xstream-cat) also takes compressed input as it
is, so -d is for other tools.

   xsave vm | xstream-compress | ssh host xrestore
   xstream-compress -d < vm.xl.zst > vm.xl
   xstream-compress --checksum --none < vm.xl > vm-checked.xl

--checksum adds CHECKSUM records to the stream (docs/FORMAT.md §4),
replacing any it has, before compressing: xrestore and xstream-cat then
fail (exit 3) on any damage. The input must be a valid stream for that,
as it is or compressed (it is decompressed first).
Frames carry their content checksums, and a check frame of their own
octets, unless --no-frame-check.

` + cmdutil.ExitStatusHelp,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "zstd", Usage: "compress with zstd (the default)"},
			&cli.BoolFlag{Name: "lz4", Usage: "compress with lz4"},
			&cli.BoolFlag{Name: "none", Usage: "do not compress (with --checksum: only add checksums)"},
			&cli.IntFlag{Name: "level", Aliases: []string{"l"}, Value: compress.DefaultLevel, Usage: "compression `LEVEL`: zstd 1-22, in the library's five settings 1, 2, 3-5, 6-9 and 10-22 (levels within one compress alike); lz4 1-12, 1 and 2 its fast mode"},
			&cli.BoolFlag{Name: "decompress", Aliases: []string{"d"}, Usage: "decompress zstd or lz4 input"},
			&cli.BoolFlag{Name: "checksum", Usage: "add CHECKSUM records to the stream (replacing any)"},
			&cli.BoolFlag{Name: "no-frame-check", Usage: "leave out the frames' content checksums and check frames"},
			&cli.IntFlag{Name: "threads", Aliases: []string{"T"}, Usage: "`N` chunks compressed at once (0: one per CPU); with -d, N > 1 pipelines zstd decoding (0 and 1: one goroutine, the fastest)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` (atomically) instead of standard output"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return cmdutil.Usagef("one input at most, got %d", c.NArg())
			}
			if err := cmdutil.AtLeastOne(c, "level"); err != nil {
				return err
			}
			opts := options{
				level:      c.Int("level"),
				decompress: c.Bool("decompress"),
				checksum:   c.Bool("checksum"),
				noCheck:    c.Bool("no-frame-check"),
				threads:    c.Int("threads"),
				input:      c.Args().First(),
				output:     c.String("output"),
				codec:      compress.Zstd,
			}
			n := 0
			for name, codec := range map[string]compress.Codec{"zstd": compress.Zstd, "lz4": compress.LZ4, "none": compress.None} {
				if c.Bool(name) {
					opts.codec = codec
					n++
				}
			}
			if n > 1 {
				return cmdutil.Usagef("--zstd, --lz4 and --none exclude each other")
			}
			if opts.decompress && n > 0 {
				return cmdutil.Usagef("-d finds the codec in its input; give no --zstd, --lz4 or --none")
			}
			if opts.threads < 0 {
				return cmdutil.Usagef("--threads %d is negative", opts.threads)
			}
			return run(opts)
		},
	}
}
