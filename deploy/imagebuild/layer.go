package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// caPath is where Go's crypto/x509 looks first for the system roots on
// Debian-style systems, and where the build host keeps them.
const caPath = "etc/ssl/certs/ca-certificates.crt"

// layerFile is one regular file of the layer.
type layerFile struct {
	name string // path in the image, without the leading slash
	mode int64
	data []byte
}

// imageFiles reads what goes into a daemon's layer: the binary at /<daemon>
// (0755) and the CA bundle (0644).
func imageFiles(binary, daemon, caBundle string) ([]layerFile, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(caBundle)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w (Debian's ca-certificates; make deps installs it)", err)
	}
	return []layerFile{
		{name: daemon, mode: 0o755, data: bin},
		{name: caPath, mode: 0o644, data: ca},
	}, nil
}

// buildLayer makes the single layer of an image. Its bytes depend only on
// the files and mtime: entries sorted by name, parent directories made
// explicit (0755, so no runtime guesses their mode), owner 0:0 without
// names, one mtime for all, USTAR headers (no access or change times), and
// gzip with a zero header time and a fixed level.
func buildLayer(files []layerFile, mtime time.Time) (v1.Layer, error) {
	type entry struct {
		hdr  tar.Header
		data []byte
	}
	dirs := map[string]bool{}
	var entries []entry
	for _, f := range files {
		for d := path.Dir(f.name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			entries = append(entries, entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}})
		}
		entries = append(entries, entry{
			hdr:  tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data))},
			data: f.data,
		})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.hdr.Name, b.hdr.Name) })

	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		e.hdr.ModTime = mtime
		e.hdr.Format = tar.FormatUSTAR
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	// Handing over compressed bytes keeps go-containerregistry from
	// compressing again (with its own settings) each time it reads the layer.
	blob := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(blob)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
