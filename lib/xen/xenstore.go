package xen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// XenstoreSockets are where a dom0's xenstored listens, tried in order.
var XenstoreSockets = []string{"/run/xenstored/socket", "/var/run/xenstored/socket"}

// The xenstore wire protocol (Xen's docs/misc/xenstore.txt): every
// message is a header of four native-endian 32-bit words, type, request
// id, transaction id and payload length, then the payload.
const (
	xsDirectory = 1
	xsRead      = 2
	xsError     = 16

	xsHeaderSize = 16
	xsMaxPayload = 4096 // XENSTORE_PAYLOAD_MAX
)

// xsConn is a connection to xenstored, for a few reads.
type xsConn struct {
	c     io.ReadWriteCloser
	reqID uint32
}

func dialXenstore(paths []string, timeout time.Duration) (*xsConn, error) {
	var errs []error
	for _, p := range paths {
		c, err := dialUnix(p, timeout)
		if err == nil {
			return &xsConn{c: c}, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, errors.New("xenstore: no socket to try")
	}
	return nil, errors.Join(errs...)
}

func (x *xsConn) Close() error { return x.c.Close() }

// request sends one request outside any transaction and returns the
// payload of its answer.
func (x *xsConn) request(typ uint32, payload []byte) ([]byte, error) {
	x.reqID++
	msg := make([]byte, xsHeaderSize, xsHeaderSize+len(payload))
	binary.NativeEndian.PutUint32(msg[0:], typ)
	binary.NativeEndian.PutUint32(msg[4:], x.reqID)
	binary.NativeEndian.PutUint32(msg[12:], uint32(len(payload)))
	msg = append(msg, payload...)
	if _, err := x.c.Write(msg); err != nil {
		return nil, err
	}
	var h [xsHeaderSize]byte
	if _, err := io.ReadFull(x.c, h[:]); err != nil {
		return nil, err
	}
	rtyp, rid, n := binary.NativeEndian.Uint32(h[0:]), binary.NativeEndian.Uint32(h[4:]), binary.NativeEndian.Uint32(h[12:])
	if n > xsMaxPayload {
		return nil, fmt.Errorf("xenstore: answer of %d octets", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(x.c, body); err != nil {
		return nil, err
	}
	if rid != x.reqID {
		return nil, fmt.Errorf("xenstore: answer to request %d, want %d", rid, x.reqID)
	}
	if rtyp == xsError {
		return nil, fmt.Errorf("xenstore: %s", bytes.TrimRight(body, "\x00"))
	}
	if rtyp != typ {
		return nil, fmt.Errorf("xenstore: answer of type %d to a request of type %d", rtyp, typ)
	}
	return body, nil
}

func (x *xsConn) directory(path string) ([]string, error) {
	b, err := x.request(xsDirectory, append([]byte(path), 0))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range strings.Split(string(b), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

func (x *xsConn) read(path string) (string, error) {
	b, err := x.request(xsRead, append([]byte(path), 0))
	return string(b), err
}

// xenstoreNames returns the names of the host's domains as xenstore
// has them (/local/domain/ID/name, where libxl keeps them and checks a
// new domain's name against): a few messages to xenstored instead of an
// xl process, which under emulation costs a good part of a second.
func xenstoreNames(paths []string) (domainIDs, error) {
	x, err := dialXenstore(paths, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	ids, err := x.directory("/local/domain")
	if err != nil {
		return nil, err
	}
	names := domainIDs{}
	for _, id := range ids {
		domid, err := strconv.Atoi(id)
		if err != nil {
			continue
		}
		n, err := x.read("/local/domain/" + id + "/name")
		if err != nil {
			continue // a domain without a name (yet, or any more)
		}
		names[n] = domid
	}
	return names, nil
}
