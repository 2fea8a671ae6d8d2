package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// buildIndexes cross-compiles the daemons and returns each one's image index
// (one image per platform, in the order of o.platforms).
func buildIndexes(ctx context.Context, o options) (map[string]v1.ImageIndex, error) {
	tmp, err := os.MkdirTemp("", "imagebuild-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	addenda := map[string][]mutate.IndexAddendum{}
	for _, p := range o.platforms {
		dir := filepath.Join(tmp, p.OS+"_"+p.Architecture+"_"+p.Variant)
		if err := goBuild(ctx, o, p, dir); err != nil {
			return nil, err
		}
		for _, d := range o.daemons {
			files, err := imageFiles(filepath.Join(dir, d), d, o.caBundle)
			if err != nil {
				return nil, err
			}
			img, err := daemonImage(d, p, files, o.meta)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", d, p, err)
			}
			addenda[d] = append(addenda[d], mutate.IndexAddendum{
				Add:        img,
				Descriptor: v1.Descriptor{Platform: &p},
			})
		}
	}
	indexes := map[string]v1.ImageIndex{}
	for _, d := range o.daemons {
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		idx = mutate.AppendManifests(idx, addenda[d]...)
		indexes[d] = mutate.Annotations(idx, annotations(d, o.meta)).(v1.ImageIndex)
	}
	return indexes, nil
}

// daemonImage is one platform's image of a daemon: the single layer, and a
// config that runs `/<daemon> run` as root (see the package comment for why
// root).
func daemonImage(daemon string, p v1.Platform, files []layerFile, m metadata) (v1.Image, error) {
	layer, err := buildLayer(files, m.created)
	if err != nil {
		return nil, err
	}
	cfg := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      v1.Time{Time: m.created},
		Config: v1.Config{
			Entrypoint: []string{"/" + daemon},
			Cmd:        []string{"run"},
			User:       "0:0",
			WorkingDir: "/",
			Labels:     annotations(daemon, m),
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), cfg)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: m.created},
			CreatedBy: "nodenet imagebuild: /" + daemon + " and /" + caPath,
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, annotations(daemon, m)).(v1.Image), nil
}

// annotations are the pre-defined OCI keys, used both as config labels
// (what `docker inspect` and most registries' UIs show) and as manifest and
// index annotations (what OCI tools read without fetching the config).
func annotations(daemon string, m metadata) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":    daemon,
		"org.opencontainers.image.version":  m.version,
		"org.opencontainers.image.revision": m.commit,
		"org.opencontainers.image.source":   m.source,
		"org.opencontainers.image.created":  m.created.Format(time.RFC3339),
	}
}
