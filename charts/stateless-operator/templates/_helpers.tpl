{{/* Chart name, truncated to fit label values. */}}
{{- define "stateless-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects. Cluster-scoped objects (ClusterRole,
ValidatingWebhookConfiguration) carry it too, so two releases never collide.
Truncated to 52 characters: "-webhook-tls" and friends must still fit 63.
*/}}
{{- define "stateless-operator.fullname" -}}
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

{{- define "stateless-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "stateless-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stateless-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "stateless-operator.labels" -}}
helm.sh/chart: {{ include "stateless-operator.chart" . }}
{{ include "stateless-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stateless-operator
{{- end }}

{{- define "stateless-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stateless-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "stateless-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Secret with the key of the config hash (an HMAC over referenced Secrets). */}}
{{- define "stateless-operator.configHashKeySecretName" -}}
{{- printf "%s-config-hash-key" (include "stateless-operator.fullname" .) | trunc 253 }}
{{- end }}

{{- define "stateless-operator.webhookSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "stateless-operator.fullname" .)) .Values.webhook.secretName }}
{{- end }}

{{- define "stateless-operator.webhookServiceName" -}}
{{- printf "%s-webhook" (include "stateless-operator.fullname" .) }}
{{- end }}

{{- define "stateless-operator.leaseName" -}}
{{- default (include "stateless-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* Where the cert-manager Secret is mounted (files mode). */}}
{{- define "stateless-operator.webhookCertDir" -}}
/etc/stateless-operator/webhook-tls
{{- end }}

{{/* Cross-value checks the schema cannot express. */}}
{{- define "stateless-operator.validate" -}}
{{- if and .Values.webhook.enabled (eq (int .Values.webhook.port) (int .Values.metrics.port)) }}
{{- fail (printf "webhook.port and metrics.port must differ (both are %v)" .Values.metrics.port) }}
{{- end }}
{{- end }}

{{/*
What the StatelessApp controller does with each kind, and nothing more
(src/controller: watches, server-side apply, prune, status, Events; the
validate step's reads). Server-side apply of an object that does not exist
yet creates it, which the API server authorizes as "create".
*/}}
{{- define "stateless-operator.controllerRules" -}}
- apiGroups: ["stateless.dev"]
  resources: ["statelessapps"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["stateless.dev"]
  resources: ["statelessapps/status"]
  verbs: ["patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["cronjobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Secrets: no update or patch, so the operator can change no one's Secret.
# The managed Redis Secret is created once; after its password is rotated it
# is replaced (delete, guarded by uid and resourceVersion, then create), and
# so is an app's JWT signing key Secret at each rotation. The watch covers
# Secrets the app's pods reference, whose content rolls the pods.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "delete"]
# Read-only: what routes traffic to an app, for the statelessness rules.
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["networking.istio.io"]
  resources: ["destinationrules"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
