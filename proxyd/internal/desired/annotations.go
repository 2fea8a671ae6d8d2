package desired

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// SchedulerAnnotation chooses the IPVS scheduler of a Service.
const SchedulerAnnotation = "nodenet.io/ipvs-scheduler"

// The scheduling algorithms of the Linux IPVS modules proxyd may ask for.
var schedulers = map[string]bool{
	"rr": true, "wrr": true, "lc": true, "wlc": true, "sh": true,
	"dh": true, "mh": true, "sed": true, "nq": true,
}

// ValidScheduler reports whether name is a scheduler proxyd programs.
func ValidScheduler(name string) bool { return schedulers[name] }

// scheduler returns the Service's scheduler and, for a bad annotation, why
// it fell back to the default.
func scheduler(svc *corev1.Service, def string) (string, error) {
	v, ok := svc.Annotations[SchedulerAnnotation]
	if !ok {
		return def, nil
	}
	name := strings.ToLower(strings.TrimSpace(v))
	if !schedulers[name] {
		return def, fmt.Errorf("annotation %s=%q is not one of rr, wrr, lc, wlc, sh, dh, mh, sed, nq; using %s", SchedulerAnnotation, v, def)
	}
	return name, nil
}

// defaultAffinityTimeout is Kubernetes' default for sessionAffinity ClientIP.
const defaultAffinityTimeout = 10800

// persistence returns the IPVS persistence timeout in seconds (0: none).
func persistence(svc *corev1.Service) uint32 {
	if svc.Spec.SessionAffinity != corev1.ServiceAffinityClientIP {
		return 0
	}
	if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
		return uint32(*c.ClientIP.TimeoutSeconds)
	}
	return defaultAffinityTimeout
}

// sourceRangesAnnotation is the older spelling of loadBalancerSourceRanges,
// used when the field is empty.
const sourceRangesAnnotation = "service.beta.kubernetes.io/load-balancer-source-ranges"

// sourceRanges parses the LoadBalancer source ranges. Invalid entries are
// reported and dropped, which only narrows who may connect.
func sourceRanges(svc *corev1.Service) ([]netip.Prefix, []error) {
	raw := svc.Spec.LoadBalancerSourceRanges
	if len(raw) == 0 {
		if v := svc.Annotations[sourceRangesAnnotation]; v != "" {
			raw = strings.Split(v, ",")
		}
	}
	var out []netip.Prefix
	var errs []error
	for _, r := range raw {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		p, err := netip.ParsePrefix(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("loadBalancerSourceRanges: %q is not a CIDR", r))
			continue
		}
		out = append(out, p.Masked())
	}
	return out, errs
}
