package main

// These tests build the real images of the three daemons from this
// repository, twice (the Go build cache makes the second build cheap), and
// push the second build to a registry served in-process on 127.0.0.1. The
// first cold build cross-compiles 3 daemons for 2 architectures and takes
// minutes on 2 cores; later runs take seconds.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	testVersion = "v0.0.0-imagetest"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
	testEpoch   = "1700000000" // 2023-11-14T22:13:20Z
	testSource  = "https://example.invalid/nodenet"
)

var (
	testDaemons   = []string{"routerd", "proxyd", "firewalld"}
	testPlatforms = []string{"linux/amd64", "linux/arm64"}
)

// built is one run of imagebuild: the digest and layout dir per daemon.
type built struct {
	digests map[string]string
	dirs    map[string]string
}

// buildImages runs the command as `make images` does, into a temp dir,
// pushing to registry when it is not empty.
func buildImages(t *testing.T, ca, registry string) built {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{
		"-repo", repo, "-version", testVersion, "-commit", testCommit,
		"-source-date-epoch", testEpoch, "-source", testSource,
		"-ca-bundle", ca, "-out", t.TempDir(),
	}
	if registry != "" {
		args = append(args, "-registry", registry)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	var out bytes.Buffer
	start := time.Now()
	if err := run(ctx, args, &out); err != nil {
		t.Fatalf("imagebuild %q: %v", args, err)
	}
	t.Logf("imagebuild took %v:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	b := built{digests: map[string]string{}, dirs: map[string]string{}}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[1] != "pushed" {
			b.digests[f[0]], b.dirs[f[0]] = f[1], f[2]
		}
	}
	if len(b.digests) != len(testDaemons) {
		t.Fatalf("imagebuild printed %d daemons, want %d:\n%s", len(b.digests), len(testDaemons), out.String())
	}
	return b
}

func TestImages(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the daemons with")
	}
	// A bundle of our own: the test must not depend on the host's.
	ca := filepath.Join(t.TempDir(), "ca.crt")
	caData := []byte("-----BEGIN CERTIFICATE-----\nnot a real certificate\n-----END CERTIFICATE-----\n")
	if err := os.WriteFile(ca, caData, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	reg := strings.TrimPrefix(srv.URL, "http://") + "/nodenet"

	first := buildImages(t, ca, "")
	second := buildImages(t, ca, reg)

	t.Run("reproducible", func(t *testing.T) {
		for _, d := range testDaemons {
			if first.digests[d] != second.digests[d] {
				t.Errorf("%s: two builds of the same source differ: %s and %s (or was the source edited between them?)", d, first.digests[d], second.digests[d])
			}
			// Byte for byte, not only the digest that names them.
			for _, f := range []string{"index.json", "oci-layout"} {
				a, errA := os.ReadFile(filepath.Join(first.dirs[d], f))
				b, errB := os.ReadFile(filepath.Join(second.dirs[d], f))
				if errA != nil || errB != nil || !bytes.Equal(a, b) {
					t.Errorf("%s: %s differs between builds (%v, %v)", d, f, errA, errB)
				}
			}
		}
	})

	t.Run("pushed", func(t *testing.T) {
		for _, d := range testDaemons {
			ref, err := name.NewTag(reg + "/" + d + ":" + testVersion)
			if err != nil {
				t.Fatal(err)
			}
			idx, err := remote.Index(ref, remote.WithContext(t.Context()))
			if err != nil {
				t.Fatalf("%s: pull: %v", d, err)
			}
			got, err := idx.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != first.digests[d] {
				t.Errorf("%s: pulled %s, built %s", d, got, first.digests[d])
			}
			// Every image and blob arrived, not only the index.
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range im.Manifests {
				img, err := idx.Image(m.Digest)
				if err != nil {
					t.Fatalf("%s %s: %v", d, m.Platform, err)
				}
				if _, err := layerEntries(img); err != nil {
					t.Errorf("%s %s: layer: %v", d, m.Platform, err)
				}
			}
		}
	})

	for _, d := range testDaemons {
		t.Run(d, func(t *testing.T) {
			idx, err := layout.ImageIndexFromPath(first.dirs[d])
			if err != nil {
				t.Fatal(err)
			}
			// The layout's top index names one entry: the daemon's index.
			top, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(top.Manifests) != 1 || top.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != testVersion {
				t.Fatalf("layout index.json: %+v", top.Manifests)
			}
			idx, err = idx.ImageIndex(top.Manifests[0].Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkIndex(t, d, idx, caData)
		})
	}
}

// wantAnnotations are the labels and annotations every image carries.
func wantAnnotations(daemon string) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":    daemon,
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.revision": testCommit,
		"org.opencontainers.image.source":   testSource,
		"org.opencontainers.image.created":  "2023-11-14T22:13:20Z",
	}
}

