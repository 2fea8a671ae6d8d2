// Package chart tests the Helm chart deploy/helm/nodenet with Helm as a
// library (no helm binary): lint and render every subset of daemons in both
// layouts against golden files, the guards that refuse impossible values,
// that upgrading one daemon's image changes only that container, that
// test/controlplane/rbac.yaml is the chart's RBAC rendered, and (with the
// test control plane built) that the API server accepts every rendered
// object in a server-side dry run.
//
// `cd test/chart && GOWORK=off go test . -update` rewrites the golden files and rbac.yaml.
package chart
