{{/* ---- names and labels ---- */}}

{{- define "registry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "registry.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<fullname>-<component>"; called with (list $ "index-api"). */}}
{{- define "registry.componentFullname" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "registry.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of one component; called with (list $ "index-api"). Never change them: they are immutable. */}}
{{- define "registry.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "registry.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* Every label of one component; called with (list $ "index-api"). */}}
{{- define "registry.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
{{ include "registry.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: {{ include "registry.name" $root }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
{{- end }}

{{/* ---- the five services ---- */}}

{{/*
The services, as a YAML list: `name` is the component (and the backend name in routes.json), `values`
its key in values.yaml, `module` its `python -m` entry point, `http` whether it takes traffic from a
Service other than metrics scraping.
*/}}
{{- define "registry.components" -}}
- {name: upload-api, values: uploadApi, module: upload_api}
- {name: index-api, values: indexApi, module: index_api}
- {name: metadata-worker, values: metadataWorker, module: metadata_worker}
- {name: proxy, values: proxy, module: proxy}
- {name: web, values: web, module: registry_web}
{{- end }}

{{/* The values of the component that serves a routes.json backend; fails on an unknown backend. */}}
{{- define "registry.backendService" -}}
{{- $root := index . 0 }}
{{- $backend := index . 1 }}
{{- $found := "" }}
{{- range include "registry.components" $root | fromYamlArray }}
{{- if eq .name $backend }}{{ $found = .name }}{{ end }}
{{- end }}
{{- if not $found }}
{{- fail (printf "routes.json names backend %q, which is not a service of this chart" $backend) }}
{{- end }}
{{- include "registry.componentFullname" (list $root $found) }}
{{- end }}

{{- define "registry.image" -}}
{{- $root := index . 0 }}
{{- printf "%s/%s:%s" $root.Values.image.repository (index . 1) (default $root.Chart.AppVersion $root.Values.image.tag) }}
{{- end }}

{{- define "registry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "registry.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* SIGTERM arrives after the preStop sleep; the process then drains for SHUTDOWN_TIMEOUT. */}}
{{- define "registry.terminationGracePeriod" -}}
{{- $root := index . 0 }}
{{- $shutdown := index . 1 }}
{{- add $root.Values.preStopSleepSeconds (ceil $shutdown) $root.Values.terminationGraceMarginSeconds }}
{{- end }}

{{/* ---- settings wiring ---- */}}

{{- define "registry.configMapName" -}}
{{- printf "%s-config" (include "registry.fullname" .) }}
{{- end }}

{{/* The Secret the services read MONGODB_URL, AMQP_URL, S3_ACCESS_KEY and S3_SECRET_KEY from. */}}
{{- define "registry.secretName" -}}
{{- default (include "registry.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* Passwords of the in-chart MongoDB, RabbitMQ and MinIO. */}}
{{- define "registry.dependenciesSecretName" -}}
{{- printf "%s-dependencies" (include "registry.fullname" .) }}
{{- end }}

{{- define "registry.externalURL" -}}
{{- if .Values.externalURL }}
{{- .Values.externalURL | trimSuffix "/" }}
{{- else if .Values.ingress.tls.secretName }}
{{- printf "https://%s" .Values.ingress.host }}
{{- else }}
{{- printf "http://%s" .Values.ingress.host }}
{{- end }}
{{- end }}

{{- define "registry.s3Endpoint" -}}
{{- if .Values.minio.enabled }}
{{- printf "http://%s:9000" (include "registry.componentFullname" (list . "minio")) }}
{{- else }}
{{- required "external.s3Endpoint is required when minio.enabled=false" .Values.external.s3Endpoint }}
{{- end }}
{{- end }}

{{/* host:port of every member of the in-chart MongoDB replica set, comma-separated. */}}
{{- define "registry.mongodbHosts" -}}
{{- $name := include "registry.componentFullname" (list . "mongodb") }}
{{- $hosts := list }}
{{- range $i := until (int .Values.mongodb.replicas) }}
{{- $hosts = append $hosts (printf "%s-%d.%s-headless.%s.svc.%s:27017" $name $i $name $.Release.Namespace $.Values.clusterDomain) }}
{{- end }}
{{- join "," $hosts }}
{{- end }}

{{/* A setting as a string; a whole number given unquoted in values (read as a float) keeps its digits. */}}
{{- define "registry.settingValue" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) }}
{{- printf "%.0f" . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/* ---- pod building blocks ---- */}}

{{- define "registry.containerSecurityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}

{{/* Probes on the services' own endpoints (contracts.md): /-/health liveness, /-/ready readiness. */}}
{{- define "registry.probes" -}}
startupProbe:
  httpGet: {path: /-/health, port: http}
  {{- toYaml .Values.probes.startup | nindent 2 }}
livenessProbe:
  httpGet: {path: /-/health, port: http}
  {{- toYaml .Values.probes.liveness | nindent 2 }}
readinessProbe:
  httpGet: {path: /-/ready, port: http}
  {{- toYaml .Values.probes.readiness | nindent 2 }}
{{- end }}

{{/* A soft spread over nodes and zones; called with (list $ "index-api"). */}}
{{- define "registry.topologySpread" -}}
{{- range $key := list "kubernetes.io/hostname" "topology.kubernetes.io/zone" -}}
- maxSkew: 1
  topologyKey: {{ $key }}
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "registry.selectorLabels" $ | nindent 6 }}
{{ end }}
{{- end }}

{{- define "registry.storageClass" -}}
{{- if .Values.persistence.storageClass }}
storageClassName: {{ .Values.persistence.storageClass | quote }}
{{- end }}
{{- end }}
