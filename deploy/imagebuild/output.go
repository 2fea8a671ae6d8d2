package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// writeLayout writes a daemon's index as an OCI image layout in
// out/<daemon>/, replacing what an earlier build left there (so the
// directory holds exactly this build's blobs). The layout's index.json names
// it by version (org.opencontainers.image.ref.name), as skopeo and crane
// expect: oci:_output/images/proxyd:<version>.
func writeLayout(out, daemon, version string, idx v1.ImageIndex) (string, error) {
	dir := filepath.Join(out, daemon)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", err
	}
	err = p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": version,
	}))
	return dir, err
}

// push uploads a daemon's index (and its images and blobs) as
// <registry>/<daemon>:<version>, with credentials from the default keychain.
// It returns the pushed reference by digest.
func push(ctx context.Context, registry, daemon, version string, idx v1.ImageIndex, insecure bool) (string, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	tag, err := name.NewTag(registry+"/"+daemon+":"+version, opts...)
	if err != nil {
		return "", err
	}
	if err := remote.WriteIndex(tag, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return "", err
	}
	digest, err := idx.Digest()
	if err != nil {
		return "", err
	}
	return tag.Context().Digest(digest.String()).String(), nil
}
