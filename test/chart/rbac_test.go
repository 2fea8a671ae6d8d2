package chart

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodenet/nodenet/test/binaries"
)

// rbacHeader opens test/controlplane/rbac.yaml.
const rbacHeader = `# Code generated from the Helm chart by (cd test/chart && GOWORK=off go test . -run TestRBACGolden -update). DO NOT EDIT.
#
# The RBAC of the nodenet daemons, rendered from the Helm chart
# (deploy/helm/nodenet, templates/rbac-*.yaml) for namespace kube-system and
# release nodenet: per daemon a ServiceAccount, a ClusterRole with what it
# reads and writes and the binding between them (routerd also reads the
# Secrets of its namespace). The test control plane (test/controlplane)
# applies this file and acts as these service accounts, so the tests run
# with exactly what the chart grants.
`

// TestRBACGolden checks that test/controlplane/rbac.yaml is the chart's
// RBAC rendered, or rewrites it with -update.
func TestRBACGolden(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Render(c, Values(map[string]any{}))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(rbacHeader)
	n := 0
	for _, doc := range Documents(r.Manifest) {
		if strings.HasPrefix(doc, "# Source: nodenet/templates/rbac-") {
			b.WriteString("---\n" + doc)
			n++
		}
	}
	// A ServiceAccount, ClusterRole and ClusterRoleBinding per daemon,
	// and routerd's Role and RoleBinding.
	if n != 3*3+2 {
		t.Errorf("%d RBAC objects rendered, want 11", n)
	}
	root, err := binaries.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join(root, "test", "controlplane", "rbac.yaml"), b.String())
	if strings.Contains(b.String(), "kind: Secret\n") {
		t.Error("rbac.yaml holds a Secret")
	}
}
