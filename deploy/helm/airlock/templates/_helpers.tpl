{{/* Names and labels shared by every object of the chart. */}}
{{- define "airlock.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "airlock.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "airlock.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: airlock
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "airlock.selectorLabels" -}}
app.kubernetes.io/name: {{ include "airlock.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: airlock
{{- end -}}

{{- define "airlock.envoySelectorLabels" -}}
app.kubernetes.io/name: {{ include "airlock.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: envoy
{{- end -}}

{{- define "airlock.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The port number of a host:port listen address that other pods reach: ""
when the service is off or listens on loopback only (then only a
container of the same pod, the chart's Envoy, reaches it).
*/}}
{{- define "airlock.port" -}}
{{- if . -}}
{{- $host := regexReplaceAll ":[0-9]+$" . "" | trimPrefix "[" | trimSuffix "]" -}}
{{- if not (or (hasPrefix "127." $host) (eq $host "::1") (eq $host "localhost")) -}}
{{- regexReplaceAll "^.*:" . "" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The port Envoy's listener binds: public_url's (443 for https, 80 for http). */}}
{{- define "airlock.envoyPort" -}}
{{- $u := urlParse .Values.config.public_url -}}
{{- if contains ":" $u.host -}}
{{- regexReplaceAll "^.*:" $u.host "" -}}
{{- else -}}
{{- ternary "443" "80" (eq $u.scheme "https") -}}
{{- end -}}
{{- end -}}

{{/*
The gRPC liveness probe: kubelet's gRPC probe speaks plaintext, so it is
used when the ext_authz port has no TLS (a mesh authenticates callers);
with airlock's own mutual TLS the probe is /healthz on the HTTP port.
*/}}
{{- define "airlock.grpcProbe" -}}
{{- $tls := dig "listen" "tls" "cert_file" "" (include "airlock.config" . | fromYaml) -}}
{{- if and (not $tls) (include "airlock.port" (dig "listen" "authz" "" .Values.config)) -}}true{{- end -}}
{{- end -}}

{{/*
airlock.yaml: .Values.config, with listen.tls filled in from tls.secretName
(the files where the Secret is mounted) and tls.allowedIdentities; what
config.listen.tls sets itself wins.
*/}}
{{- define "airlock.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- if .Values.tls.secretName -}}
{{- $listen := get $cfg "listen" | default dict -}}
{{- $tls := get $listen "tls" | default dict -}}
{{- $chart := dict "cert_file" "/etc/airlock/tls/tls.crt" "key_file" "/etc/airlock/tls/tls.key" "client_ca_file" "/etc/airlock/tls/ca.crt" "allowed_identities" .Values.tls.allowedIdentities -}}
{{- $_ := set $listen "tls" (merge $tls $chart) -}}
{{- $_ = set $cfg "listen" $listen -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
