{{/*
Names. The full name is cut to 52 characters: the StatefulSet controller labels every pod with
controller-revision-hash=<statefulset name>-<10 character hash>, and a label value may not
exceed 63 characters.
*/}}
{{- define "starling.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "starling.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "starling.headlessName" -}}
{{- printf "%s-headless" (include "starling.fullname" .) -}}
{{- end -}}

{{- define "starling.adminServiceName" -}}
{{- printf "%s-admin" (include "starling.fullname" .) -}}
{{- end -}}

{{- define "starling.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "starling.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "starling.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: only these three, they are immutable in a StatefulSet. */}}
{{- define "starling.selectorLabels" -}}
app.kubernetes.io/name: {{ include "starling.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/component: broker
{{- end -}}

{{/* Labels common to every object, without the component. */}}
{{- define "starling.commonLabels" -}}
app.kubernetes.io/name: {{ include "starling.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
helm.sh/chart: {{ include "starling.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: starling
{{- end -}}

{{- define "starling.labels" -}}
{{ include "starling.commonLabels" . }}
app.kubernetes.io/component: broker
{{- end -}}

{{- define "starling.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* DNS suffix of the pods' stable names: <pod>.<this>. */}}
{{- define "starling.peerDomain" -}}
{{- printf "%s.%s.svc.%s" (include "starling.headlessName" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/* Secrets: the name of the Secret and the key that hold each credential. */}}
{{- define "starling.credentialsSecretName" -}}
{{- printf "%s-secrets" (include "starling.fullname" .) -}}
{{- end -}}

{{- define "starling.clusterSecretName" -}}
{{- default (include "starling.credentialsSecretName" .) .Values.cluster.secret.existingSecret -}}
{{- end -}}

{{- define "starling.clusterSecretKey" -}}
{{- if .Values.cluster.secret.existingSecret -}}{{ .Values.cluster.secret.existingSecretKey }}{{- else -}}cluster-secret{{- end -}}
{{- end -}}

{{- define "starling.adminTokenSecretName" -}}
{{- default (include "starling.credentialsSecretName" .) .Values.admin.token.existingSecret -}}
{{- end -}}

{{- define "starling.adminTokenKey" -}}
{{- if .Values.admin.token.existingSecret -}}{{ .Values.admin.token.existingSecretKey }}{{- else -}}admin-token{{- end -}}
{{- end -}}

{{/* true when the chart itself must create the credentials Secret */}}
{{- define "starling.createCredentials" -}}
{{- if or (not .Values.cluster.secret.existingSecret) (and .Values.admin.token.enabled (not .Values.admin.token.existingSecret)) -}}true{{- end -}}
{{- end -}}

{{- define "starling.authSecretName" -}}
{{- default (printf "%s-auth" (include "starling.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{/* The file names inside the auth Secret; empty when that file is not used. */}}
{{- define "starling.passwordKey" -}}
{{- if .Values.auth.existingSecret -}}{{ .Values.auth.existingSecretPasswordKey }}{{- else if .Values.auth.passwordFile -}}passwd{{- end -}}
{{- end -}}

{{- define "starling.aclKey" -}}
{{- if .Values.auth.existingSecret -}}{{ .Values.auth.existingSecretAclKey }}{{- else if .Values.auth.aclFile -}}acl{{- end -}}
{{- end -}}

{{- define "starling.authEnabled" -}}
{{- if or (include "starling.passwordKey" .) (include "starling.aclKey" .) -}}true{{- end -}}
{{- end -}}

{{- define "starling.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "starling.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{/* The file name of the client CA inside the TLS Secret; empty without a CA. */}}
{{- define "starling.tlsCAKey" -}}
{{- if .Values.tls.existingSecret -}}{{ .Values.tls.existingSecretCAKey }}{{- else if .Values.tls.ca -}}ca.crt{{- end -}}
{{- end -}}

{{/* maxUnavailable that keeps a Raft majority of replicaCount voters: floor((n-1)/2). */}}
{{- define "starling.pdbMaxUnavailable" -}}
{{- div (sub (int .Values.replicaCount) 1) 2 -}}
{{- end -}}

{{/*
Cross-field rules the schema cannot express. Included by the StatefulSet, so that every
render (install, upgrade, template) checks them.
*/}}
{{- define "starling.validate" -}}
{{- $n := int .Values.replicaCount -}}
{{- $m := int .Values.cluster.initialMembers -}}
{{- if and (gt $n 1) (eq (mod $n 2) 0) (not .Values.cluster.allowEvenReplicas) -}}
{{- fail (printf "replicaCount=%d: a Raft cluster wants an odd number of voters (an even count tolerates no more failures than one less); set cluster.allowEvenReplicas=true to allow it" $n) -}}
{{- end -}}
{{- if gt $m $n -}}
{{- fail (printf "cluster.initialMembers=%d exceeds replicaCount=%d: every initial member must be a pod of the StatefulSet" $m $n) -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) (or (not .Values.tls.cert) (not .Values.tls.key)) -}}
{{- fail "tls.enabled=true needs tls.existingSecret (a kubernetes.io/tls Secret) or both tls.cert and tls.key" -}}
{{- end -}}
{{- if and .Values.tls.enabled .Values.tls.requireCertificate (not (include "starling.tlsCAKey" .)) -}}
{{- fail "tls.requireCertificate=true needs a CA to verify client certificates: tls.ca, or tls.existingSecretCAKey naming the CA in tls.existingSecret" -}}
{{- end -}}
{{- if and .Values.tls.enabled .Values.tls.useIdentityAsUsername (not .Values.tls.requireCertificate) -}}
{{- fail "tls.useIdentityAsUsername=true needs tls.requireCertificate=true" -}}
{{- end -}}
{{- if and .Values.cluster.tls.enabled (not .Values.cluster.tls.existingSecret) -}}
{{- fail "cluster.tls.enabled=true needs cluster.tls.existingSecret (tls.crt, tls.key and ca.crt, SAN *.<headless service>.<namespace>.svc.<clusterDomain>)" -}}
{{- end -}}
{{- if and .Values.pdb.enabled (not (kindIs "invalid" .Values.pdb.minAvailable)) (not (kindIs "invalid" .Values.pdb.maxUnavailable)) -}}
{{- fail "pdb: set pdb.minAvailable or pdb.maxUnavailable, not both" -}}
{{- end -}}
{{- if and (not .Values.auth.allowAnonymous) (not (include "starling.passwordKey" .)) (not .Values.tls.useIdentityAsUsername) -}}
{{- fail "auth.allowAnonymous=false but no password file is configured (auth.passwordFile or auth.existingSecret) and tls.useIdentityAsUsername is off: no client could connect" -}}
{{- end -}}
{{- $sts := lookup "apps/v1" "StatefulSet" .Release.Namespace (include "starling.fullname" .) -}}
{{- if and $sts (not .Values.cluster.allowScaleDown) -}}
{{- $current := int (default 1 $sts.spec.replicas) -}}
{{- if lt $n $current -}}
{{- fail (printf "replicaCount %d -> %d: a scale-down must first remove the highest members from the Raft configuration. For each ordinal i from %d down to %d run `kubectl exec %s-0 -- starling-ctl remove <i+1>`, then upgrade again with cluster.allowScaleDown=true (see docs/kubernetes.md)" $current $n (sub $current 1) $n (include "starling.fullname" .)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
