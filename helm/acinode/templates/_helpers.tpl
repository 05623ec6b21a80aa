{{/*
Names and labels shared by every template.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "acinode.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The base name of the release's objects: fullnameOverride, else the release name (when it already contains the
chart name), else "<release>-<chart>". Truncated so that suffixed names ("-emulator") stay within 63 characters.
*/}}
{{- define "acinode.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "acinode.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable for the release's lifetime (a StatefulSet's selector is immutable). */}}
{{- define "acinode.selectorLabels" -}}
app.kubernetes.io/name: {{ include "acinode.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Standard labels (Kubernetes recommended labels) on every object of the release, plus commonLabels (which
cannot override the standard ones). */}}
{{- define "acinode.labels" -}}
{{- $standard := dict
  "helm.sh/chart" (include "acinode.chart" .)
  "app.kubernetes.io/name" (include "acinode.name" .)
  "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/version" (.Values.image.tag | default .Chart.AppVersion | toString)
  "app.kubernetes.io/managed-by" .Release.Service
  "app.kubernetes.io/part-of" "acinode" }}
{{- merge $standard (.Values.commonLabels | default dict) | toYaml }}
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "acinode.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "acinode.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image: repository:tag, or repository@digest when a digest is pinned. */}}
{{- define "acinode.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The emulator's image: its own, else the operator image (the emulator ships in the acinode package). */}}
{{- define "acinode.emulatorImage" -}}
{{- if .Values.emulator.image.repository }}
{{- printf "%s:%s" .Values.emulator.image.repository (.Values.emulator.image.tag | default .Chart.AppVersion) }}
{{- else }}
{{- include "acinode.image" . }}
{{- end }}
{{- end }}

{{/* The Secret that holds the emulator's CA and bearer token: the chart's, or emulator.existingSecret. */}}
{{- define "acinode.emulatorSecretName" -}}
{{- .Values.emulator.existingSecret | default (printf "%s-emulator" (include "acinode.fullname" .)) }}
{{- end }}

{{/* The ARM endpoint the emulator serves inside each operator pod (a sidecar: same network namespace). */}}
{{- define "acinode.emulatorEndpoint" -}}
{{- printf "https://127.0.0.1:%d" (int .Values.emulator.port) }}
{{- end }}

{{/* The ClusterKopfPeering object the replicas share. */}}
{{- define "acinode.peeringName" -}}
{{- .Values.peering.name }}
{{- end }}

{{/* Restricted-profile container security context: non-root, read-only root, no capabilities. */}}
{{- define "acinode.containerSecurityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}
