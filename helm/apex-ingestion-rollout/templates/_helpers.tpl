{{/*
Names. The resource prefix is "<release>-ingestion" (or the release name when it already
says "ingestion"), at most 40 characters so that every "<prefix>-<component>" fits in 63.
*/}}
{{- define "apex.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "apex.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if contains "ingestion" .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-ingestion" .Release.Name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "apex.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<prefix>-<component>"; called with (dict "root" $ "component" "api"). */}}
{{- define "apex.componentName" -}}
{{- printf "%s-%s" (include "apex.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Cluster-scoped objects also carry the namespace, so two releases never collide. */}}
{{- define "apex.clusterName" -}}
{{- $base := include "apex.componentName" . }}
{{- with .root.Release.Namespace }}{{ $base = printf "%s-%s" $base . }}{{ end }}
{{- $base | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels; called with (dict "root" $ "component" "api"). */}}
{{- define "apex.labels" -}}
helm.sh/chart: {{ include "apex.chart" .root }}
{{ include "apex.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: apex-ingestion-rollout
{{- end }}

{{- define "apex.selectorLabels" -}}
app.kubernetes.io/name: {{ include "apex.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The image reference: the digest wins over the tag; the tag defaults to appVersion. */}}
{{- define "apex.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/*
Endpoints. An empty value means the in-namespace dev service when devServices.enabled
(values.schema.json refuses an empty one otherwise, except S3 where empty means AWS).
*/}}
{{- define "apex.temporalAddress" -}}
{{- if .Values.temporal.address }}{{ .Values.temporal.address }}
{{- else }}{{ include "apex.componentName" (dict "root" . "component" "temporal") }}:7233
{{- end }}
{{- end }}

{{- define "apex.prometheusUrl" -}}
{{- if .Values.prometheus.url }}{{ .Values.prometheus.url }}
{{- else }}http://{{ include "apex.componentName" (dict "root" . "component" "prometheus") }}:9090
{{- end }}
{{- end }}

{{- define "apex.neo4jUri" -}}
{{- if .Values.neo4j.uri }}{{ .Values.neo4j.uri }}
{{- else }}bolt://{{ include "apex.componentName" (dict "root" . "component" "neo4j") }}:7687
{{- end }}
{{- end }}

{{- define "apex.s3EndpointUrl" -}}
{{- if .Values.s3.endpointUrl }}{{ .Values.s3.endpointUrl }}
{{- else if .Values.devServices.enabled }}http://{{ include "apex.componentName" (dict "root" . "component" "minio") }}:9000
{{- end }}
{{- end }}

{{/*
Pod security: the "restricted" Pod Security Standard, for every pod of the chart.
*/}}
{{- define "apex.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurityContext.runAsUser }}
runAsGroup: {{ .Values.podSecurityContext.runAsGroup }}
fsGroup: {{ .Values.podSecurityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "apex.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
The container command. With liveUpdate (Tilt, development only) the process runs under
files/dev_reload.py, which copies the Python packages into the writable /app/live volume
(where Tilt syncs changed sources) and restarts the process when a source file changes.
Called with (dict "root" $ "command" "ingestion-api").
*/}}
{{- define "apex.command" -}}
{{- if .root.Values.liveUpdate.enabled }}
- python
- /opt/dev-reload/dev_reload.py
- --live-dir=/app/live
- --packages=ingestion_contract,ingestion_api,ingestion_worker,ingestion_operator
- --
{{- end }}
- {{ .command }}
{{- end }}

{{- define "apex.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.liveUpdate.enabled }}
- name: live-sources
  mountPath: /app/live
- name: dev-reload
  mountPath: /opt/dev-reload
  readOnly: true
{{- end }}
{{- end }}

{{- define "apex.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- if .Values.liveUpdate.enabled }}
- name: live-sources
  emptyDir:
    sizeLimit: 256Mi
- name: dev-reload
  configMap:
    name: {{ include "apex.componentName" (dict "root" . "component" "dev-reload") }}
{{- end }}
{{- end }}

{{/* A secret environment variable: (dict "name" "X" "secret" "s" "key" "k"). */}}
{{- define "apex.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end }}

{{/*
Environment of the pipeline, shared by the worker and the API (which runs the legacy path
in-process). Names are those of worker/ingestion_worker/settings.py (and boto3's AWS_*).
*/}}
{{- define "apex.pipelineEnv" -}}
- name: TEMPORAL_ADDRESS
  value: {{ include "apex.temporalAddress" . | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ .Values.temporal.namespace | quote }}
- name: TEMPORAL_TASK_QUEUE
  value: {{ .Values.temporal.taskQueue | quote }}
{{- with include "apex.s3EndpointUrl" . }}
- name: S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
- name: S3_REGION
  value: {{ .Values.s3.region | quote }}
- name: DOCUMENTS_BUCKET
  value: {{ .Values.s3.documentsBucket | quote }}
- name: DOCUMENTS_PREFIX
  value: {{ .Values.s3.documentsPrefix | quote }}
- name: ARTIFACT_BUCKET
  value: {{ .Values.s3.artifactBucket | quote }}
{{- with .Values.s3.existingSecret }}
{{ include "apex.secretEnv" (dict "name" "AWS_ACCESS_KEY_ID" "secret" . "key" $.Values.s3.accessKeyIdKey) }}
{{ include "apex.secretEnv" (dict "name" "AWS_SECRET_ACCESS_KEY" "secret" . "key" $.Values.s3.secretAccessKeyKey) }}
{{- end }}
- name: NEO4J_URI
  value: {{ include "apex.neo4jUri" . | quote }}
{{- with .Values.neo4j.database }}
- name: NEO4J_DATABASE
  value: {{ . | quote }}
{{- end }}
- name: NEO4J_CONNECTION_TIMEOUT_SECONDS
  value: {{ .Values.neo4j.connectionTimeoutSeconds | quote }}
- name: NEO4J_MAX_MESSAGE_BYTES
  value: {{ .Values.neo4j.maxMessageBytes | quote }}
{{- with .Values.neo4j.auth.existingSecret }}
{{ include "apex.secretEnv" (dict "name" "NEO4J_USER" "secret" . "key" $.Values.neo4j.auth.userKey) }}
{{ include "apex.secretEnv" (dict "name" "NEO4J_PASSWORD" "secret" . "key" $.Values.neo4j.auth.passwordKey) }}
{{- end }}
{{- with .Values.openai.baseUrl }}
- name: OPENAI_BASE_URL
  value: {{ . | quote }}
{{- end }}
- name: EMBEDDING_MODEL
  value: {{ .Values.openai.model | quote }}
- name: EMBEDDING_DIMENSIONS
  value: {{ .Values.openai.dimensions | quote }}
{{- with .Values.openai.existingSecret }}
{{ include "apex.secretEnv" (dict "name" "OPENAI_API_KEY" "secret" . "key" $.Values.openai.apiKeyKey) }}
{{- end }}
{{- end }}

{{/*
RBAC rules from a files/*-rbac.yaml rules file (see files/operator-rbac.yaml for the format).
Called with (dict "file" "files/operator-rbac.yaml" "scope" "namespace" "root" $).
*/}}
{{- define "apex.rbacRules" -}}
{{- $root := .root }}
{{- $single := not $root.Values.operator.watchAllNamespaces }}
{{- $names := dict
  "routingConfigMap" (list $root.Values.routing.configMapName)
  "routingConfigMaps" (prepend $root.Values.operator.rbac.extraRoutingConfigMaps $root.Values.routing.configMapName | uniq)
  "workerDeployments" (prepend $root.Values.operator.rbac.extraWorkerDeployments $root.Values.worker.deploymentName | uniq) }}
{{- range ($root.Files.Get .file | fromYaml).rules }}
{{- if not (has .scope (list "namespace" "cluster")) }}
{{- fail (printf "%s: unknown scope %q" $.file .scope) }}
{{- end }}
{{- if and .onlyWhen (ne .onlyWhen "singleNamespace") }}
{{- fail (printf "%s: unknown onlyWhen %q" $.file .onlyWhen) }}
{{- end }}
{{- if and .names (not (hasKey $names .names)) }}
{{- fail (printf "%s: unknown names %q" $.file .names) }}
{{- end }}
{{- if and (eq .scope $.scope) (or (not .onlyWhen) $single) }}
- apiGroups: {{ toJson .apiGroups }}
  resources: {{ toJson .resources }}
  {{- with .names }}
  resourceNames: {{ get $names . | toJson }}
  {{- end }}
  verbs: {{ toJson .verbs }}
{{- end }}
{{- end }}
{{- end }}

{{/* Annotations of the uninstall hook's objects; called with the hook weight ("-10"). */}}
{{- define "apex.uninstallHook" -}}
helm.sh/hook: pre-delete
helm.sh/hook-weight: {{ . | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
helm.sh/hook-output-log-policy: hook-failed
{{- end }}
