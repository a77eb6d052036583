{{/*
Names. The release's full name prefixes every cluster-scoped object, so two releases in
different namespaces do not collide; a release named like the chart ("kglance") is not
doubled into "kglance-kglance".
*/}}
{{- define "kglance.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kglance.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "kglance.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A name derived from the full name, kept within 63 characters: include with (list . "suffix"). */}}
{{- define "kglance.suffixed" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "kglance.fullname" $root | trunc (int (sub 62 (len $suffix)))) $suffix | trimSuffix "-" }}
{{- end }}

{{- define "kglance.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kglance.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "kglance.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "kglance.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kglance
{{- end }}

{{- define "kglance.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- .Values.serviceAccount.name | default (include "kglance.fullname" .) }}
{{- else }}
{{- .Values.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{- define "kglance.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The injected sidecar runs the operator's image unless sidecar.image says otherwise. */}}
{{- define "kglance.sidecarImage" -}}
{{- $repository := .Values.sidecar.image.repository | default .Values.image.repository }}
{{- $tag := .Values.sidecar.image.tag | default .Values.image.tag | default .Chart.AppVersion }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/* Object names shared by several templates. */}}
{{- define "kglance.webhookServiceName" -}}
{{- include "kglance.suffixed" (list . "webhook") }}
{{- end }}

{{- define "kglance.webhookSecretName" -}}
{{- include "kglance.suffixed" (list . "webhook-tls") }}
{{- end }}

{{- define "kglance.webhookCertificateName" -}}
{{- include "kglance.suffixed" (list . "webhook") }}
{{- end }}

{{- define "kglance.webhookIssuerName" -}}
{{- include "kglance.suffixed" (list . "selfsigned") }}
{{- end }}
