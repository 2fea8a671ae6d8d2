package controller

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/nodenet/nodenet/proxyd/internal/desired"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"k8s.io/apimachinery/pkg/types"
)

// store is the merged desired state, kept up to date one Service at a
// time: replacing a Service's result costs in proportion to that Service,
// not to the cluster, which is what keeps an endpoint change fast at
// thousands of Services. It gives the same answer as desired.Merge over all
// results: a virtual service (or health check port) claimed by several
// Services belongs to the first in namespace/name order.
type store struct {
	results map[types.NamespacedName]desired.ServiceResult
	claims  map[model.VSKey][]*model.VirtualService
	checks  map[uint16][]model.HealthCheck
}

func newStore() *store {
	return &store{
		results: map[types.NamespacedName]desired.ServiceResult{},
		claims:  map[model.VSKey][]*model.VirtualService{},
		checks:  map[uint16][]model.HealthCheck{},
	}
}

func compareNames(a, b types.NamespacedName) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
}

// set replaces the result of Service key (nil: the Service is gone) and
// adds to changed the virtual services whose winner may have changed.
func (s *store) set(key types.NamespacedName, res *desired.ServiceResult, changed map[model.VSKey]bool) {
	if old, ok := s.results[key]; ok {
		for _, vs := range old.Services {
			s.unclaim(key, vs.VSKey)
			changed[vs.VSKey] = true
		}
		if hc := old.HealthCheck; hc != nil {
			s.checks[hc.Port] = slices.DeleteFunc(s.checks[hc.Port], func(c model.HealthCheck) bool { return c.Service == key })
			if len(s.checks[hc.Port]) == 0 {
				delete(s.checks, hc.Port)
			}
		}
		delete(s.results, key)
	}
	if res == nil {
		return
	}
	s.results[key] = *res
	for _, vs := range res.Services {
		cl := s.claims[vs.VSKey]
		i, _ := slices.BinarySearchFunc(cl, key, func(v *model.VirtualService, k types.NamespacedName) int { return compareNames(v.Service, k) })
		s.claims[vs.VSKey] = slices.Insert(cl, i, vs)
		changed[vs.VSKey] = true
	}
	if hc := res.HealthCheck; hc != nil {
		cl := s.checks[hc.Port]
		i, _ := slices.BinarySearchFunc(cl, key, func(c model.HealthCheck, k types.NamespacedName) int { return compareNames(c.Service, k) })
		s.checks[hc.Port] = slices.Insert(cl, i, *hc)
	}
}

func (s *store) unclaim(key types.NamespacedName, vk model.VSKey) {
	cl := slices.DeleteFunc(s.claims[vk], func(v *model.VirtualService) bool { return v.Service == key })
	if len(cl) == 0 {
		delete(s.claims, vk)
		return
	}
	s.claims[vk] = cl
}

// winner is the virtual service wanted for k (nil: none).
func (s *store) winner(k model.VSKey) *model.VirtualService {
	if cl := s.claims[k]; len(cl) > 0 {
		return cl[0]
	}
	return nil
}

// state renders the whole merged state, sorted.
func (s *store) state() model.State {
	st := model.State{Services: make([]*model.VirtualService, 0, len(s.claims))}
	for _, cl := range s.claims {
		st.Services = append(st.Services, cl[0])
	}
	for _, cl := range s.checks {
		st.HealthChecks = append(st.HealthChecks, cl[0])
	}
	slices.SortFunc(st.Services, func(a, b *model.VirtualService) int { return a.VSKey.Compare(b.VSKey) })
	slices.SortFunc(st.HealthChecks, func(a, b model.HealthCheck) int { return cmp.Compare(a.Port, b.Port) })
	return st
}

// problems are the Services' own problems plus the lost claims.
func (s *store) problems() []desired.Problem {
	var out []desired.Problem
	for _, r := range s.results {
		out = append(out, r.Problems...)
	}
	for k, cl := range s.claims {
		for _, loser := range cl[1:] {
			out = append(out, desired.Problem{Kind: "Service", Object: loser.Service, Reason: "DuplicateVIP",
				Message: fmt.Sprintf("%s is already used by %s port %q", k, cl[0].Service, cl[0].PortName)})
		}
	}
	for port, cl := range s.checks {
		for _, loser := range cl[1:] {
			out = append(out, desired.Problem{Kind: "Service", Object: loser.Service, Reason: "DuplicateHealthCheckPort",
				Message: fmt.Sprintf("healthCheckNodePort %d is already used by %s", port, cl[0].Service)})
		}
	}
	return out
}

// healthChecks are the health checks in force, by port.
func (s *store) healthChecks() []model.HealthCheck {
	out := make([]model.HealthCheck, 0, len(s.checks))
	for _, cl := range s.checks {
		out = append(out, cl[0])
	}
	slices.SortFunc(out, func(a, b model.HealthCheck) int { return cmp.Compare(a.Port, b.Port) })
	return out
}
