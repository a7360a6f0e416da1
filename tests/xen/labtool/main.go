// Command labtool makes the variants of a real save file that the Xen lab
// test restores:
//
//	labtool v2 < in.xl > out.xl
//	    the libxc part rewritten as image version 2, what a Xen older
//	    than 4.14 writes: no CPU policy records and no STATIC_DATA_END
//	    (the restorer infers it), everything else as it was. The test
//	    restores it as it is and after xstream-upgrade.
//	labtool break-rip < in.xl > out.xl
//	    vCPU 0's instruction pointer (in X86_PV_VCPU_BASIC) set to 0: a
//	    stream every verifier takes whose guest cannot run. The negative
//	    control: the lab's evidence must tell it from a guest that runs.
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/xstream/xstream/lib/rewrite"
	"github.com/xstream/xstream/lib/sniff"
	"github.com/xstream/xstream/lib/stream"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: labtool v2|break-rip < in > out")
		os.Exit(2)
	}
	var edit func(*sniff.Item) (bool, error)
	switch os.Args[1] {
	case "v2":
		edit = toV2
	case "break-rip":
		edit = breakRIP
	default:
		fmt.Fprintln(os.Stderr, "labtool: unknown command", os.Args[1])
		os.Exit(2)
	}
	if err := run(os.Stdout, os.Stdin, edit); err != nil {
		fmt.Fprintln(os.Stderr, "labtool:", err)
		os.Exit(1)
	}
}

// run copies in to out through edit, which may change an item or drop it.
func run(out io.Writer, in io.Reader, edit func(*sniff.Item) (bool, error)) error {
	wk, err := sniff.NewWalker(in, &sniff.Options{Verify: true})
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	rw := rewrite.NewWriter(bw, nil)
	for {
		it, err := wk.Next()
		if err == io.EOF {
			return bw.Flush()
		}
		if err != nil {
			return err
		}
		keep, err := edit(it)
		if err != nil {
			return err
		}
		if keep {
			if err := rw.Write(it); err != nil {
				return err
			}
		}
	}
}

func toV2(it *sniff.Item) (bool, error) {
	switch {
	case it.Kind == sniff.LibxcHeaders:
		it.Image.Version = stream.Version2
	case it.Kind == sniff.LibxcRecord:
		switch it.Libxc.Type {
		case stream.RecStaticDataEnd, stream.RecX86CPUIDPolicy, stream.RecX86MSRPolicy:
			return false, nil
		}
	}
	return true, nil
}

// ripOffset is where vcpu_guest_context_x86_64's user_regs.rip sits in
// an X86_PV_VCPU_BASIC body: the record's vcpu id and reserved field (8),
// fpu_ctxt (512), flags (8), then rip is the 17th register of user_regs.
const ripOffset = 8 + 512 + 8 + 128

func breakRIP(it *sniff.Item) (bool, error) {
	if it.Kind == sniff.LibxcRecord && it.Libxc.Type == stream.RecX86PVVCPUBasic {
		b := it.Libxc.Body
		if len(b) < ripOffset+8 {
			return false, fmt.Errorf("X86_PV_VCPU_BASIC of %d octets", len(b))
		}
		if it.Order.Uint32(b) == 0 {
			binary.LittleEndian.PutUint64(b[ripOffset:], 0)
		}
	}
	return true, nil
}
