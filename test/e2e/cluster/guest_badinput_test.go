//go:build e2eguest

package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodenet/nodenet/test/e2e/harness"
	"github.com/nodenet/nodenet/test/netns"
)

// The bad input of scenario 6. The API server refuses malformed addresses
// and CIDRs in Services and NetworkPolicies (the test checks it does), so
// none of those reaches a daemon through it; the daemons' own handling of
// them is unit-tested (proxyd/internal/desired, firewalld/internal/policy).
// What the API does let through, and a daemon cannot use, is evented on
// its object and skipped: an external IP of a family the Service has no
// ClusterIP of, an unknown IPVS scheduler in an annotation, a
// non-numeric ASN in a Node annotation (annotations are never validated).
var (
	malformedIP    = "198.018.064.020" // leading zeros: octal to some parsers
	malformedCIDR  = "198.018.0.0/16"
	otherFamilyIP  = "2001:db8::20" // documentation range; no traffic goes to it
	goodExternalIP = netip.MustParseAddr("198.18.64.21")
	badScheduler   = "fastest"
	badASN         = "sixty-four thousand"
)

// testBadInput: a Service and a policy with malformed addresses, refused
// by the API; a Service with an external IP of the wrong family and an
// unknown scheduler beside a good external IP; a Node with a malformed ASN
// annotation. Each thing a daemon reads and cannot use is evented on its
// object by every daemon that reads it, and everything else keeps working:
// the good external IP is advertised and served, round robin with the
// default scheduler; the node keeps its BGP sessions and its pods their
// routes; every daemon stays healthy with its syncs succeeding.
func (c *cluster) testBadInput(t *testing.T) {
	const ns = "bad"
	c.createNamespace(t, ns)
	app := map[string]string{"app": "tough"}
	pods := c.createPods(t, ns, []podSpec{
		{name: "tough-0", node: 0, labels: app, serve: true},
		{name: "tough-1", node: 2, labels: app, serve: true},
		{name: "bad-client", node: 1},
	})
	port := []corev1.ServicePort{{Name: "echo", Port: servicePort, TargetPort: intstr.FromInt32(echoPort), Protocol: corev1.ProtocolTCP}}

	t.Run("refused-by-the-api", func(t *testing.T) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "malformed"},
			Spec:       corev1.ServiceSpec{Selector: app, ExternalIPs: []string{malformedIP}, Ports: port},
		}
		_, err := c.admin.CoreV1().Services(ns).Create(ctxFor(t, opTimeout), svc, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) {
			t.Errorf("a Service with the external IP %q: %v, want refused as invalid", malformedIP, err)
		}
		np := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "malformed"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: app},
				Ingress: []networkingv1.NetworkPolicyIngressRule{
					{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: malformedCIDR}}}},
				},
			},
		}
		_, err = c.admin.NetworkingV1().NetworkPolicies(ns).Create(ctxFor(t, opTimeout), np, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) {
			t.Errorf("a policy with the ipBlock %q: %v, want refused as invalid", malformedCIDR, err)
		}
		t.Logf("the API server refuses the external IP %s and the ipBlock %s: no daemon ever sees them", malformedIP, malformedCIDR)
	})

	t.Run("service-with-unusable-parts", func(t *testing.T) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tough",
				Annotations: map[string]string{"nodenet.io/ipvs-scheduler": badScheduler}},
			Spec: corev1.ServiceSpec{Selector: app, ExternalIPs: []string{otherFamilyIP, goodExternalIP.String()}, Ports: port},
		}
		svc, err := c.admin.CoreV1().Services(ns).Create(ctxFor(t, opTimeout), svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("the API server refused the Service: %v", err)
		}
		for _, n := range c.nodes {
			c.waitEvent(t, "Service", ns, svc.Name, "IPFamilyMismatch", "proxyd", n.Name)
			c.waitEvent(t, "Service", ns, svc.Name, "InvalidScheduler", "proxyd", n.Name)
		}
		// The good external IP is programmed on every node and advertised
		// by each (externalTrafficPolicy Cluster), and served round robin
		// (the default scheduler).
		c.bird.waitAdvertisers(t, hostPrefix(goodExternalIP), c.nodeNames()...)
		c.viaRoute(t, hostPrefix(goodExternalIP), c.nodes[1].IP)
		eip := netip.AddrPortFrom(goodExternalIP, servicePort)
		backends := []*netns.Pod{pods["tough-0"], pods["tough-1"]}
		waitAllBackends(t, c.world.NetNS, eip, backends)
		waitAllBackends(t, pods["bad-client"].NetNS, vip(svc), backends)
		first, second := dial(t, pods["bad-client"].NetNS, vip(svc)), dial(t, pods["bad-client"].NetNS, vip(svc))
		if first.Name == second.Name {
			t.Errorf("two connections to %s both went to %s: not round robin", vip(svc), first.Name)
		}
		t.Logf("%s (of no family of the Service) and scheduler %q evented by every proxyd; %s advertised by every node and served round robin",
			otherFamilyIP, badScheduler, goodExternalIP)
	})

	t.Run("node-with-malformed-asn", func(t *testing.T) {
		n := c.nodes[2]
		c.annotateNode(t, n.Name, badASN)
		t.Cleanup(func() { c.annotateNode(t, n.Name, "") })
		// Every routerd reads every Node's ASN (to peer with it).
		for _, m := range c.nodes {
			c.waitEvent(t, "Node", metav1.NamespaceDefault, n.Name, "InvalidBGPAnnotation", "routerd", m.Name)
		}
		// The node keeps the default ASN: its sessions stay up, its pod
		// CIDR stays advertised, its pods reached.
		for i := range c.nodes {
			c.waitBack(t, c.daemons[i]["routerd"])
		}
		c.bird.waitAdvertisers(t, n.PodCIDR, n.Name)
		if a, err := reach(t.Context(), pods["bad-client"].NetNS, podAddr(pods["tough-1"])); err != nil || a.Name != "tough-1" {
			t.Fatalf("bad-client (node1) to tough-1 on node2: %v, %v", a.Name, err)
		}
		t.Logf("%s's ASN %q evented by every routerd; its sessions, routes and pods unaffected", n.Name, badASN)
	})

	// Nothing of it made a daemon unhealthy or its syncs fail.
	for i, n := range c.nodes {
		for _, name := range daemonNames {
			r, err := c.daemons[i][name].Status(ctxFor(t, opTimeout))
			if err != nil {
				t.Fatal(err)
			}
			if !r.Serving() || r.Status.Sync.LastError != "" {
				t.Errorf("%s on %s: health %s, last sync error %q", name, n.Name, r.Health, r.Status.Sync.LastError)
			}
		}
	}
}

