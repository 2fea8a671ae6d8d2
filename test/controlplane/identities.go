package controlplane

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// Identity is who a client acts as. Each has its own static token and
// kubeconfig.
type Identity string

const (
	// Admin is in system:masters: RBAC never denies it.
	Admin Identity = "admin"
	// Routerd, Proxyd and Firewalld are the daemons' service accounts with
	// the roles of rbac.yaml.
	Routerd   Identity = "routerd"
	Proxyd    Identity = "proxyd"
	Firewalld Identity = "firewalld"
	// controllerManager is kube-controller-manager's own user, the one the
	// bootstrap RBAC policy grants what it needs to mint its controllers'
	// service-account credentials.
	controllerManager Identity = "kube-controller-manager"
)

// DaemonNamespace is where rbac.yaml puts the daemons' service accounts.
const DaemonNamespace = "kube-system"

// Daemons are the daemon identities, in a fixed order.
func Daemons() []Identity { return []Identity{Routerd, Proxyd, Firewalld} }

func identities() []Identity {
	return append([]Identity{Admin, controllerManager}, Daemons()...)
}

// user is the identity's user name and groups as the apiserver sees them.
// The daemons authenticate as their service accounts' user names, so the
// ClusterRoleBindings of rbac.yaml (subjects: ServiceAccount) apply to them
// exactly as they will to the real pods.
func (id Identity) user() (name string, groups []string) {
	switch id {
	case Admin:
		return "nodenet-admin", []string{"system:masters"}
	case controllerManager:
		return "system:kube-controller-manager", nil
	default:
		return ServiceAccountUser(id), []string{"system:serviceaccounts", "system:serviceaccounts:" + DaemonNamespace}
	}
}

// ServiceAccountUser is the user name of a daemon's service account
// (system:serviceaccount:kube-system:nodenet-<daemon>).
func ServiceAccountUser(id Identity) string {
	return "system:serviceaccount:" + DaemonNamespace + ":nodenet-" + string(id)
}

// newTokens gives every identity a fresh random bearer token.
func newTokens() (map[Identity]string, error) {
	tokens := map[Identity]string{}
	for _, id := range identities() {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		tokens[id] = hex.EncodeToString(b)
	}
	return tokens, nil
}

// writeTokenFile writes the apiserver's --token-auth-file: CSV lines of
// token,user,uid[,"group1,group2"].
func writeTokenFile(path string, tokens map[Identity]string) error {
	var b strings.Builder
	for _, id := range identities() {
		name, groups := id.user()
		fmt.Fprintf(&b, "%s,%s,%s", tokens[id], name, "uid-"+string(id))
		if len(groups) > 0 {
			fmt.Fprintf(&b, ",%q", strings.Join(groups, ","))
		}
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}
