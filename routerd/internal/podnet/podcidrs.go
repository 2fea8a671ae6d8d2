package podnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
)

// isConfFile reports whether a container runtime loads the file name from
// its CNI config directory (containerd's go-cni and CRI-O's ocicni: .conf,
// .conflist and .json).
func isConfFile(name string) bool {
	switch filepath.Ext(name) {
	case ".conf", ".conflist", ".json":
		return true
	}
	return false
}

// cniFile is what PodCIDRsFromCNI reads of a config file: a network list
// (plugins) or, in a .conf, a single plugin's config (type, ipam).
type cniFile struct {
	Plugins []json.RawMessage `json:"plugins"`
	pluginConf
}

type pluginConf struct {
	Type string    `json:"type"`
	IPAM *ipamRead `json:"ipam"`
}

// ipamRead is host-local's config: ranges (a list of range sets), or the
// single range of old configs (subnet), which host-local puts first.
type ipamRead struct {
	Type   string `json:"type"`
	Subnet string `json:"subnet"`
	Ranges [][]struct {
		Subnet string `json:"subnet"`
	} `json:"ranges"`
}

// PodCIDRsFromCNI returns the pod CIDRs of the CNI config the container
// runtime uses in dir: the subnets of host-local IPAM (in any plugin) of
// the first well-formed config file in lexical order, the file a runtime
// picks. It is routerd's fallback when the Node has no spec.podCIDRs (a
// node whose network someone else configured), and reads routerd's own
// file as well.
//
// A file that is not a config (bad JSON, a list without plugins, a plugin
// without a type) is skipped, as runtimes skip it, and reported: the error
// names every such file, and may come with the pod CIDRs of a later file.
// A subnet that is not a network address is reported and left out. No
// config, or a first config without host-local, gives no pod CIDR; a
// missing dir is no error.
func PodCIDRsFromCNI(dir string) ([]netip.Prefix, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("CNI config directory: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !isConfFile(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		cidrs, err := podCIDRsOfFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("CNI config %s: %w", path, err))
			if cidrs == nil {
				continue // not a config: the runtime goes on to the next file
			}
		}
		if len(cidrs) == 0 {
			cidrs = nil
		}
		return cidrs, errors.Join(errs...)
	}
	return nil, errors.Join(errs...)
}

// podCIDRsOfFile returns the host-local subnets of one config file, a
// non-nil (possibly empty) slice when the file is a config. An error with
// a non-nil slice reports subnets left out.
func podCIDRsOfFile(path string) ([]netip.Prefix, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f cniFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	var plugins []pluginConf
	switch {
	case f.Plugins != nil:
		if len(f.Plugins) == 0 {
			return nil, errors.New("no plugins in the list")
		}
		for i, raw := range f.Plugins {
			var p pluginConf
			if err := json.Unmarshal(raw, &p); err != nil {
				return nil, fmt.Errorf("plugin %d: %w", i, err)
			}
			if p.Type == "" {
				return nil, fmt.Errorf("plugin %d has no type", i)
			}
			plugins = append(plugins, p)
		}
	case filepath.Ext(path) == ".conflist":
		return nil, errors.New("no plugins in the list")
	case f.Type == "":
		return nil, errors.New("no plugin type")
	default:
		plugins = []pluginConf{f.pluginConf}
	}
	out := []netip.Prefix{}
	var errs []error
	for _, p := range plugins {
		if p.IPAM == nil || p.IPAM.Type != "host-local" {
			continue
		}
		subnets := []string{}
		if p.IPAM.Subnet != "" {
			subnets = append(subnets, p.IPAM.Subnet)
		}
		for _, set := range p.IPAM.Ranges {
			for _, r := range set {
				subnets = append(subnets, r.Subnet)
			}
		}
		for _, s := range subnets {
			pfx, err := netip.ParsePrefix(s)
			if err == nil && pfx.Masked() != pfx {
				err = fmt.Errorf("%s has host bits set", s)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("plugin %s: subnet: %w", p.Type, err))
				continue
			}
			if !slices.Contains(out, pfx) {
				out = append(out, pfx)
			}
		}
	}
	return out, errors.Join(errs...)
}
