{{/*
nodenet.validate fails the render for combinations that cannot work.
values.schema.json has already checked each value's type and range; these
are the rules that span values.
*/}}
{{- define "nodenet.validate" -}}
{{- $on := include "nodenet.enabled" . -}}
{{- if not $on -}}
{{- fail "nodenet: no daemon is enabled: set at least one of routerd.enabled, proxyd.enabled, firewalld.enabled" -}}
{{- end -}}
{{- if .Values.routerd.enabled -}}
{{- range $i, $p := .Values.routerd.peers -}}
{{- if not $p.asn -}}
{{- fail (printf "nodenet: routerd.peers[%d] (address %v) has no asn: an external BGP peer needs its AS number" $i $p.address) -}}
{{- end -}}
{{- end -}}
{{- if and (eq (toString .Values.routerd.waitForFirewalld) "true") (not .Values.firewalld.enabled) -}}
{{- fail "nodenet: routerd.waitForFirewalld is true but firewalld is disabled: routerd would never write the CNI config (use auto)" -}}
{{- end -}}
{{- end -}}
{{/* hostNetwork: every enabled daemon's metrics port is a port of the node. */}}
{{- $ports := dict -}}
{{- range $d := compact (splitList "," $on) -}}
{{- $port := toString (index $.Values $d).metricsPort -}}
{{- if hasKey $ports $port -}}
{{- fail (printf "nodenet: %s.metricsPort %s is also %s's: the pods share the node's network namespace" $d $port (get $ports $port)) -}}
{{- end -}}
{{- $_ := set $ports $port $d -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled (hasPrefix "127." .Values.metricsBindAddress) -}}
{{- fail "nodenet: serviceMonitor.enabled needs metricsBindAddress 0.0.0.0: Prometheus cannot scrape the node's loopback" -}}
{{- end -}}
{{- end -}}
