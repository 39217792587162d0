{{- define "keyguard.name" -}}{{ .Release.Name }}{{- end -}}

{{- define "keyguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ default (include "keyguard.name" .) .Values.serviceAccount.name }}
{{- else -}}
{{ required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end -}}
{{- end -}}

{{- define "keyguard.labels" -}}
app.kubernetes.io/name: twitter-keyguard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "keyguard.selector" -}}
app.kubernetes.io/name: twitter-keyguard
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "keyguard.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}
