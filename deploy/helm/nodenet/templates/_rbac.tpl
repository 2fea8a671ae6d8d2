{{/*
nodenet.rbac: a daemon's ServiceAccount, ClusterRole (rules from the
caller) and ClusterRoleBinding (dict root, daemon, rules).
*/}}
{{- define "nodenet.rbac" -}}
{{- $sa := include "nodenet.serviceAccount" . -}}
{{- $role := include "nodenet.role" . -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $sa }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "nodenet.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .daemon }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ $role }}
  labels:
    {{- include "nodenet.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .daemon }}
rules:
  {{- .rules | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ $role }}
  labels:
    {{- include "nodenet.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .daemon }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ $role }}
subjects:
  - kind: ServiceAccount
    name: {{ $sa }}
    namespace: {{ .root.Release.Namespace }}
{{- end -}}
