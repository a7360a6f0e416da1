package main

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/xstream/xstream/internal/cmdutil"
	"github.com/xstream/xstream/lib/compress"
	"github.com/xstream/xstream/lib/legacy"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
	"github.com/xstream/xstream/lib/upgrade"
)

type options struct {
	in, out string // "" or "-": standard input/output
	inFD    bool   // in, out are file descriptor numbers (-i, -o N)
	outFD   bool
	upgrade upgrade.Options
	verbose bool
	quiet   bool
	syslog  bool
}

// files are the standard streams, replaceable in tests.
type files struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stdoutTTY      bool
}

func stdio() files {
	return files{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, stdoutTTY: cmdutil.IsTerminal(os.Stdout)}
}

func parseOptions(c *cli.Context) (options, error) {
	var o options
	if c.NArg() > 1 {
		return o, cmdutil.Usagef("one input at most, got %d", c.NArg())
	}
	o.in = c.Args().First()
	if in := c.String("in"); in != "" {
		if o.in != "" {
			return o, cmdutil.Usagef("input given twice: %q and -i %q", o.in, in)
		}
		o.in, o.inFD = in, isFD(in)
	}
	o.out = c.String("out")
	o.outFD = isFD(o.out)
	f, err := upgrade.ParseFormat(c.String("format"))
	if err != nil {
		return o, cmdutil.Usagef("-f: %v", err)
	}
	o.upgrade.Format = f
	switch w := c.String("width"); w {
	case "":
	case "32", "64":
		o.upgrade.Width, _ = strconv.Atoi(w)
	default:
		return o, cmdutil.Usagef("-w %s: want 32 or 64", w)
	}
	if g := c.String("guest-type"); g != "" {
		if o.upgrade.Guest, err = legacy.ParseGuest(g); err != nil {
			return o, cmdutil.Usagef("-g: %v", err)
		}
	}
	o.upgrade.XL = c.Bool("xl")
	o.upgrade.SkipQemu = c.Bool("skip-qemu")
	o.verbose, o.quiet, o.syslog = c.Bool("verbose"), c.Bool("quiet"), c.Bool("syslog")
	return o, nil
}

// isFD reports whether an -i or -o value is a file descriptor number, as
// Xen's converter takes them (libxl passes its pipes so).
func isFD(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// run converts opts.in to opts.out.
func run(opts options, f files) (err error) {
	var logw *syslog.Writer
	if opts.syslog {
		logw, _ = syslog.New(syslog.LOG_INFO|syslog.LOG_DAEMON, "xstream-upgrade")
		if logw != nil {
			defer logw.Close()
			defer func() {
				if err != nil {
					logw.Err(err.Error())
				}
			}()
		}
	}
	note := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if !opts.quiet {
			fmt.Fprintf(f.stderr, "xstream-upgrade: %s\n", msg)
		}
		if logw != nil {
			logw.Info(msg)
		}
	}

	in, closeIn, err := openInput(opts, f.stdin)
	if err != nil {
		return err
	}
	defer closeIn()
	out, err := openOutput(opts, f)
	if err != nil {
		return err
	}
	// Compressed input is decompressed here, at the edge.
	zin, err := sniff.Open(in)
	if err != nil {
		return err
	}
	defer zin.Close()
	info, err := upgrade.Upgrade(out.writer(), zin.Source, &opts.upgrade)
	if err == nil && zin.Compression != compress.None {
		err = drain(zin)
	}
	if err != nil {
		out.abort()
		return err
	}
	if err := out.commit(); err != nil {
		return err
	}
	switch {
	case !info.Legacy:
		note("%v", info)
		if opts.upgrade.Width != 0 || opts.upgrade.Guest != legacy.GuestAuto {
			note("-w and -g apply to legacy streams only; ignored")
		}
	case opts.verbose:
		note("%v", info)
		if info.GuestWidth != 0 {
			note("PV guest width: %d-bit", 8*info.GuestWidth)
		}
	}
	return nil
}

// drain reads a decompressed input to its end, where the decompressor
// checks the last frame's checksum and the frames' sequence: a stream
// must not pass while the compressed file it came in is damaged.
func drain(in *sniff.Input) error {
	n, err := io.Copy(io.Discard, in.Source)
	if err == nil && n > 0 {
		err = &stream.FormatError{Offset: in.Offset() - n, Index: -1, Type: "end of stream",
			Err: stream.Corrupt("%d octets of trailing data after the stream", n)}
	}
	return err
}

// openFD returns the file of descriptor number n, given with flag: a
// number that is no open descriptor is a usage error.
func openFD(flag, n string) (*os.File, error) {
	fd, err := strconv.Atoi(n)
	if err != nil || fd < 0 {
		return nil, cmdutil.Usagef("%s %s: not a file descriptor", flag, n)
	}
	f := os.NewFile(uintptr(fd), "fd "+n)
	if _, err := f.Stat(); err != nil {
		return nil, cmdutil.Usagef("%s %s: no such open file descriptor", flag, n)
	}
	return f, nil
}

// openInput opens the input. It returns standard input as it is (an
// *os.File, not wrapped), so that page data can move from it with
// splice(2).
func openInput(opts options, stdin io.Reader) (io.Reader, func(), error) {
	switch {
	case opts.in == "" || opts.in == "-":
		return stdin, func() {}, nil
	case opts.inFD:
		f, err := openFD("-i", opts.in)
		if err != nil {
			return nil, nil, err
		}
		return f, func() { f.Close() }, nil
	}
	f, err := os.Open(opts.in)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// output is where the stream goes: standard output, a file descriptor, or
// a file written under a temporary name and renamed into place by commit.
// A file is created only when the first octet is written, so that a
// stream refused outright leaves nothing behind.
type output struct {
	w       io.Writer
	path    string // final name, for -o FILE
	out     *cmdutil.Output
	closeFD *os.File
}

func openOutput(opts options, f files) (*output, error) {
	switch {
	case opts.out == "" || opts.out == "-":
		if f.stdoutTTY {
			return nil, cmdutil.Usagef("refusing to write a binary stream to a terminal; use -o FILE or a pipe")
		}
		return &output{w: f.stdout}, nil
	case opts.outFD:
		file, err := openFD("-o", opts.out)
		if err != nil {
			return nil, err
		}
		if cmdutil.IsTerminal(file) {
			return nil, cmdutil.Usagef("refusing to write a binary stream to a terminal (-o %s); use -o FILE or a pipe", opts.out)
		}
		return &output{w: file, closeFD: file}, nil
	}
	return &output{path: opts.out}, nil
}

// writer returns what the stream is written to: standard output or the
// file descriptor itself (an *os.File, so that page data can move into it
// with splice(2)), or the output that creates -o FILE on its first write.
func (o *output) writer() io.Writer {
	if o.path == "" {
		return o.w
	}
	return o
}

func (o *output) Write(p []byte) (int, error) {
	if o.w == nil {
		out, err := cmdutil.CreateOutput(o.path)
		if err != nil {
			return 0, err
		}
		o.out, o.w = out, out
	}
	return o.w.Write(p)
}

// commit makes the output final: fsync and rename for -o FILE.
func (o *output) commit() error {
	if o.closeFD != nil {
		return o.closeFD.Close()
	}
	if o.path == "" {
		return nil
	}
	if o.out == nil { // nothing written: still make an (empty) file
		if _, err := o.Write(nil); err != nil {
			return err
		}
	}
	return o.out.Commit()
}

// abort removes a partly written -o FILE.
func (o *output) abort() {
	if o.out != nil {
		o.out.Abort()
	}
	if o.closeFD != nil {
		o.closeFD.Close()
	}
}
