package vm

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fakeAssets writes an asset directory with the given stamp.
func fakeAssets(t *testing.T, dir, stamp string, mtime time.Time) {
	t.Helper()
	mods := filepath.Join(dir, "lib", "modules", "6.1.0-1-amd64")
	if err := os.MkdirAll(mods, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"vmlinux":                          "ELF",
		"initramfs.cpio.gz":                "cpio",
		"kernel-release":                   "6.1.0-1-amd64\n",
		filepath.Join(mods, "modules.dep"): "",
		"complete":                         stamp + "\n",
	}
	for name, content := range files {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, name)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(filepath.Join(dir, "complete"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestFindAssetsPicksNewestComplete(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("NODENET_CACHE", cache)
	t.Setenv("NODENET_VM_ASSETS", "")
	if _, err := FindAssets(); !errors.Is(err, ErrNoAssets) {
		t.Fatalf("empty cache: %v, want ErrNoAssets", err)
	}
	now := time.Now()
	fakeAssets(t, filepath.Join(cache, "vm", "6.1.100-1"), assetFormat, now.Add(-time.Hour))
	fakeAssets(t, filepath.Join(cache, "vm", "6.1.200-1"), assetFormat, now)
	fakeAssets(t, filepath.Join(cache, "vm", "6.1.300-1"), "format 0", now.Add(time.Hour)) // older layout
	if err := os.MkdirAll(filepath.Join(cache, "vm", "6.1.400-1"), 0o755); err != nil {    // half built
		t.Fatal(err)
	}
	a, err := FindAssets()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "vm", "6.1.200-1")
	want := Assets{
		Dir:           dir,
		Kernel:        filepath.Join(dir, "vmlinux"),
		Initramfs:     filepath.Join(dir, "initramfs.cpio.gz"),
		KernelRelease: "6.1.0-1-amd64",
		Modules:       filepath.Join(dir, "lib", "modules", "6.1.0-1-amd64"),
	}
	if a != want {
		t.Errorf("FindAssets = %+v\nwant %+v", a, want)
	}

	// NODENET_VM_ASSETS names one directory, and only that one.
	t.Setenv("NODENET_VM_ASSETS", filepath.Join(cache, "vm", "6.1.100-1"))
	if a, err := FindAssets(); err != nil || a.Dir != filepath.Join(cache, "vm", "6.1.100-1") {
		t.Errorf("NODENET_VM_ASSETS: %+v, %v", a, err)
	}
	t.Setenv("NODENET_VM_ASSETS", filepath.Join(cache, "vm", "6.1.300-1"))
	if _, err := FindAssets(); !errors.Is(err, ErrNoAssets) {
		t.Errorf("NODENET_VM_ASSETS with an old format: %v, want ErrNoAssets", err)
	}
}

func TestLoadAssetsFallsBackToVmlinuz(t *testing.T) {
	dir := t.TempDir()
	fakeAssets(t, dir, assetFormat, time.Now())
	if err := os.Rename(filepath.Join(dir, "vmlinux"), filepath.Join(dir, "vmlinuz")); err != nil {
		t.Fatal(err)
	}
	a, err := LoadAssets(dir)
	if err != nil || a.Kernel != filepath.Join(dir, "vmlinuz") {
		t.Errorf("LoadAssets = %+v, %v; want the vmlinuz kernel", a, err)
	}
	if err := os.Remove(filepath.Join(dir, "initramfs.cpio.gz")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAssets(dir); err == nil {
		t.Error("LoadAssets accepted a directory without initramfs")
	}
}

func TestCacheDir(t *testing.T) {
	t.Setenv("NODENET_CACHE", "/c")
	if d, _ := CacheDir(); d != "/c/vm" {
		t.Errorf("CacheDir with NODENET_CACHE = %q", d)
	}
	t.Setenv("NODENET_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/x")
	if d, _ := CacheDir(); d != "/x/nodenet/vm" {
		t.Errorf("CacheDir with XDG_CACHE_HOME = %q", d)
	}
}

// TestScriptMatchesFormat keeps hack/vm-assets.sh and this package on the
// same asset format and control-share contract.
func TestScriptMatchesFormat(t *testing.T) {
	p, err := findScript()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	m := regexp.MustCompile(`(?m)^format=(\d+)`).FindStringSubmatch(script)
	if m == nil || "format "+m[1] != assetFormat {
		t.Errorf("%s has format %v, this package wants %q", p, m, assetFormat)
	}
	for _, want := range []string{tagControl + " /ctl", "/ctl/" + ctlInit} {
		if !strings.Contains(script, want) {
			t.Errorf("%s's stage-1 init lacks %q", p, want)
		}
	}
}
