package controlplane

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"testing"
)

// The serving certificate names loopback, the kubernetes Service's IP and
// the extra addresses (a VM's forward), and the CA verifies it for each.
func TestServingCertificateNamesExtraIPs(t *testing.T) {
	forward := net.IPv4(198, 19, 254, 100)
	p, err := newPKI(t.TempDir(), kubernetesServiceIP(), forward)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p.certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM block", p.certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.caPEM) {
		t.Fatal("CA certificate not parsed")
	}
	for _, name := range []string{"127.0.0.1", "::1", kubernetesServiceIP().String(), forward.String(), "kubernetes.default.svc"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "198.19.254.101"}); err == nil {
		t.Error("serving certificate valid for an address it was not given")
	}
}
