{{/* Names are fixed (one release per cluster): the controller looks for these. */}}
{{- define "webgw.labels" -}}
app.kubernetes.io/name: webgw
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "webgw.selectorLabels" -}}
app.kubernetes.io/name: webgw
app.kubernetes.io/component: controller
{{- end }}

{{- define "webgw.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "webgw.webhookHost" -}}
webgw-webhook.{{ .Release.Namespace }}.svc
{{- end }}
