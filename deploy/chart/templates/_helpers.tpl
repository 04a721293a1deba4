{{/* Name prefix of every object of the release: fullnameOverride, or else
the release name. `make deploy` installs release vmoperator, so its objects
are vmoperator-controller-manager, vmoperator-agent, ... as kubebuilder's
layout names them; fullnameOverride gives those names under any release. */}}
{{- define "vmoperator.name" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "vmoperator.labels" -}}
app.kubernetes.io/name: vmoperator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* image COMPONENT: the image reference of vmop-COMPONENT: image.COMPONENT
when set (a whole reference, as `make deploy IMG=...` passes), else
<image.registry>/vmop-COMPONENT:<image.tag or appVersion>. */}}
{{- define "vmoperator.image" -}}
{{- $whole := get .root.Values.image .component -}}
{{- if $whole -}}
{{- $whole -}}
{{- else -}}
{{- printf "%s/vmop-%s:%s" .root.Values.image.registry .component (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The priority class both components run at, "" for none. */}}
{{- define "vmoperator.priorityClassName" -}}
{{- if .Values.priorityClass.create -}}
{{- default (printf "%s-critical-nonpreempting" (include "vmoperator.name" .)) .Values.priorityClass.name -}}
{{- else -}}
{{- .Values.priorityClass.name -}}
{{- end -}}
{{- end -}}

{{/* Image pull secrets, for every pod of the chart. */}}
{{- define "vmoperator.pullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Pod spec lines both components share: pull secrets and priority. The
hook Jobs take only the pull secrets: the pre-install hook runs before the
chart's PriorityClass exists and the post-delete hook after it is gone, and
the Priority admission plugin refuses a Pod naming a missing class. */}}
{{- define "vmoperator.podCommon" -}}
{{- include "vmoperator.pullSecrets" . }}
{{- with include "vmoperator.priorityClassName" . }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}
