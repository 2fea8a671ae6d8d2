package chart

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint/support"

	"github.com/nodenet/nodenet/test/binaries"
)

// What every render and lint uses, as the tests' cluster is: the release
// name the test control plane's identities assume (nodenet-<daemon>
// service accounts), its namespace and its Kubernetes version.
const (
	ReleaseName = "nodenet"
	Namespace   = "kube-system"
	KubeVersion = "v1.37.2"
)

// Daemons are the chart's daemons, in the chart's order.
var Daemons = []string{"routerd", "proxyd", "firewalld"}

// Dir is the chart's directory in the repository.
func Dir() (string, error) {
	root, err := binaries.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "deploy", "helm", "nodenet"), nil
}

// Load reads the chart from the repository.
func Load() (*chart.Chart, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	return loader.Load(dir)
}

// Rendered is one render: the manifest (documents in Helm's install
// order, each after a "# Source:" line) and NOTES.txt.
type Rendered struct {
	Manifest string
	Notes    string
}

// Render renders the chart as `helm template` does (install action,
// client only, dry run) with vals over values.yaml.
func Render(c *chart.Chart, vals map[string]any) (Rendered, error) {
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun, install.ClientOnly, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = ReleaseName, Namespace
	kv, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		return Rendered{}, err
	}
	install.KubeVersion = kv
	rel, err := install.Run(c, vals)
	if err != nil {
		return Rendered{}, err
	}
	return Rendered{Manifest: rel.Manifest, Notes: rel.Info.Notes}, nil
}

// Lint runs Helm's linter (strict: warnings count) with vals and returns
// its findings at warning level and above as one error.
func Lint(vals map[string]any) error {
	dir, err := Dir()
	if err != nil {
		return err
	}
	l := action.NewLint()
	l.Strict, l.Namespace = true, Namespace
	kv, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		return err
	}
	l.KubeVersion = kv
	res := l.Run([]string{dir}, vals)
	var problems []string
	for _, e := range res.Errors {
		problems = append(problems, e.Error())
	}
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			problems = append(problems, m.Error())
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("helm lint: %s", strings.Join(slices.Compact(problems), "; "))
	}
	return nil
}

// Documents splits a manifest into its documents, in order, dropping empty
// ones.
func Documents(manifest string) []string {
	var docs []string
	for _, d := range separator.Split(manifest, -1) {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, strings.TrimPrefix(d, "\n"))
		}
	}
	return docs
}

var separator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// Values builds a values map from dotted keys ("proxyd.image.tag"), as
// --set does for plain values.
func Values(kv map[string]any) map[string]any {
	vals := map[string]any{}
	for k, v := range kv {
		m := vals
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	return vals
}
