package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

//go:embed init.sh
var initScript []byte

// assetFormat changes whenever the layout of the base initramfs changes in a way the
// hash of its inputs does not capture.
const assetFormat = "cygnet-vm-assets-1"

// kernelMetaPackage is the Debian package that names the current kernel image package.
const kernelMetaPackage = "linux-image-amd64"

// Assets are the prepared, cached inputs of a VM boot. The files are never modified once
// prepared; several processes may boot from them at once.
type Assets struct {
	// KernelPackage is the Debian package the kernel came from, e.g.
	// linux-image-6.1.0-56-amd64; KernelVersion is its `uname -r`, e.g. 6.1.0-56-amd64.
	KernelPackage string
	KernelVersion string
	// Vmlinux is the uncompressed ELF kernel, booted through its PVH entry point.
	Vmlinux string
	// BaseInitrd is the newc cpio archive with busybox, the modules and /init (about
	// 3.7 MiB). It is not compressed: gunzip under emulation cost more boot time
	// (~0.25 s per copy, measured) than qemu's loading of the larger file.
	BaseInitrd string
	// Modules is the insmod order baked into the base initramfs.
	Modules []string
}

// CacheDir returns the directory that holds prepared VM assets: $CYGNET_VM_CACHE if
// set, else cygnet-vm under the user's cache directory ($XDG_CACHE_HOME or ~/.cache).
func CacheDir() (string, error) {
	if d := os.Getenv("CYGNET_VM_CACHE"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("vmtest: no cache directory (set CYGNET_VM_CACHE): %w", err)
	}
	return filepath.Join(base, "cygnet-vm"), nil
}

var (
	resolveMu      sync.Mutex
	resolvedKernel string
)

// resolvedFile, under CacheDir(), remembers the last kernel package apt named, so that
// every test process does not pay for `apt-cache` (~1 s) to learn it again.
const resolvedFile = "resolved"

// resolvedTTL is how long Run trusts resolvedFile. Prepare (vmprep) always asks apt.
const resolvedTTL = 12 * time.Hour

// Prepare fetches Debian's kernel package behind linux-image-amd64 and busybox-static
// when they are not cached yet, extracts the ELF vmlinux and the modules, and builds the
// base initramfs. It is idempotent and safe to call from several processes at once (a
// lock file serialises the work); when everything is cached it costs one `apt-cache`
// call (Run skips even that when the kernel package was resolved within the last 12
// hours). If apt cannot answer but an earlier run's assets are cached, those are used.
// Progress is written to log, which may be nil.
//
// The cache layout under CacheDir():
//
//	resolved                                   the kernel package apt named last
//	<kernel version>/vmlinux                   the ELF kernel
//	<kernel version>/linux-image-….deb         the downloaded package
//	<kernel version>/base-<hash>.cpio         busybox + modules + /init; hash of its inputs
//	<kernel version>/base-<hash>.order        the module insmod order inside it
func Prepare(ctx context.Context, log io.Writer) (*Assets, error) {
	return prepare(ctx, log, false)
}

