package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
)

// startEtcd starts a single-member etcd on loopback with its data in dir and
// returns it with its client URL once /health answers.
func (cp *ControlPlane) startEtcd(ctx context.Context) (*process, string, error) {
	var clientURL string
	p, err := startWithRetry(func() (*process, error) {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		// A fresh data dir per attempt: one that an attempt bootstrapped
		// remembers that attempt's peer URL.
		dataDir := filepath.Join(cp.Dir, "etcd-data")
		if err := os.RemoveAll(dataDir); err != nil {
			return nil, err
		}
		clientURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		args := []string{
			"--name=nodenet-test",
			"--data-dir=" + dataDir,
			"--listen-client-urls=" + clientURL,
			"--advertise-client-urls=" + clientURL,
			"--listen-peer-urls=" + peerURL,
			"--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=nodenet-test=" + peerURL,
			// The data dies with the test: durability only costs time.
			"--unsafe-no-fsync=true",
			"--log-level=warn",
		}
		p, err := cp.spawner.start("etcd", cp.bins["etcd"], filepath.Join(cp.Dir, "etcd.log"), args, cp.env())
		if err != nil {
			return nil, err
		}
		if err := waitReady(ctx, p, func(ctx context.Context) error {
			return getOK(ctx, http.DefaultClient, clientURL+"/health", "")
		}); err != nil {
			p.stop(0)
			return nil, err
		}
		return p, nil
	})
	return p, clientURL, err
}
