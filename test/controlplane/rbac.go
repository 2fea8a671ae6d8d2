package controlplane

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
)

// rbacManifest is the daemons' RBAC: the Helm chart's, rendered for
// kube-system (test/chart checks it is current).
//
//go:embed rbac.yaml
var rbacManifest []byte

// applyRBAC creates the objects of rbac.yaml.
func applyRBAC(ctx context.Context, c kubernetes.Interface) error {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(rbacManifest)))
	decode := scheme.Codecs.UniversalDeserializer().Decode
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("rbac.yaml: %w", err)
		}
		if onlyComments(doc) {
			continue
		}
		obj, gvk, err := decode(doc, nil, nil)
		if err != nil {
			return fmt.Errorf("rbac.yaml: %w", err)
		}
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			_, err = c.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			_, err = c.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			_, err = c.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.Role:
			_, err = c.RbacV1().Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			_, err = c.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			return fmt.Errorf("rbac.yaml: %s is not a kind the test control plane applies", gvk)
		}
		if err != nil {
			return fmt.Errorf("rbac.yaml: create %s: %w", gvk.Kind, err)
		}
	}
}

// onlyComments reports whether a YAML document holds no object (the file's
// header before the first ---).
func onlyComments(doc []byte) bool {
	for line := range strings.Lines(string(doc)) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") && line != "---" {
			return false
		}
	}
	return true
}
