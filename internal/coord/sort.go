package coord

import (
	"cmp"
	"slices"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
)

// sortedVIPs returns the VIPs in key order, so messages are deterministic.
func sortedVIPs(m map[VIPKey]*nodev1.ServiceVIP) []*nodev1.ServiceVIP {
	keys := make([]VIPKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	out := make([]*nodev1.ServiceVIP, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

func compareKeys(a, b VIPKey) int {
	return cmp.Or(cmp.Compare(a.IP, b.IP), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
}
