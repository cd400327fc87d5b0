{{/*
Names, labels and the RBAC rule sets shared by the chart's templates.
*/}}

{{- define "chkmate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chkmate.fullname" -}}
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

{{- define "chkmate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chkmate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "chkmate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "chkmate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: chkmate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "chkmate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chkmate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: a digest pins it, else the tag, else the chart's appVersion. */}}
{{- define "chkmate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "chkmate.peeringName" -}}
{{- default (include "chkmate.fullname" .) .Values.standby.peeringName }}
{{- end }}

{{- define "chkmate.githubSecretName" -}}
{{- if .Values.github.secret.create }}
{{- default (printf "%s-github" (include "chkmate.fullname" .)) .Values.github.secret.name }}
{{- else }}
{{- .Values.github.secret.name }}
{{- end }}
{{- end }}

{{/* "true" for a cluster-wide install (no watchNamespaces), "" for a namespaced one. */}}
{{- define "chkmate.clusterwide" -}}
{{- if not .Values.watchNamespaces }}true{{ end }}
{{- end }}

{{/*
RBAC, framework (kopf), cluster-scoped. kopf watches CustomResourceDefinitions to notice our kinds appearing
or changing; a namespaced operator also lists and watches Namespaces to notice watched namespaces being
created or deleted (a cluster-wide one does not).
*/}}
{{- define "chkmate.rules.frameworkCluster" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- if not (include "chkmate.clusterwide" .) }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
{{- if and .Values.standby.enabled (include "chkmate.clusterwide" .) }}
# Peering of a cluster-wide operator: keep-alives in the ClusterKopfPeering's status.
- apiGroups: ["kopf.dev"]
  resources: ["clusterkopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
{{- end }}

{{/* RBAC, framework (kopf), in each served namespace: Events kopf posts about handlers, and peering. */}}
{{- define "chkmate.rules.frameworkNamespaced" -}}
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- if and .Values.standby.enabled (not (include "chkmate.clusterwide" .)) }}
# Peering of a namespaced operator: keep-alives in each watched namespace's KopfPeering status.
- apiGroups: ["kopf.dev"]
  resources: ["kopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
{{- end }}

{{/* RBAC, application (chkmate), in each served namespace. */}}
{{- define "chkmate.rules.application" -}}
# Our six kinds: watched by kopf, patched for finalizers, annotations, status and (Templates) synced specs.
- apiGroups: ["chkmate.dev"]
  resources: ["githubconnections", "githubrepositories", "templates", "templaterepolinks", "environments", "plans"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["chkmate.dev"]
  resources:
    - "githubconnections/status"
    - "githubrepositories/status"
    - "templates/status"
    - "templaterepolinks/status"
    - "environments/status"
    - "plans/status"
  verbs: ["get", "patch"]
# Objects we create carry owner references with blockOwnerDeletion, which needs update on the owner's
# finalizers subresource (OwnerReferencesPermissionEnforcement).
- apiGroups: ["chkmate.dev"]
  resources:
    - "githubconnections/finalizers"
    - "githubrepositories/finalizers"
    - "templates/finalizers"
    - "templaterepolinks/finalizers"
    - "environments/finalizers"
    - "plans/finalizers"
  verbs: ["update"]
# A Plan per run, garbage-collected past the history limit.
- apiGroups: ["chkmate.dev"]
  resources: ["plans"]
  verbs: ["create", "delete"]
# Secrets: GitHub App keys, tokens, webhook secrets and run credentials are read (and watched, so that a
# rotated key is used at once); plan files and Terraform state are written.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# ConfigMaps: readable plan output and variables.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "create", "update", "patch", "delete"]
# The Job runner (runner.mode Job): a Job per plan, apply or drift check, created, read while it runs, and
# deleted when it overruns its deadline (or once a drift check read it); its Pods are listed to say why one failed.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "create", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
{{- end }}

{{/*
RBAC of runner pods (chkmate run-job), bound in each runner namespace: read the run's bundle Secret, write the
result Secret (created, or patched when it exists). Secrets cannot be narrowed by name here: names are per run.
*/}}
{{- define "chkmate.rules.runner" -}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch"]
{{- end }}

{{- define "chkmate.runnerServiceAccountName" -}}
{{- default (printf "%s-runner" (include "chkmate.fullname" .)) .Values.runner.serviceAccount.name }}
{{- end }}

{{/* The namespaces runner Jobs run in: runner.namespaces, else the watched namespaces. */}}
{{- define "chkmate.runnerNamespaces" -}}
{{- toJson (default .Values.watchNamespaces .Values.runner.namespaces) }}
{{- end }}