// waitEvent waits for a Warning event with reason on an object, from
// component (a daemon) on host (a node).
func (c *cluster) waitEvent(t *testing.T, kind, namespace, name, reason, component, host string) {
	t.Helper()
	sel := fields.Set{"involvedObject.kind": kind, "involvedObject.name": name, "reason": reason,
		"source": component, "type": corev1.EventTypeWarning}.AsSelector().String()
	harness.Eventually(t, convergeTimeout, pollInterval, fmt.Sprintf("%s event on %s %s/%s from %s on %s", reason, kind, namespace, name, component, host), func() (bool, string) {
		ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
		defer cancel()
		evs, err := c.admin.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			if e.Source.Host == host {
				return true, ""
			}
			seen = append(seen, fmt.Sprintf("%s: %s", e.Source.Host, e.Message))
		}
		return false, "events from other hosts: " + strings.Join(seen, "; ")
	})
}

// annotateNode sets the ASN annotation of a Node ("" removes it).
func (c *cluster) annotateNode(t *testing.T, node, asn string) {
	t.Helper()
	value := "null"
	if asn != "" {
		value = fmt.Sprintf("%q", asn)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"nodenet.io/bgp-asn":%s}}}`, value)
	if _, err := c.admin.CoreV1().Nodes().Patch(ctxFor(t, opTimeout), node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("annotate node %s: %v", node, err)
	}
}

// nodeNames are the names of the cluster's nodes, sorted as BIRD's
// advertisers are.
func (c *cluster) nodeNames() []string {
	var names []string
	for _, n := range c.nodes {
		names = append(names, n.Name)
	}
	return names
}