// prepare is Prepare; with trustResolved it takes the kernel package from a recent
// resolvedFile instead of asking apt.
func prepare(ctx context.Context, log io.Writer, trustResolved bool) (*Assets, error) {
	if log == nil {
		log = io.Discard
	}
	root, err := CacheDir()
	if err != nil {
		return nil, err
	}
	pkg := ""
	if trustResolved {
		pkg = recentResolution(root, resolvedTTL)
	}
	if pkg == "" {
		if pkg, err = resolveKernelPackage(ctx, log); err != nil {
			// Offline, with a cache from an earlier run: boot what is cached.
			if old := recentResolution(root, -1); old != "" {
				if a, cerr := cachedAssets(root, old); cerr == nil {
					fmt.Fprintf(log, "vmtest: %v; using the cached %s\n", err, old)
					return a, nil
				}
			}
			return nil, err
		}
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, fmt.Errorf("vmtest: create cache dir: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(root, resolvedFile), []byte(pkg+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	if a, err := cachedAssets(root, pkg); err == nil {
		return a, nil
	}
	a := assetPaths(root, pkg)
	kdir := filepath.Dir(a.Vmlinux)
	key := baseKey()
	orderFile := filepath.Join(kdir, "base-"+key+".order")

	if err := os.MkdirAll(kdir, 0o755); err != nil {
		return nil, fmt.Errorf("vmtest: create cache dir: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(root, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Another process may have finished the work while we waited for the lock.
	if a, err := cachedAssets(root, pkg); err == nil {
		return a, nil
	}

	deb, err := downloadPackage(ctx, log, pkg, kdir)
	if err != nil {
		return nil, err
	}
	tree, err := os.MkdirTemp(kdir, "extract-")
	if err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	defer os.RemoveAll(tree)
	fmt.Fprintf(log, "vmtest: unpacking %s\n", filepath.Base(deb))
	if err := runTool(ctx, "dpkg-deb", "dpkg", "-x", deb, tree); err != nil {
		return nil, err
	}

	if !fileExists(a.Vmlinux) {
		vmlinuz, err := os.ReadFile(filepath.Join(tree, "boot", "vmlinuz-"+a.KernelVersion))
		if err != nil {
			return nil, fmt.Errorf("vmtest: %s has no vmlinuz: %w", pkg, err)
		}
		fmt.Fprintf(log, "vmtest: extracting vmlinux\n")
		vmlinux, err := extractVmlinux(vmlinuz)
		if err != nil {
			return nil, fmt.Errorf("vmtest: %s: %w", pkg, err)
		}
		if err := writeFileAtomic(a.Vmlinux, vmlinux, 0o644); err != nil {
			return nil, err
		}
	}

	modDir := filepath.Join(tree, "lib", "modules", a.KernelVersion)
	idx, err := moduleIndex(modDir)
	if err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	builtin, err := builtinModules(filepath.Join(modDir, "modules.builtin"))
	if err != nil {
		return nil, fmt.Errorf("vmtest: %s: %w", pkg, err)
	}
	order, blobs, err := moduleOrder(defaultModules, idx, builtin, loadModule)
	if err != nil {
		return nil, fmt.Errorf("vmtest: %s: %w", pkg, err)
	}

	busybox, err := staticBusybox(ctx, log, kdir)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "vmtest: building the base initramfs (%d modules)\n", len(order))
	base, err := buildBaseInitrd(ctx, busybox, order, blobs)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(a.BaseInitrd, base, 0o644); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(orderFile, []byte(strings.Join(order, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	a.Modules = order
	pruneOldBases(kdir, key)
	fmt.Fprintf(log, "vmtest: ready: %s, %s\n", a.Vmlinux, a.BaseInitrd)
	return a, nil
}

// assetPaths returns where the assets of kernel package pkg live under root.
func assetPaths(root, pkg string) *Assets {
	a := &Assets{KernelPackage: pkg, KernelVersion: strings.TrimPrefix(pkg, "linux-image-")}
	kdir := filepath.Join(root, a.KernelVersion)
	a.Vmlinux = filepath.Join(kdir, "vmlinux")
	a.BaseInitrd = filepath.Join(kdir, "base-"+baseKey()+".cpio")
	return a
}

// cachedAssets returns pkg's assets if they are completely prepared.
func cachedAssets(root, pkg string) (*Assets, error) {
	a := assetPaths(root, pkg)
	order, err := readOrder(strings.TrimSuffix(a.BaseInitrd, ".cpio") + ".order")
	if err != nil {
		return nil, err
	}
	for _, p := range []string{a.Vmlinux, a.BaseInitrd} {
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
	}
	a.Modules = order
	return a, nil
}

// pruneOldBases removes base archives of other keys (older versions of init.sh or of
// the module list) that have not been written for an hour; a process of another
// version that is booting from one right now keeps its open file.
func pruneOldBases(kdir, key string) {
	old, _ := filepath.Glob(filepath.Join(kdir, "base-*"))
	for _, p := range old {
		if strings.HasPrefix(filepath.Base(p), "base-"+key+".") {
			continue
		}
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.Remove(p)
		}
	}
}

// baseKey hashes what goes into the base initramfs besides the kernel: the init script
// and the wanted module list.
func baseKey() string {
	h := sha256.New()
	h.Write([]byte(assetFormat + "\x00"))
	h.Write(initScript)
	h.Write([]byte("\x00" + strings.Join(defaultModules, ",")))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

var dependsRE = regexp.MustCompile(`(?m)^\s*Depends:\s*(linux-image-[0-9][^\s]*)\s*$`)

// resolveKernelPackage asks apt which concrete kernel image package linux-image-amd64
// depends on (e.g. linux-image-6.1.0-56-amd64). Missing package lists are fetched once
// with apt-get update. The answer is remembered for the life of the process.
func resolveKernelPackage(ctx context.Context, log io.Writer) (string, error) {
	resolveMu.Lock()
	defer resolveMu.Unlock()
	if resolvedKernel != "" {
		return resolvedKernel, nil
	}
	for attempt := 0; ; attempt++ {
		out, err := toolOutput(ctx, "apt-cache", "apt", "depends", kernelMetaPackage)
		if m := dependsRE.FindStringSubmatch(out); err == nil && m != nil {
			resolvedKernel = m[1]
			return resolvedKernel, nil
		}
		if attempt > 0 {
			if err == nil {
				err = errors.New("no linux-image-<version> dependency in its output")
			}
			return "", fmt.Errorf("vmtest: cannot resolve the kernel package behind %s with `apt-cache depends %s` (is deb.debian.org reachable, and %s available for amd64?): %w",
				kernelMetaPackage, kernelMetaPackage, kernelMetaPackage, err)
		}
		if errors.Is(err, errToolMissing) {
			return "", err
		}
		fmt.Fprintf(log, "vmtest: %s unknown to apt; running apt-get update\n", kernelMetaPackage)
		if err := runTool(ctx, "apt-get", "apt", "update", "-q"); err != nil {
			return "", fmt.Errorf("vmtest: apt-get update (needed to find %s): %w", kernelMetaPackage, err)
		}
	}
}

// recentResolution returns the kernel package recorded in resolvedFile if it was
// written within ttl (any time if ttl < 0), else "".
func recentResolution(root string, ttl time.Duration) string {
	path := filepath.Join(root, resolvedFile)
	fi, err := os.Stat(path)
	if err != nil || ttl >= 0 && time.Since(fi.ModTime()) > ttl {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	pkg := strings.TrimSpace(string(b))
	if !dependsRE.MatchString("Depends: " + pkg) {
		return ""
	}
	return pkg
}

// downloadPackage fetches pkg's .deb into dir with apt-get download unless a .deb of it
// is already there, and returns its path.
func downloadPackage(ctx context.Context, log io.Writer, pkg, dir string) (string, error) {
	find := func() string {
		m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
		if len(m) == 0 {
			return ""
		}
		slices.Sort(m)
		return m[len(m)-1]
	}
	if p := find(); p != "" {
		return p, nil
	}
	tmp, err := os.MkdirTemp(dir, "download-")
	if err != nil {
		return "", fmt.Errorf("vmtest: %w", err)
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(log, "vmtest: apt-get download %s\n", pkg)
	for attempt := 0; ; attempt++ {
		cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg)
		cmd.Dir = tmp
		out, err := cmd.CombinedOutput()
		if err == nil {
			break
		}
		if attempt > 0 {
			return "", fmt.Errorf("vmtest: apt-get download %s (is the Debian mirror reachable? the VM tests need this package): %w: %s", pkg, err, strings.TrimSpace(string(out)))
		}
		// Missing or stale package lists: update once and retry.
		fmt.Fprintf(log, "vmtest: apt-get download failed (%v); running apt-get update\n", err)
		if err := runTool(ctx, "apt-get", "apt", "update", "-q"); err != nil {
			return "", fmt.Errorf("vmtest: apt-get update (needed to download %s): %w", pkg, err)
		}
	}
	m, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(m) != 1 {
		return "", fmt.Errorf("vmtest: apt-get download %s produced %d .deb files", pkg, len(m))
	}
	dst := filepath.Join(dir, filepath.Base(m[0]))
	if err := os.Rename(m[0], dst); err != nil {
		return "", fmt.Errorf("vmtest: %w", err)
	}
	return dst, nil
}

// staticBusybox returns a statically linked busybox binary: the host's, from the
// busybox-static package, or else one fetched with apt-get download busybox-static.
func staticBusybox(ctx context.Context, log io.Writer, cacheDir string) ([]byte, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		b, err := os.ReadFile(p)
		if err == nil && checkStaticX8664(b) == nil {
			return b, nil
		}
	}
	deb, err := downloadPackage(ctx, log, "busybox-static", cacheDir)
	if err != nil {
		return nil, fmt.Errorf("%w (or install it: apt-get install busybox-static)", err)
	}
	tree, err := os.MkdirTemp(cacheDir, "busybox-")
	if err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	defer os.RemoveAll(tree)
	if err := runTool(ctx, "dpkg-deb", "dpkg", "-x", deb, tree); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(tree, "bin", "busybox"))
	if err != nil {
		return nil, fmt.Errorf("vmtest: busybox-static package has no bin/busybox: %w", err)
	}
	if err := checkStaticX8664(b); err != nil {
		return nil, fmt.Errorf("vmtest: busybox from busybox-static: %w", err)
	}
	return b, nil
}

// buildBaseInitrd writes the base initramfs: the directory skeleton, busybox with a
// symlink per applet, the modules with their insmod order, and /init.
func buildBaseInitrd(ctx context.Context, busybox []byte, order []string, blobs map[string][]byte) ([]byte, error) {
	applets, err := busyboxApplets(ctx, busybox)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	cw := newCpioWriter(&buf)
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	for _, d := range []string{"bin", "sbin", "dev", "proc", "sys", "tmp", "run", "root", "etc", "lib", "lib/modules", "lib/modules/cygnet", "var", "cygnet", "cygnet/bin"} {
		add(cw.Dir(d, 0o755))
	}
	add(cw.CharDev("dev/console", 0o600, 5, 1))
	add(cw.Symlink("var/run", "../run"))
	add(cw.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")))
	add(cw.File("etc/group", 0o644, []byte("root:x:0:\n")))
	add(cw.File("etc/hosts", 0o644, []byte("127.0.0.1 localhost cygnet-vm\n::1 localhost\n")))
	add(cw.File("bin/busybox", 0o755, busybox))
	for _, a := range applets {
		if a != "busybox" {
			add(cw.Symlink("bin/"+a, "busybox"))
		}
	}
	// No sbin/modprobe on purpose: the kernel's module autoloading finds nothing and
	// fails at once, and every module is loaded up front by /init instead.
	for _, s := range []string{"sbin/insmod", "sbin/poweroff"} {
		add(cw.Symlink(s, "../bin/busybox"))
	}
	for _, m := range order {
		add(cw.File("lib/modules/cygnet/"+m+".ko", 0o644, blobs[m]))
	}
	add(cw.File("lib/modules/cygnet/order", 0o644, []byte(strings.Join(order, "\n")+"\n")))
	add(cw.File("init", 0o755, initScript))
	add(cw.Close())
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("vmtest: build base initramfs: %w", err)
	}
	return buf.Bytes(), nil
}

// busyboxApplets lists the applets a busybox binary provides (busybox --list).
func busyboxApplets(ctx context.Context, busybox []byte) ([]string, error) {
	f, err := os.CreateTemp("", "busybox-")
	if err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(busybox)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), 0o755)); err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	out, err := exec.CommandContext(ctx, f.Name(), "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("vmtest: busybox --list: %w", err)
	}
	var applets []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		a := strings.TrimSpace(sc.Text())
		if a != "" && !strings.ContainsAny(a, "/\x00") {
			applets = append(applets, a)
		}
	}
	if !slices.Contains(applets, "sh") || !slices.Contains(applets, "insmod") {
		return nil, fmt.Errorf("vmtest: busybox lacks the sh or insmod applet")
	}
	return applets, nil
}

