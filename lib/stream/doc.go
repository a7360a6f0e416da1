// Package stream reads and writes the libxc domain image format, Xen's
// migration stream v2 and v3, as specified in Xen's
// docs/specs/libxc-migration-stream.pandoc (revision 3).
//
// An image is two headers followed by records:
//
//	image header (24 octets, always big-endian)
//	 0     1     2     3     4     5     6     7 octet
//	+-------------------------------------------------+
//	| marker 0xFFFFFFFFFFFFFFFF                       |
//	+-----------------------+-------------------------+
//	| id "XENF"             | version (2 or 3)        |
//	+-----------+-----------+-------------------------+
//	| options   | (reserved)                          |
//	+-----------+-------------------------------------+
//	options bit 0: 0 little-endian, 1 big-endian records
//
//	domain header (16 octets, in the declared byte order)
//	+-----------------------+-----------+-------------+
//	| type (1 PV, 2 HVM)    | page_shift| (reserved)  |
//	+-----------------------+-----------+-------------+
//	| xen_major             | xen_minor               |
//	+-----------------------+-------------------------+
//
//	record (repeated until END)
//	+-----------------------+-------------------------+
//	| type                  | body_length             |
//	+-----------------------+-------------------------+
//	| body ...                 | zero padding to 8    |
//	+-------------------------------------------------+
//
// The parsing rules are few: the image header is big-endian and chooses the
// byte order of everything after it; a record type with bit 31 set is
// optional and may be skipped by a restorer, any other unknown type must
// fail the restore; bodies are padded with zeros to a multiple of 8 octets;
// END is the last record. Version 3 requires a STATIC_DATA_END record ahead
// of memory and register content; for version 2 streams the Reader infers
// it where Xen's restorer does (before the first X86_PV_P2M_FRAMES record of
// a PV stream, before the first PAGE_DATA of an HVM stream).
//
// Migration streams arrive over the network from machines we do not
// control, so the readers are hardened against hostile input: every length
// taken from the wire is checked against a named limit before anything is
// allocated, and malformed input yields a *FormatError carrying the byte
// offset, the record index and type, never a panic. A stream that stops
// before its END record yields an error wrapping io.ErrUnexpectedEOF.
//
// The package is synchronous and uses no goroutines.
package stream
