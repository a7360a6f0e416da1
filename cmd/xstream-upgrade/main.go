// Command xstream-upgrade converts a legacy Xen save stream (from a 32- or
// 64-bit toolstack, PV or HVM) into a migration stream v3. It is a drop-in
// for Xen's convert-legacy-stream that needs none of its -w, -g or -x.
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
		Name:      "xstream-upgrade",
		Usage:     "convert a legacy Xen save stream into a migration stream v3",
		ArgsUsage: "[IN|-]",
		Description: `Reads a legacy (pre-v2) save stream from IN, -i IN or standard input and
writes it as a libxc migration stream v3 to -o OUT or standard output:
octet for octet what Xen's convert-legacy-stream writes, but without its
mandatory -w and -g. The toolstack width and the guest type are found from
the stream; an xl header is recognised by its magic; a stream that ends
after its libxc part needs no --skip-qemu. Streaming: memory is bounded by a
page batch, and pipes work at both ends.

   -f libxl  wraps the output in a libxl v2 stream, with libxl's toolstack
             data as EMULATOR_XENSTORE_DATA and the qemu tail as
             EMULATOR_CONTEXT (default libxc: the tail follows as it was).
   -w, -g    override detection; a value the stream contradicts is refused.
             If detection cannot tell (exit 2), they settle it.
   -x        asserts that an xl header is present (it is kept in the output,
             with the STREAMV2 flag for -f libxl).

Compressed input (zstd or lz4, by its magic) is decompressed first; the
output is not compressed (pipe it into xstream-compress). A stream that is
already v2 or v3 is passed through (v2 rewritten as v3), with a note on
standard error. -i and -o also take a file descriptor
number, as Xen's converter does. -o FILE is written to a temporary file
renamed into place on success; a failed conversion leaves no file.

` + cmdutil.ExitStatusHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "in", Aliases: []string{"i"}, Usage: "input file, `FD` number or - (instead of IN)"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output file, `FD` number or - (default standard output)"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "libxc", Usage: "the output's `FORMAT` (framing): libxc or libxl"},
			&cli.StringFlag{Name: "width", Aliases: []string{"w"}, Usage: "the saving toolstack's width, `32|64` (default: detected)"},
			&cli.StringFlag{Name: "guest-type", Aliases: []string{"g", "guest"}, Usage: "the guest type, `pv|hvm` (default: detected)"},
			&cli.BoolFlag{Name: "xl", Aliases: []string{"x"}, Usage: "require an xl header (without -x, one is recognised by its magic)"},
			&cli.BoolFlag{Name: "skip-qemu", Usage: "drop the qemu tail from libxc output"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say what the stream is on standard error"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no notes on standard error, errors only"},
			&cli.BoolFlag{Name: "syslog", Usage: "also send notes and errors to syslog"},
		},
		Action: func(c *cli.Context) error {
			opts, err := parseOptions(c)
			if err != nil {
				return err
			}
			return run(opts, stdio())
		},
	}
}