func readOrder(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// writeFileAtomic writes a file under a temporary name and renames it into place, so a
// reader never sees a partial file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), perm)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("vmtest: write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("vmtest: %w", err)
	}
	return nil
}

// lockFile takes an exclusive flock on path, waiting until ctx is done.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vmtest: open lock: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- unix.Flock(int(f.Fd()), unix.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("vmtest: lock %s: %w", path, err)
		}
		return func() { f.Close() }, nil
	case <-ctx.Done():
		// Closing the file does not interrupt flock; the goroutine ends when the lock
		// holder releases it, and then the lock is dropped with the descriptor.
		go func() {
			if <-done == nil {
				f.Close()
			}
		}()
		return nil, fmt.Errorf("vmtest: waiting for %s: %w", path, ctx.Err())
	}
}

var errToolMissing = errors.New("tool missing")

// runTool runs a host tool, naming the Debian package to install when it is missing.
func runTool(ctx context.Context, tool, debPkg string, args ...string) error {
	_, err := toolOutput(ctx, tool, debPkg, args...)
	return err
}

func toolOutput(ctx context.Context, tool, debPkg string, args ...string) (string, error) {
	p, err := exec.LookPath(tool)
	if err != nil {
		return "", fmt.Errorf("vmtest: %s is missing; install the Debian package %s (apt-get install %s, or run .ci/deps.sh): %w: %w",
			tool, debPkg, debPkg, errToolMissing, err)
	}
	cmd := exec.CommandContext(ctx, p, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("vmtest: %s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}
