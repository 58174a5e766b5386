{{/* Names ------------------------------------------------------------------------------------ */}}
{{- define "pingan.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pingan.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "pingan.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The four long-running services, in pipeline order. */}}
{{- define "pingan.services" -}}
ingest classify aggregate serve
{{- end -}}

{{/* Labels: call with (dict "root" $ "component" "ingest"); component may be empty. */}}
{{- define "pingan.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pingan.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "pingan.labels" -}}
helm.sh/chart: {{ include "pingan.chart" .root }}
{{ include "pingan.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: pingan
{{- end -}}

{{- define "pingan.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "pingan.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pingan.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "pingan.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- printf "%s-secrets" (include "pingan.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Whether a Secret exists at all (made by the chart, or named). */}}
{{- define "pingan.hasSecret" -}}
{{- if or .Values.secrets.existingSecret .Values.secrets.create -}}true{{- end -}}
{{- end -}}

{{/* pingan.toml: defaults < .Values.config < what the chart must control (listen addresses that
     the probes and Services use, where Kafka and ClickHouse are). */}}
{{- define "pingan.configToml" -}}
{{- $defaults := dict "log" (dict "format" "json") -}}
{{- $enforced := dict
      "kafka" (dict "bootstrap_servers" .Values.kafka.bootstrapServers)
      "clickhouse" (dict "url" .Values.clickhouse.url "database" .Values.clickhouse.database "user" .Values.clickhouse.user)
      "ingest" (dict "listen" (printf "0.0.0.0:%d" (int .Values.ingest.port)))
      "serve" (dict "listen" (printf "0.0.0.0:%d" (int .Values.serve.port)))
      "classifier" (dict "admin_listen" (printf "0.0.0.0:%d" (int .Values.classify.port)))
      "aggregator" (dict "admin_listen" (printf "0.0.0.0:%d" (int .Values.aggregate.port))) -}}
{{- $user := deepCopy .Values.config -}}
{{- include "pingan.intify" $user -}}
{{- $merged := mergeOverwrite $defaults $user $enforced -}}
# pingan.toml rendered by the pingan Helm chart (keys: deploy/config/pingan.example.toml).
# Secrets are not here: they come from the Secret as PINGAN__… environment variables.
{{ toToml $merged }}
{{- end -}}

{{/* env entry from the Secret: (dict "root" $ "name" "PINGAN__X" "key" "secret-key") */}}
{{- define "pingan.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "pingan.secretName" .root }}
      key: {{ .key }}
      optional: true
{{- end -}}

{{/* The secret environment of one service: (dict "root" $ "component" "ingest") */}}
{{- define "pingan.secretEnvFor" -}}
{{- $root := .root -}}
{{- if include "pingan.hasSecret" $root -}}
{{- if eq .component "ingest" }}
{{ include "pingan.secretEnv" (dict "root" $root "name" "PINGAN__PII__KEY" "key" "pii-key") }}
{{ include "pingan.secretEnv" (dict "root" $root "name" "PINGAN__QR__KEYS" "key" "qr-keys") }}
{{ include "pingan.secretEnv" (dict "root" $root "name" "PINGAN__INGEST__API_TOKENS" "key" "ingest-api-tokens") }}
{{- else if eq .component "aggregate" }}
{{ include "pingan.secretEnv" (dict "root" $root "name" "PINGAN__CLICKHOUSE__PASSWORD" "key" "clickhouse-password") }}
{{ include "pingan.secretEnv" (dict "root" $root "name" "PINGAN__AGGREGATOR__ALERTS__WEBHOOK_SECRET" "key" "webhook-secret") }}
{{- else if eq .component "serve" }}
{{ include "pingan.secretEnv" (dict "root" $root "name" "PINGAN__CLICKHOUSE__PASSWORD" "key" (ternary "clickhouse-reader-password" "clickhouse-password" (not (empty $root.Values.clickhouse.readerUser)))) }}
{{ include "pingan.secretEnv" (dict "root" $root "name" "PINGAN__SERVE__TOKENS" "key" "serve-tokens") }}
{{- else if eq .component "migrate" }}
{{ include "pingan.secretEnv" (dict "root" $root "name" "PINGAN__CLICKHOUSE__PASSWORD" "key" "clickhouse-password") }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by the Deployments and the migrate Job. */}}
{{- define "pingan.podCommon" -}}
serviceAccountName: {{ include "pingan.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Refuse consumer counts that Kafka cannot use: (dict "root" $ "component" "classify") */}}
{{- define "pingan.checkPartitions" -}}
{{- $c := index .root.Values .component -}}
{{- $p := int .root.Values.kafka.partitions -}}
{{- if gt (int $c.replicas) $p -}}
{{- fail (printf "%s.replicas (%d) exceeds kafka.partitions (%d): the extra consumers would sit idle" .component (int $c.replicas) $p) -}}
{{- end -}}
{{- if and $c.autoscaling $c.autoscaling.enabled -}}
{{- if gt (int $c.autoscaling.maxReplicas) $p -}}
{{- fail (printf "%s.autoscaling.maxReplicas (%d) exceeds kafka.partitions (%d): a consumer group cannot use more consumers than partitions" .component (int $c.autoscaling.maxReplicas) $p) -}}
{{- end -}}
{{- if gt (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas) -}}
{{- fail (printf "%s.autoscaling.minReplicas exceeds maxReplicas" .component) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Helm reads numbers in values files as floats, and toToml would write retention_days = 730.0,
     which pingan refuses for an integer key. Turns every whole float of a dict (recursively)
     back into an integer, in place; prints nothing. */}}
{{- define "pingan.intify" -}}
{{- $d := . -}}
{{- range $k, $v := $d -}}
{{- if kindIs "float64" $v -}}
{{- if eq $v (float64 (int64 $v)) -}}
{{- $_ := set $d $k (int64 $v) -}}
{{- end -}}
{{- else if kindIs "map" $v -}}
{{- include "pingan.intify" $v -}}
{{- end -}}
{{- end -}}
{{- end -}}
