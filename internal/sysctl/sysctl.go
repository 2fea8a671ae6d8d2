// Package sysctl sets kernel settings a daemon's datapath relies on,
// writing a value only when it differs (a restart writes nothing).
package sysctl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Setting is one /proc/sys entry and the value a daemon needs.
type Setting struct {
	Name  string // dotted, e.g. net.ipv4.vs.conntrack
	Value string
	Why   string
}

// Sysctl reads and writes settings under Root ("/proc/sys").
type Sysctl struct {
	Root string
}

// Apply sets each setting that differs and returns how many it wrote.
func (s Sysctl) Apply(settings []Setting) (int, error) {
	root := s.Root
	if root == "" {
		root = "/proc/sys"
	}
	writes := 0
	var errs []error
	for _, st := range settings {
		path := filepath.Join(root, strings.ReplaceAll(st.Name, ".", "/"))
		cur, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", st.Name, st.Why, err))
			continue
		}
		if strings.TrimSpace(string(cur)) == st.Value {
			continue
		}
		if err := os.WriteFile(path, []byte(st.Value), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("set %s=%s (%s): %w", st.Name, st.Value, st.Why, err))
			continue
		}
		writes++
	}
	return writes, errors.Join(errs...)
}
