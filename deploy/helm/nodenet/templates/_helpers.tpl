{{/*
Names, labels and the derived lists every template shares. Derived values
are computed here once, so the DaemonSet templates and the guards agree.
*/}}

{{/* nodenet.fullname: the release name, prefixed with the chart's unless it contains it. */}}
{{- define "nodenet.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* nodenet.daemons: every daemon, in a fixed order, as a comma list. */}}
{{- define "nodenet.daemons" -}}routerd,proxyd,firewalld{{- end -}}

{{/* nodenet.enabled: the enabled daemons, in the fixed order, as a comma list. */}}
{{- define "nodenet.enabled" -}}
{{- $on := list -}}
{{- range $d := splitList "," (include "nodenet.daemons" .) -}}
{{- if (index $.Values $d).enabled -}}{{- $on = append $on $d -}}{{- end -}}
{{- end -}}
{{- join "," $on -}}
{{- end -}}

{{/*
nodenet.peers: the other enabled daemons of the node, for --peers. The
daemons default to the other two; a disabled one must leave the list, or
its peers would wait for its socket (routerd would hold back the CNI config
for a firewalld that never comes).
*/}}
{{- define "nodenet.peers" -}}
{{- $peers := list -}}
{{- range $d := compact (splitList "," (include "nodenet.enabled" .root)) -}}
{{- if ne $d $.daemon -}}{{- $peers = append $peers $d -}}{{- end -}}
{{- end -}}
{{- join "," $peers -}}
{{- end -}}

{{/* nodenet.labels: the labels of every object. */}}
{{- define "nodenet.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* nodenet.selectorLabels: what a DaemonSet selects its pods by (immutable: no version in it). */}}
{{- define "nodenet.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* nodenet.serviceAccount: a daemon's ServiceAccount name (dict root, daemon). */}}
{{- define "nodenet.serviceAccount" -}}
{{- printf "%s-%s" (include "nodenet.fullname" .root) .daemon -}}
{{- end -}}

{{/* nodenet.role: a daemon's ClusterRole (and Role) name (dict root, daemon). */}}
{{- define "nodenet.role" -}}
{{- printf "%s:%s" (include "nodenet.fullname" .root) .daemon -}}
{{- end -}}

{{/* nodenet.tokenSecret: the Secret holding a daemon's token in the combined layout (dict root, daemon). */}}
{{- define "nodenet.tokenSecret" -}}
{{- printf "%s-%s-token" (include "nodenet.fullname" .root) .daemon -}}
{{- end -}}

{{/* nodenet.image: a daemon's image reference (dict root, daemon). */}}
{{- define "nodenet.image" -}}
{{- $img := (index .root.Values .daemon).image -}}
{{- printf "%s:%s" $img.repository (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}
