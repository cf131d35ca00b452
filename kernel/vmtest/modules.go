package vmtest

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// defaultModules is the module set the VM loads, in insmod order. The order and the
// "hidden" entries come from notes/kernel-vm.md: esp4 and esp6 allocate their IVs through
// the default RNG, which is drbg (with sha512_generic) and needs ecb, yet modinfo lists
// none of them, and without them installing an ESP SA fails with ENOENT ("Kernel was
// unable to initialize cryptographic operations"). ecb and ctr come before drbg so
// that its CTR variants pass their self-tests. Dependencies that modinfo does list
// are added automatically by moduleOrder, before the module that needs them.
//
// Beyond the note's list, the set covers what kernel/xfrm installs: AES-GCM (rfc4106),
// ChaCha20-Poly1305 (rfc7539esp), AES-CBC with HMAC-SHA2 (authenc; authencesn for ESN),
// IPv6 ESP, and XFRM interfaces.
var defaultModules = []string{
	"xfrm_algo", "xfrm_user", "esp4", "esp6",
	"veth", "dummy", "tun",
	"sha512_generic", "ecb", "ctr", "drbg",
	"gf128mul", "ghash-generic", "gcm", "seqiv", "echainiv",
	"cryptd", "crypto_simd", "aesni-intel", "ghash-clmulni-intel",
	"authenc", "authencesn",
	"chacha_generic", "poly1305_generic", "chacha20poly1305",
	"chacha-x86_64", "poly1305-x86_64",
	"sha256-ssse3", "sha512-ssse3",
	"xfrm_interface",
}

// modName normalises a module name the way the kernel does: '-' and '_' are the same.
func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// moduleIndex maps normalised module names to their files under a lib/modules/<version>
// tree. Compressed modules (.ko.xz, .ko.zst, .ko.gz) are indexed too.
func moduleIndex(root string) (map[string]string, error) {
	idx := make(map[string]string)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		base := d.Name()
		for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
			if strings.HasSuffix(base, ext) {
				idx[modName(strings.TrimSuffix(base, ext))] = path
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules under %s: %w", root, err)
	}
	return idx, nil
}

// readModule returns the uncompressed ELF bytes of a module file. Busybox's insmod in
// the initramfs is not relied on to decompress.
func readModule(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasSuffix(path, ".ko"):
		return raw, nil
	case strings.HasSuffix(path, ".ko.gz"):
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("gunzip %s: %w", path, err)
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(path, ".ko.xz"):
		return decompressWith("xz", raw, "xz-utils", "-dc")
	case strings.HasSuffix(path, ".ko.zst"):
		return decompressWith("zstd", raw, "zstd", "-dc")
	}
	return nil, fmt.Errorf("%s: not a kernel module file", path)
}

func decompressWith(tool string, in []byte, debPkg string, args ...string) ([]byte, error) {
	p, err := exec.LookPath(tool)
	if err != nil {
		return nil, fmt.Errorf("%s is missing (install the Debian package %s): %w", tool, debPkg, err)
	}
	cmd := exec.Command(p, args...)
	cmd.Stdin = bytes.NewReader(in)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// loadModule reads a module file and the dependencies its .modinfo lists.
func loadModule(path string) ([]byte, []string, error) {
	ko, err := readModule(path)
	if err != nil {
		return nil, nil, err
	}
	deps, err := moduleDepends(ko)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return ko, deps, nil
}

// moduleDepends reads the "depends=" entry of a module's .modinfo section.
func moduleDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, fmt.Errorf("parse module ELF: %w", err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module has no .modinfo section")
	}
	info, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo: %w", err)
	}
	for kv := range bytes.SplitSeq(info, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for d := range strings.SplitSeq(string(v), ",") {
				if d != "" {
					deps = append(deps, modName(d))
				}
			}
			return deps, nil
		}
	}
	return nil, nil
}

// moduleOrder resolves the wanted modules against the index and returns an insmod order
// in which every module comes after the modules its modinfo depends on, keeping the
// wanted order otherwise. Modules built into the kernel (listed in builtin) are dropped.
// load returns a module file's uncompressed bytes and its dependencies (loadModule).
func moduleOrder(wanted []string, idx map[string]string, builtin map[string]bool, load func(path string) (ko []byte, deps []string, err error)) ([]string, map[string][]byte, error) {
	var order []string
	blobs := make(map[string][]byte)
	state := make(map[string]int) // 1 visiting, 2 done
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		name = modName(name)
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, name), " → "))
		}
		path, ok := idx[name]
		if !ok {
			if builtin[name] {
				state[name] = 2
				return nil
			}
			return fmt.Errorf("module %s not found in the kernel package (wanted by %s)", name, strings.Join(append(chain, name), " → "))
		}
		state[name] = 1
		ko, deps, err := load(path)
		if err != nil {
			return fmt.Errorf("module %s: %w", name, err)
		}
		for _, d := range deps {
			if err := visit(d, append(chain, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, name)
		blobs[name] = ko
		return nil
	}
	for _, w := range wanted {
		if err := visit(w, nil); err != nil {
			return nil, nil, err
		}
	}
	return order, blobs, nil
}

// builtinModules parses lib/modules/<version>/modules.builtin (one path per line).
func builtinModules(path string) (map[string]bool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool)
	for line := range strings.SplitSeq(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		m[modName(strings.TrimSuffix(filepath.Base(line), ".ko"))] = true
	}
	return m, nil
}
