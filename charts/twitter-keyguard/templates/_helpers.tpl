{{- define "keyguard.name" -}}{{ .Release.Name }}{{- end -}}
{{- define "keyguard.labels" -}}
app.kubernetes.io/name: twitter-keyguard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "keyguard.selector" -}}
app.kubernetes.io/name: twitter-keyguard
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