func checkIndex(t *testing.T, daemon string, idx v1.ImageIndex, caData []byte) {
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s", im.MediaType)
	}
	if !maps.Equal(im.Annotations, wantAnnotations(daemon)) {
		t.Errorf("index annotations %v, want %v", im.Annotations, wantAnnotations(daemon))
	}
	var platforms []string
	for _, m := range im.Manifests {
		if m.Platform == nil {
			t.Fatalf("manifest %s without platform", m.Digest)
		}
		platforms = append(platforms, m.Platform.String())
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(m.Platform.Architecture, func(t *testing.T) {
			checkImage(t, daemon, *m.Platform, img, caData)
		})
	}
	if !slices.Equal(platforms, testPlatforms) {
		t.Errorf("platforms %v, want %v", platforms, testPlatforms)
	}
}

func checkImage(t *testing.T, daemon string, p v1.Platform, img v1.Image, caData []byte) {
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types: manifest %s, config %s", m.MediaType, m.Config.MediaType)
	}
	if !maps.Equal(m.Annotations, wantAnnotations(daemon)) {
		t.Errorf("manifest annotations %v", m.Annotations)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Fatalf("layers: %+v, want one %s", m.Layers, types.OCILayer)
	}

	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	if cfg.OS != p.OS || cfg.Architecture != p.Architecture || !cfg.Created.Time.Equal(created) {
		t.Errorf("config: os %s arch %s created %v", cfg.OS, cfg.Architecture, cfg.Created)
	}
	c := cfg.Config
	if !slices.Equal(c.Entrypoint, []string{"/" + daemon}) || !slices.Equal(c.Cmd, []string{"run"}) || c.User != "0:0" {
		t.Errorf("config: entrypoint %q cmd %q user %q", c.Entrypoint, c.Cmd, c.User)
	}
	if !maps.Equal(c.Labels, wantAnnotations(daemon)) {
		t.Errorf("labels %v", c.Labels)
	}

	entries, err := layerEntries(img)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"etc/ dir 0755",
		"etc/ssl/ dir 0755",
		"etc/ssl/certs/ dir 0755",
		"etc/ssl/certs/ca-certificates.crt file 0644",
		daemon + " file 0755",
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.summary)
		if e.hdr.Uid != 0 || e.hdr.Gid != 0 || e.hdr.Uname != "" || e.hdr.Gname != "" || !e.hdr.ModTime.Equal(created) {
			t.Errorf("%s: owner %d:%d (%q:%q) mtime %v", e.hdr.Name, e.hdr.Uid, e.hdr.Gid, e.hdr.Uname, e.hdr.Gname, e.hdr.ModTime)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("layer holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !bytes.Equal(entries[3].data, caData) {
		t.Errorf("CA bundle differs from the build host's")
	}
	checkBinary(t, daemon, p, entries[4].data)
}

// checkBinary: a static ELF of the platform's machine, which runs
// `version` and prints the stamped identity when it is the host's.
func checkBinary(t *testing.T, daemon string, p v1.Platform, bin []byte) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("binary: %v", err)
	}
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[p.Architecture]
	if f.Machine != machine {
		t.Errorf("binary for %s, want %s", f.Machine, machine)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("binary is dynamically linked")
		}
	}
	if p.Architecture != runtime.GOARCH || runtime.GOOS != "linux" {
		return
	}
	path := filepath.Join(t.TempDir(), daemon)
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), path, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", daemon, err, out)
	}
	if want := testVersion + " (commit " + testCommit; !strings.Contains(string(out), want) {
		t.Errorf("%s version printed %q, want it to contain %q", daemon, out, want)
	}
}

type layerEntry struct {
	hdr     tar.Header
	summary string // "name kind mode"
	data    []byte
}

// layerEntries reads the image's single layer, in archive order.
func layerEntries(img v1.Image) ([]layerEntry, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var out []layerEntry
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		kind := map[byte]string{tar.TypeDir: "dir", tar.TypeReg: "file"}[hdr.Typeflag]
		if kind == "" {
			kind = "type-" + string(hdr.Typeflag)
		}
		summary := fmt.Sprintf("%s %s %04o", hdr.Name, kind, hdr.Mode)
		out = append(out, layerEntry{hdr: *hdr, summary: summary, data: data})
	}
}
