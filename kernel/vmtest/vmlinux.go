package vmtest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
)

// xzMagic starts every xz stream (the .xz file format, section 2.1.1.1).
var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// extractVmlinux returns the uncompressed ELF kernel inside a bzImage (vmlinuz) whose
// payload is xz-compressed, as Debian's is (CONFIG_KERNEL_XZ). qemu boots that ELF
// directly through its PVH entry point, which is several seconds faster under emulation
// than letting the kernel decompress itself. The xz stream is found by its magic, the
// way the kernel's scripts/extract-vmlinux does; every candidate is tried until one
// decompresses to an ELF file with a PVH entry note.
func extractVmlinux(vmlinuz []byte) ([]byte, error) {
	var lastErr error = errors.New("no xz stream found in vmlinuz (is it xz-compressed?)")
	for off := 0; ; {
		i := bytes.Index(vmlinuz[off:], xzMagic)
		if i < 0 {
			return nil, fmt.Errorf("extract vmlinux: %w", lastErr)
		}
		start := off + i
		off = start + 1
		out, err := decompressWith("xz", vmlinuz[start:], "xz-utils", "-dc", "--single-stream")
		if err != nil {
			lastErr = err
			continue
		}
		if err := checkPVH(out); err != nil {
			lastErr = err
			continue
		}
		return out, nil
	}
}

// Xen's PVH ELF note (XEN_ELFNOTE_PHYS32_ENTRY in xen/include/public/elfnote.h): its
// presence is what lets qemu's -kernel boot an uncompressed ELF vmlinux.
const (
	xenNoteName           = "Xen"
	xenElfnotePhys32Entry = 18
)

// checkPVH verifies that b is an x86-64 ELF kernel carrying the PVH entry note.
func checkPVH(b []byte) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not an ELF kernel: %w", err)
	}
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("kernel is for %v, not x86-64", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes := make([]byte, p.Filesz)
		if _, err := p.ReadAt(notes, 0); err != nil {
			return fmt.Errorf("read ELF notes: %w", err)
		}
		if hasNote(notes, f.ByteOrder, xenNoteName, xenElfnotePhys32Entry) {
			return nil
		}
	}
	return errors.New("kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); qemu cannot boot its vmlinux directly")
}

// hasNote walks an ELF note segment (namesz, descsz, type, name, desc; each padded to
// four bytes) looking for the given name and type. Malformed notes end the walk.
func hasNote(notes []byte, bo binary.ByteOrder, name string, typ uint32) bool {
	for len(notes) >= 12 {
		namesz := int(bo.Uint32(notes[0:]))
		descsz := int(bo.Uint32(notes[4:]))
		ntype := bo.Uint32(notes[8:])
		notes = notes[12:]
		nameEnd := (namesz + 3) &^ 3
		descEnd := (descsz + 3) &^ 3
		if namesz < 0 || descsz < 0 || nameEnd > len(notes) || nameEnd+descEnd > len(notes) {
			return false
		}
		n := string(bytes.TrimRight(notes[:namesz], "\x00"))
		if n == name && ntype == typ {
			return true
		}
		notes = notes[nameEnd+descEnd:]
	}
	return false
}

// checkStaticX8664 verifies that an executable will run in the VM's initramfs: an x86-64
// ELF with no program interpreter (there is no dynamic loader or libc in the VM).
func checkStaticX8664(b []byte) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not an ELF executable: %w", err)
	}
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("built for %v, the VM is x86-64", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (has a program interpreter); build it statically, e.g. CGO_ENABLED=0")
		}
	}
	return nil
}
