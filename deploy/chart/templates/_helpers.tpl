{{/* Name prefix of every object of the release: the release name. */}}
{{- define "vmoperator.name" -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "vmoperator.labels" -}}
app.kubernetes.io/name: vmoperator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* image COMPONENT: the image reference of vmop-COMPONENT. */}}
{{- define "vmoperator.image" -}}
{{- printf "%s/vmop-%s:%s" .root.Values.image.registry .component (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}
