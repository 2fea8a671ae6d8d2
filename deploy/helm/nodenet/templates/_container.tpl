{{/*
nodenet.container: one daemon's container, the same in both layouts (dict
root, daemon, tokenFromSecret). Everything in it comes from that daemon's
values block or from chart-wide values that do not change on an upgrade of
one daemon, so `--set <daemon>.image.tag=X` changes this container's image
line and nothing else.
*/}}
{{- define "nodenet.container" -}}
{{- $root := .root -}}
{{- $d := .daemon -}}
{{- $v := index $root.Values $d -}}
{{- $probe := $root.Values.probes -}}
- name: {{ $d }}
  image: {{ include "nodenet.image" . | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args:
    {{- include "nodenet.args.common" . | nindent 4 }}
    {{- include (printf "nodenet.args.%s" $d) $root | nindent 4 }}
    {{- range $v.args }}
    - {{ . | quote }}
    {{- end }}
  env:
    - name: NODENET_NODE_NAME
      valueFrom:
        fieldRef:
          fieldPath: spec.nodeName
    # routerd reads the BGP passwords' Secrets from its own namespace.
    - name: POD_NAMESPACE
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
    # `<daemon> status` (kubectl exec) asks the enabled daemons only.
    - name: NODENET_DAEMONS
      value: {{ include "nodenet.enabled" $root | quote }}
    {{- with $root.Values.apiServer.host }}
    # The API server directly: its Service's ClusterIP is what proxyd builds.
    - name: KUBERNETES_SERVICE_HOST
      value: {{ . | quote }}
    - name: KUBERNETES_SERVICE_PORT
      value: {{ $root.Values.apiServer.port | int64 | quote }}
    {{- end }}
  ports:
    # Named for the daemon: port names are unique in a pod.
    - name: {{ $d }}
      containerPort: {{ $v.metricsPort | int64 }}
      protocol: TCP
  # The probes ask the daemon's HTTP server on the node's loopback: the pod
  # is in the node's network namespace, and so is the kubelet, so the
  # metrics need not be exposed on the node's address for them.
  startupProbe:
    httpGet: {host: 127.0.0.1, path: /readyz, port: {{ $v.metricsPort | int64 }}}
    periodSeconds: {{ $probe.startup.periodSeconds | int64 }}
    timeoutSeconds: {{ $probe.startup.timeoutSeconds | int64 }}
    failureThreshold: {{ $probe.startup.failureThreshold | int64 }}
  livenessProbe:
    httpGet: {host: 127.0.0.1, path: /livez, port: {{ $v.metricsPort | int64 }}}
    periodSeconds: {{ $probe.liveness.periodSeconds | int64 }}
    timeoutSeconds: {{ $probe.liveness.timeoutSeconds | int64 }}
    failureThreshold: {{ $probe.liveness.failureThreshold | int64 }}
  readinessProbe:
    httpGet: {host: 127.0.0.1, path: /readyz, port: {{ $v.metricsPort | int64 }}}
    periodSeconds: {{ $probe.readiness.periodSeconds | int64 }}
    timeoutSeconds: {{ $probe.readiness.timeoutSeconds | int64 }}
    failureThreshold: {{ $probe.readiness.failureThreshold | int64 }}
  {{- with $v.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    # Root (uid 0) for the capabilities on the node's network namespace,
    # with nothing else: every capability dropped but those added here.
    runAsUser: 0
    runAsGroup: 0
    runAsNonRoot: false
    readOnlyRootFilesystem: true
    {{- if $v.privileged }}
    # Only for /proc/sys: a container's /proc/sys is mounted read-only
    # unless it is privileged, and this daemon writes sysctls of the node
    # (see the privileged value). Pods' sysctls cannot do it: the kubelet
    # refuses them for hostNetwork pods.
    privileged: true
    {{- else }}
    allowPrivilegeEscalation: false
    {{- end }}
    capabilities:
      drop: [ALL]
      # NET_ADMIN: netlink routes and links, IPVS, nftables, conntrack,
      # socket buffers beyond the sysctl maxima.
      {{- if and (eq $d "routerd") (lt ($v.bgpPort | int64) 1024) }}
      # NET_BIND_SERVICE: the BGP listener's port is below 1024.
      add: [NET_ADMIN, NET_BIND_SERVICE]
      {{- else }}
      add: [NET_ADMIN]
      {{- end }}
    seccompProfile:
      type: RuntimeDefault
  volumeMounts:
    - name: run
      mountPath: /run/nodenet
    {{- if eq $d "routerd" }}
    - name: cni-conf
      mountPath: {{ $v.cniConfDir }}
    {{- end }}
    {{- if .tokenFromSecret }}
    - name: {{ $d }}-token
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      readOnly: true
    {{- end }}
{{- end -}}

{{/*
nodenet.prepareContainer: the init container that writes the kernel
settings daemon's run relies on (`<daemon> prepare`, the same flags), so
that the daemon's own container needs no privilege (dict root, daemon). A
container's /proc/sys is writable only when it is privileged, and the
kubelet refuses pod sysctls for hostNetwork pods: this short-lived
container is the one privileged part of the chart. It uses the daemon's
image, so an upgrade of the daemon changes its image line too.
*/}}
{{- define "nodenet.prepareContainer" -}}
{{- $root := .root -}}
{{- $d := .daemon -}}
{{- $v := index $root.Values $d -}}
- name: prepare-{{ $d }}
  image: {{ include "nodenet.image" . | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args:
    {{- include "nodenet.args.common" (dict "root" $root "daemon" $d "cmd" "prepare") | nindent 4 }}
    {{- include (printf "nodenet.args.%s" $d) $root | nindent 4 }}
    {{- range $v.args }}
    - {{ . | quote }}
    {{- end }}
  securityContext:
    runAsUser: 0
    runAsGroup: 0
    runAsNonRoot: false
    readOnlyRootFilesystem: true
    privileged: true
{{- end -}}

{{/*
nodenet.prepared: whether daemon has an init container (dict root, daemon):
proxyd, and firewalld when it polices bridged traffic (its only settings).
*/}}
{{- define "nodenet.prepared" -}}
{{- $v := index .root.Values .daemon -}}
{{- if and (eq .daemon "proxyd") $v.prepare }}true{{ end -}}
{{- if and (eq .daemon "firewalld") $v.prepare $v.bridgeNetfilter }}true{{ end -}}
{{- end -}}

{{/*
nodenet.podSpec: what every pod of the chart shares (dict root,
serviceAccount); the caller adds containers and volumes.
*/}}
{{- define "nodenet.podSpec" -}}
{{- $v := .root.Values -}}
hostNetwork: true
# The cluster's DNS needs the network these daemons build: use the node's.
dnsPolicy: Default
priorityClassName: {{ $v.priorityClassName }}
terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds | int64 }}
{{- if .serviceAccount }}
serviceAccountName: {{ .serviceAccount }}
{{- else }}
# One pod has one service account; each container mounts its own daemon's
# token instead (see token-secrets.yaml).
automountServiceAccountToken: false
{{- end }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* nodenet.podMetadata: the pods' labels and annotations (dict root, component). */}}
{{- define "nodenet.podMetadata" -}}
labels:
  {{- include "nodenet.selectorLabels" .root | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .root.Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
