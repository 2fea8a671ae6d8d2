package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// versionPkg is where the Makefile's LDFLAGS stamp the version and commit.
const versionPkg = "github.com/nodenet/nodenet/internal/version"

// goBuild cross-compiles every daemon for one platform into dir/<daemon>, in
// one go build so the packages they share compile once. The Go build cache
// makes a second build of the same source nearly free.
func goBuild(ctx context.Context, o options, p v1.Platform, dir string) error {
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return err
	}
	ldflags := fmt.Sprintf("-s -w -buildid= -X %s.Version=%s -X %s.Commit=%s",
		versionPkg, o.meta.version, versionPkg, o.meta.commit)
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", dir + string(filepath.Separator)}
	for _, d := range o.daemons {
		args = append(args, "./"+d+"/cmd/"+d)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	// Later entries win over the caller's environment. Everything that
	// changes the output is fixed here: static binaries (no libc in the
	// image), the baseline instruction set (the image runs on any CPU of
	// the architecture; a GOAMD64=v3 left in a developer's environment would
	// change the digest), no GOFLAGS from outside, the workspace of repo.
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0",
		"GOOS="+p.OS,
		"GOARCH="+p.Architecture,
		"GOAMD64=v1",
		"GOARM64=v8.0",
		"GOFLAGS=",
		"GOWORK="+filepath.Join(repo, "go.work"),
	)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s: %w", p, err)
	}
	return nil
}
