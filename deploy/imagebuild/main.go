// Command imagebuild builds the container images of the three daemons
// (nodenet/routerd, nodenet/proxyd, nodenet/firewalld) without a container
// engine, with github.com/google/go-containerregistry:
//
//	imagebuild -repo . -version v1.2.3 -commit <sha> -source-date-epoch <unix> \
//	    -out _output/images [-registry registry.example:5000/nodenet]
//
// Each image is one layer holding only the daemon's static binary (/<daemon>,
// CGO_ENABLED=0, cross-compiled for every platform) and the build host's CA
// bundle (/etc/ssl/certs/ca-certificates.crt, the path Go's crypto/x509
// reads, for TLS to the API server and registries behind it). The images of
// one daemon form an OCI image index (linux/amd64 and linux/arm64), written
// as an OCI image layout to <out>/<daemon>/ and, with -registry, pushed as
// <registry>/<daemon>:<version> with the default keychain (docker config,
// credential helpers).
//
// The build is reproducible: the same source, flags and Go toolchain give
// the same digests. Every time in the image (file mtimes, the config's
// created, the created annotation) is the commit time (-source-date-epoch,
// SOURCE_DATE_EPOCH in the Makefile); tar entries are sorted, owned by 0:0
// with fixed modes; the binaries are built with -trimpath, no VCS stamp, an
// empty build ID and a fixed GOAMD64/GOARM64 level.
//
// The images run as root on purpose: the daemons program the host network
// namespace (routes, IPVS, nftables, sysctls), which needs CAP_NET_ADMIN
// there, and write the CNI config and their sockets in host paths owned by
// root. A non-root user would hold CAP_NET_ADMIN only through ambient
// capabilities set up by the runtime, which not every runtime does for a
// non-root UID; root with the capability set the pod spec grants works on
// all of them.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

// run parses the flags, builds every daemon's index, writes the layouts and
// pushes when asked; it prints one line per daemon with the index digest.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	indexes, err := buildIndexes(ctx, o)
	if err != nil {
		return err
	}
	for _, d := range o.daemons {
		idx := indexes[d]
		digest, err := idx.Digest()
		if err != nil {
			return err
		}
		dir, err := writeLayout(o.out, d, o.meta.version, idx)
		if err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		fmt.Fprintf(stdout, "%s %s %s\n", d, digest, dir)
		if o.registry != "" {
			ref, err := push(ctx, o.registry, d, o.meta.version, idx, o.insecure)
			if err != nil {
				return fmt.Errorf("%s: %w", d, err)
			}
			fmt.Fprintf(stdout, "%s pushed %s\n", d, ref)
		}
	}
	return nil
}

// options is everything one build depends on.
type options struct {
	repo      string        // repository root: go.work and the daemons' modules
	daemons   []string      // names of the daemons; main package at ./<d>/cmd/<d>
	platforms []v1.Platform // one image per platform in each index
	caBundle  string        // PEM bundle copied into the image
	meta      metadata      // version, commit, source, created
	out       string        // layouts go to <out>/<daemon>/
	registry  string        // push to <registry>/<daemon>:<version> when set
	insecure  bool          // plain HTTP to the registry
}

// metadata is the identity stamped into binaries, labels and annotations.
type metadata struct {
	version string
	commit  string
	source  string    // URL of the source repository
	created time.Time // the commit time: every time in the image
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	repo := fs.String("repo", ".", "repository root (where go.work is)")
	daemons := fs.String("daemons", "routerd,proxyd,firewalld", "daemons to build, comma-separated")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "platforms of each index, comma-separated")
	ca := fs.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA certificates (PEM) to put in the images")
	version := fs.String("version", "", "version stamped into the binaries and the images (required)")
	commit := fs.String("commit", "", "commit stamped into the binaries and the images (required)")
	source := fs.String("source", "https://github.com/nodenet/nodenet", "source repository URL (org.opencontainers.image.source)")
	epoch := fs.Int64("source-date-epoch", -1, "commit time in seconds since the epoch: every timestamp in the images (required)")
	out := fs.String("out", "_output/images", "directory of the OCI image layouts, one per daemon")
	registry := fs.String("registry", "", "push to <registry>/<daemon>:<version> when set")
	insecure := fs.Bool("insecure", false, "talk plain HTTP to the registry (loopback and private addresses do already)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() != 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *version == "" || *commit == "" || *epoch < 0 {
		return options{}, fmt.Errorf("-version, -commit and -source-date-epoch are required")
	}
	o := options{
		repo:     *repo,
		daemons:  splitList(*daemons),
		caBundle: *ca,
		meta: metadata{
			version: *version,
			commit:  *commit,
			source:  *source,
			created: time.Unix(*epoch, 0).UTC(),
		},
		out:      *out,
		registry: strings.TrimSuffix(*registry, "/"),
		insecure: *insecure,
	}
	for _, p := range splitList(*platforms) {
		pl, err := v1.ParsePlatform(p)
		if err != nil {
			return options{}, err
		}
		if pl.OS != "linux" {
			return options{}, fmt.Errorf("platform %s: only linux images are built", p)
		}
		o.platforms = append(o.platforms, *pl)
	}
	if len(o.daemons) == 0 || len(o.platforms) == 0 {
		return options{}, fmt.Errorf("no daemons or no platforms")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
