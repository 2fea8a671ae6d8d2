{{/*
Each daemon's command line (after the image's entrypoint /<daemon>), from
its values block. Every value maps to one flag of `<daemon> run --help`;
numbers go through int64 so large ones (a 4-byte ASN) are not printed as
floats. The extra args come last, so they win.
*/}}

{{- define "nodenet.args.common" -}}
{{- $v := index .root.Values .daemon -}}
- {{ .cmd | default "run" }}
- {{ printf "--peers=%s" (include "nodenet.peers" .) | quote }}
- {{ printf "--log-level=%s" $v.logLevel | quote }}
- {{ printf "--log-format=%s" .root.Values.logFormat | quote }}
- {{ printf "--metrics-addr=%s:%d" .root.Values.metricsBindAddress ($v.metricsPort | int64) | quote }}
{{- end -}}

{{- define "nodenet.args.routerd" -}}
{{- $v := .Values.routerd -}}
- {{ printf "--asn=%d" ($v.asn | int64) | quote }}
- {{ printf "--bgp-port=%d" ($v.bgpPort | int64) | quote }}
- {{ printf "--full-mesh=%t" $v.fullMesh | quote }}
- {{ printf "--graceful-restart=%s" $v.gracefulRestart | quote }}
{{- range $p := $v.peers }}
{{- $peer := list (printf "address=%s" $p.address) (printf "asn=%d" ($p.asn | int64)) }}
{{- if $p.port }}{{ $peer = append $peer (printf "port=%d" ($p.port | int64)) }}{{ end }}
{{- if $p.passwordSecret }}{{ $peer = append $peer (printf "password-secret=%s" $p.passwordSecret) }}{{ end }}
{{- if $p.holdTime }}{{ $peer = append $peer (printf "hold-time=%s" $p.holdTime) }}{{ end }}
{{- if $p.multihop }}{{ $peer = append $peer (printf "multihop=%d" ($p.multihop | int64)) }}{{ end }}
- {{ printf "--peer=%s" (join " " $peer) | quote }}
{{- end }}
- {{ printf "--tunnel=%s" $v.tunnel | quote }}
- {{ printf "--advertise-cluster-ip=%t" $v.advertise.clusterIP | quote }}
- {{ printf "--advertise-external-ip=%t" $v.advertise.externalIP | quote }}
- {{ printf "--advertise-loadbalancer-ip=%t" $v.advertise.loadBalancerIP | quote }}
- {{ printf "--masquerade=%t" $v.masquerade | quote }}
{{- if $v.noMasquerade }}
- {{ printf "--no-masquerade=%s" (join "," $v.noMasquerade) | quote }}
{{- end }}
- {{ printf "--bridge=%s" $v.bridge | quote }}
- {{ printf "--mtu=%d" ($v.mtu | int64) | quote }}
- {{ printf "--cni-conf-dir=%s" $v.cniConfDir | quote }}
- {{ printf "--cni-conf-file=%s" $v.cniConfFile | quote }}
- {{ printf "--cni-portmap=%t" $v.cniPortmap | quote }}
{{- if $v.ipamDataDir }}
- {{ printf "--ipam-data-dir=%s" $v.ipamDataDir | quote }}
{{- end }}
- {{ printf "--route-protocol=%d" ($v.routeProtocol | int64) | quote }}
- {{ printf "--wait-for-firewalld=%s" (toString $v.waitForFirewalld) | quote }}
{{- end -}}

{{- define "nodenet.args.proxyd" -}}
{{- $v := .Values.proxyd -}}
- {{ printf "--ipvs-scheduler=%s" $v.scheduler | quote }}
- {{ printf "--node-port-range=%s" $v.nodePortRange | quote }}
- {{ printf "--drain-timeout=%s" $v.drainTimeout | quote }}
- {{ printf "--strict-arp=%t" $v.strictARP | quote }}
{{- end -}}

{{- define "nodenet.args.firewalld" -}}
{{- $v := .Values.firewalld -}}
- {{ printf "--bridge-netfilter=%t" $v.bridgeNetfilter | quote }}
- {{ printf "--log-drops-group=%d" ($v.logDrops.group | int64) | quote }}
- {{ printf "--log-drops-rate=%d" ($v.logDrops.rate | int64) | quote }}
- {{ printf "--log-drops-burst=%d" ($v.logDrops.burst | int64) | quote }}
{{- end -}}
