{{/* The chart name, or nameOverride. */}}
{{- define "weir.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The name of the release's objects: fullnameOverride, else the release name when it already
contains the chart name, else "<release>-<chart>". Cluster-scoped objects (ClusterRole,
ClusterRoleBinding) carry it too, so it must be unique in the cluster.
*/}}
{{- define "weir.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "weir.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of the pods, and the selector of the Deployment, Service and PDB. */}}
{{- define "weir.selectorLabels" -}}
app.kubernetes.io/name: {{ include "weir.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object of the chart. */}}
{{- define "weir.labels" -}}
helm.sh/chart: {{ include "weir.chart" . }}
{{ include "weir.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: weir
{{- end -}}

{{- define "weir.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "weir.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator image: repository, then @digest or :tag (default: the appVersion). */}}
{{- define "weir.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
"true" when the replicas elect a leader: leaderElection.enabled true, or "auto" with more
than one replica. Several replicas without election would all write, so that is refused.
*/}}
{{- define "weir.leaderElect" -}}
{{- $enabled := .Values.leaderElection.enabled -}}
{{- if eq (toString $enabled) "auto" -}}
{{- if gt (int .Values.replicaCount) 1 -}}true{{- else -}}false{{- end -}}
{{- else if $enabled -}}
true
{{- else if gt (int .Values.replicaCount) 1 -}}
{{- fail "leaderElection.enabled=false needs replicaCount: 1: several replicas without leader election would all write" -}}
{{- else -}}
false
{{- end -}}
{{- end -}}

{{- define "weir.leaseName" -}}
{{- default (include "weir.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* Name of the metrics Service, also the `job` label Prometheus gives its series. */}}
{{- define "weir.metricsServiceName" -}}
{{- printf "%s-metrics" (include "weir.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The series selector of the alerts: prometheusRule.selector, else this release's job. */}}
{{- define "weir.alertSelector" -}}
{{- default (printf "job=%q,namespace=%q" (include "weir.metricsServiceName" .) .Release.Namespace) .Values.prometheusRule.selector -}}
{{- end -}}

{{/*
The rules Weir needs in every namespace it watches. Children are written by server-side
apply: a patch, which the API server also authorizes as a create when the object does not
exist yet. Nothing is written with update (PUT).
*/}}
{{- define "weir.watchRules" -}}
# Microservices: the controller's list/watch; patch removes the weir.dev/action annotation
# once the action is recorded.
- apiGroups: ["weir.dev"]
  resources: ["microservices"]
  verbs: ["list", "watch", "patch"]
# The status: server-side apply of status.
- apiGroups: ["weir.dev"]
  resources: ["microservices/status"]
  verbs: ["patch"]
# Children: watched (cache and triggers), read when not in the cache (is the name taken by
# an object Weir does not own?), applied (patch; create for a new one), and deleted when no
# longer wanted.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes", "grpcroutes"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The slot Services' endpoints, read only: a weight counts once its pods are endpoints a
# gateway can reach.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch"]
# Events about Microservices (kube's Recorder: events.k8s.io/v1; patch for a repeated event).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if .Values.podFailureReasons }}
# When a release aborts: one list of the new version's pods, to say why they failed.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
{{- end }}
{{- if .Values.freeze.namespaces }}
# A namespace's weir.dev/freeze annotation, read while a release may add exposure.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"]
{{- end }}
{{- if .Values.trackConfig.configMaps }}
# rollout.trackConfig: ConfigMaps watched (content hashed in the cache), read whole when a
# snapshot is made, snapshots created and, once no slot mounts them, deleted.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "delete"]
{{- end }}
{{- if .Values.trackConfig.secrets }}
# rollout.trackConfig.secrets: the same for Secrets (the cache keeps a hash, never the data).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "delete"]
{{- end }}
{{- if .Values.analysis.externalMetrics }}
# Analysis by Kubernetes external metrics: read through whatever adapter serves them.
- apiGroups: ["external.metrics.k8s.io"]
  resources: ["*"]
  verbs: ["get"]
{{- end }}
{{- end -}}
