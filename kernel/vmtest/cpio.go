package vmtest

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// The initramfs format is the "new ASCII" (newc) cpio format, magic 070701, described in
// the kernel's Documentation/driver-api/early-userspace/buffer-format.rst. Every header
// is 110 bytes of ASCII: the magic followed by thirteen 8-digit hex fields. The name
// (NUL-terminated) follows the header and is padded so that the data starts on a 4-byte
// boundary; the data is padded to a 4-byte boundary as well. The archive ends with an
// entry named "TRAILER!!!".

const (
	cpioMagic       = "070701"
	cpioHeaderLen   = 110
	cpioTrailerName = "TRAILER!!!"
)

// File type bits of the cpio mode field (the same values as st_mode).
const (
	cpioModeDir     = 0o040000
	cpioModeRegular = 0o100000
	cpioModeSymlink = 0o120000
	cpioModeCharDev = 0o020000
	cpioModeTypes   = 0o170000
)

var errCpioClosed = errors.New("cpio: archive already closed")

// cpioWriter writes a newc cpio archive, the format the kernel unpacks into its rootfs.
// All entries are owned by root with mtime 0, so an archive is a pure function of what
// was written into it. The writer does not deduplicate names: a later entry with the
// same name replaces the earlier one when the kernel unpacks the archive.
type cpioWriter struct {
	w      io.Writer
	off    int64 // bytes written so far, for padding
	ino    uint32
	closed bool
	err    error // first write error; sticky
}

func newCpioWriter(w io.Writer) *cpioWriter { return &cpioWriter{w: w, ino: 1} }

// Dir adds a directory entry with the given permission bits.
func (c *cpioWriter) Dir(name string, perm uint32) error {
	return c.entry(name, cpioModeDir|perm&0o7777, 0, 0, nil)
}

// File adds a regular file with the given permission bits and contents.
func (c *cpioWriter) File(name string, perm uint32, contents []byte) error {
	return c.entry(name, cpioModeRegular|perm&0o7777, 0, 0, contents)
}

// Symlink adds a symbolic link name → target.
func (c *cpioWriter) Symlink(name, target string) error {
	return c.entry(name, cpioModeSymlink|0o777, 0, 0, []byte(target))
}

// CharDev adds a character device node (for /dev/console before devtmpfs is mounted).
func (c *cpioWriter) CharDev(name string, perm uint32, major, minor uint32) error {
	return c.entry(name, cpioModeCharDev|perm&0o7777, major, minor, nil)
}

// Close writes the trailer entry. It does not close the underlying writer.
func (c *cpioWriter) Close() error {
	if c.closed {
		return errCpioClosed
	}
	if err := c.entry(cpioTrailerName, 0, 0, 0, nil); err != nil {
		return err
	}
	c.closed = true
	return nil
}

func (c *cpioWriter) entry(name string, mode, rdevMajor, rdevMinor uint32, data []byte) error {
	if c.closed {
		return errCpioClosed
	}
	if c.err != nil {
		return c.err
	}
	name = strings.TrimPrefix(name, "/")
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("cpio: invalid entry name %q", name)
	}
	if int64(len(data)) > 0xffffffff {
		return fmt.Errorf("cpio: %s: %d bytes is too large for a newc entry", name, len(data))
	}
	ino := c.ino
	c.ino++
	nlink := uint32(1)
	if mode&cpioModeTypes == cpioModeDir {
		nlink = 2
	}
	if name == cpioTrailerName {
		ino, nlink = 0, 1
	}
	fields := [13]uint32{
		ino,
		mode,
		0, // uid
		0, // gid
		nlink,
		0, // mtime
		uint32(len(data)),
		0, 0, // devmajor, devminor
		rdevMajor, rdevMinor,
		uint32(len(name) + 1), // namesize includes the NUL
		0,                     // check (only for the 070702 format)
	}
	hdr := make([]byte, 0, cpioHeaderLen+len(name)+4)
	hdr = append(hdr, cpioMagic...)
	for _, f := range fields {
		hdr = fmt.Appendf(hdr, "%08X", f)
	}
	hdr = append(hdr, name...)
	hdr = append(hdr, 0)
	hdr = appendPad4(hdr, c.off)
	if err := c.write(hdr); err != nil {
		return fmt.Errorf("cpio: %s: %w", name, err)
	}
	if len(data) > 0 {
		if err := c.write(data); err != nil {
			return fmt.Errorf("cpio: %s: %w", name, err)
		}
		if err := c.write(appendPad4(nil, c.off)); err != nil {
			return fmt.Errorf("cpio: %s: %w", name, err)
		}
	}
	return nil
}

// appendPad4 appends the zero bytes that bring an archive of off+len(b) bytes to a
// multiple of four.
func appendPad4(b []byte, off int64) []byte {
	for (off+int64(len(b)))%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (c *cpioWriter) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := c.w.Write(b)
	c.off += int64(n)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		c.err = err
	}
	return err
}
