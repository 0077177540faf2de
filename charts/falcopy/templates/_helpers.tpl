{{/* Names, labels and the rendered agent configuration. */}}

{{- define "falcopy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "falcopy.fullname" -}}
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

{{- define "falcopy.operatorName" -}}
{{- printf "%s-operator" (include "falcopy.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- /* the operator replicas' leader election Lease, in the release namespace */}}
{{- define "falcopy.operatorLeaderLease" -}}
{{- printf "%s-leader" (include "falcopy.operatorName" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "falcopy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "falcopy.labels" -}}
helm.sh/chart: {{ include "falcopy.chart" . }}
app.kubernetes.io/name: {{ include "falcopy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: falcopy
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "falcopy.agentSelectorLabels" -}}
app.kubernetes.io/name: {{ include "falcopy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "falcopy.agentLabels" -}}
{{ include "falcopy.labels" . }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "falcopy.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "falcopy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "falcopy.operatorLabels" -}}
{{ include "falcopy.labels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "falcopy.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.registry -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "falcopy.agentServiceAccountName" -}}
{{- if .Values.agent.serviceAccount.create -}}
{{- default (include "falcopy.fullname" .) .Values.agent.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.agent.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "falcopy.operatorServiceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "falcopy.operatorName" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* ConfigMaps the agents mount as directories (kubelet updates them in place). */}}
{{- define "falcopy.customRulesConfigMap" -}}
{{- printf "%s-rules" (include "falcopy.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Written by the operator (`<prefix>-0` .. `<prefix>-<shards-1>`), never by Helm:
     a helm upgrade must not erase the rules the operator delivered. */}}
{{- define "falcopy.operatorRulesPrefix" -}}
{{- printf "%s-falcorules" (include "falcopy.fullname" .) | trunc 55 | trimSuffix "-" -}}
{{- end -}}

{{- define "falcopy.operatorRulesConfigMaps" -}}
{{- $prefix := include "falcopy.operatorRulesPrefix" . -}}
{{- $names := list -}}
{{- range $i := until (int .Values.operator.shards) -}}
{{- $names = append $names (printf "%s-%d" $prefix $i) -}}
{{- end -}}
{{- toYaml $names -}}
{{- end -}}

{{/* The workload-metadata collector runs in the operator (docs/enrichment.md). */}}
{{- define "falcopy.collectorEnabled" -}}
{{- if and .Values.operator.enabled .Values.operator.collector.enabled -}}true{{- end -}}
{{- end -}}
{{- define "falcopy.collectorName" -}}
{{- printf "%s-collector" (include "falcopy.operatorName" .) -}}
{{- end -}}
{{- define "falcopy.collectorCADir" -}}/etc/falcopy/k8smeta{{- end -}}

{{- define "falcopy.webhookSecret" -}}
{{- default (printf "%s-webhook-tls" (include "falcopy.operatorName" .)) .Values.operator.webhook.existingSecret -}}
{{- end -}}

{{/* The k8s audit endpoint: Service, serving certificate, API server client certificate. */}}
{{- define "falcopy.k8sAuditName" -}}
{{- printf "%s-k8s-audit" (include "falcopy.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "falcopy.k8sAuditTlsSecret" -}}
{{- default (printf "%s-tls" (include "falcopy.k8sAuditName" .)) .Values.agent.k8sAudit.tls.existingSecret -}}
{{- end -}}

{{- define "falcopy.k8sAuditClientSecret" -}}
{{- printf "%s-client" (include "falcopy.k8sAuditName" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "falcopy.k8sAuditClientCA" -}}
{{- printf "%s-client-ca" (include "falcopy.k8sAuditName" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "falcopy.k8sAuditTlsDir" -}}/etc/falcopy/k8s-audit/tls{{- end -}}
{{- define "falcopy.k8sAuditClientCADir" -}}/etc/falcopy/k8s-audit/client-ca{{- end -}}

{{/* The CRDs shipped in crds/ (group, kind, plural), as a YAML list. */}}
{{- define "falcopy.crds" -}}
{{- $crds := list -}}
{{- range $path, $_ := .Files.Glob "crds/*.yaml" -}}
{{- $crd := $.Files.Get $path | fromYaml -}}
{{- if and $crd.spec $crd.spec.group -}}
{{- $crds = append $crds (dict "group" $crd.spec.group "kind" $crd.spec.names.kind "plural" $crd.spec.names.plural "scope" $crd.spec.scope) -}}
{{- end -}}
{{- end -}}
{{- toYaml $crds -}}
{{- end -}}

{{/* Paths inside the agent container. */}}
{{- define "falcopy.configDir" -}}/etc/falcopy{{- end -}}
{{- define "falcopy.customRulesDir" -}}/etc/falcopy/rules.d/custom{{- end -}}
{{- define "falcopy.operatorRulesDir" -}}/etc/falcopy/rules.d/operator{{- end -}}

{{/* rules_files: the user's list, else default rules, customRules, operator rules. */}}
{{- define "falcopy.rulesFiles" -}}
{{- $user := (include "falcopy.config" . | fromYaml).rules_files -}}
{{- if $user -}}
{{- toYaml $user -}}
{{- else -}}
{{- $files := list .Values.agent.defaultRulesDir -}}
{{- if .Values.customRules -}}
{{- $files = append $files (include "falcopy.customRulesDir" .) -}}
{{- end -}}
{{- if .Values.operator.enabled -}}
{{- $files = append $files (include "falcopy.operatorRulesDir" .) -}}
{{- end -}}
{{- toYaml $files -}}
{{- end -}}
{{- end -}}

{{/* The falco.yaml keys in effect: `config`, then the Falco chart's `falco` passthrough
     over it, then the Falco chart keys that set configuration (driver, metrics). */}}
{{- define "falcopy.config" -}}
{{- $cfg := mergeOverwrite (deepCopy .Values.config) (deepCopy (default dict .Values.falco)) -}}
{{- $preset := .Values.driver.modernEbpf.bufSizePreset -}}
{{- if not (kindIs "invalid" $preset) -}}
{{- $engine := deepCopy (default dict $cfg.engine) -}}
{{- $modern := deepCopy (default dict $engine.modern_ebpf) -}}
{{- $_ := set $modern "buf_size_preset" $preset -}}
{{- $_ := set $engine "modern_ebpf" $modern -}}
{{- $_ := set $cfg "engine" $engine -}}
{{- end -}}
{{- if .Values.metrics.enabled -}}
{{- $metrics := deepCopy (default dict $cfg.metrics) -}}
{{- $_ := set $metrics "enabled" true -}}
{{- $_ := set $cfg "metrics" $metrics -}}
{{- $web := deepCopy (default dict $cfg.webserver) -}}
{{- $_ := set $web "prometheus_metrics_enabled" true -}}
{{- $_ := set $cfg "webserver" $web -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* Where falcosidekick listens: the user's URL, else the one this chart deploys. */}}
{{- define "falcopy.falcosidekickName" -}}
{{- printf "%s-falcosidekick" (include "falcopy.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "falcopy.falcosidekickUrl" -}}
{{- if .Values.falcosidekick.url -}}
{{- .Values.falcosidekick.url -}}
{{- else -}}
{{- printf "http://%s.%s.svc:%d/" (include "falcopy.falcosidekickName" .) .Release.Namespace (int .Values.falcosidekick.service.port) -}}
{{- end -}}
{{- end -}}

{{/* falcosidekick's configuration as its environment: config.slack.webhookurl -> SLACK_WEBHOOKURL. */}}
{{- define "falcopy.falcosidekickEnv" -}}
{{- $prefix := .prefix -}}
{{- range $key, $value := .config -}}
{{- $name := upper (printf "%s%s" $prefix $key) -}}
{{- if kindIs "map" $value -}}
{{- include "falcopy.falcosidekickEnv" (dict "prefix" (printf "%s_" $name) "config" $value) -}}
{{- else if kindIs "slice" $value -}}
{{ $name }}: {{ join "," $value | quote }}
{{ else -}}
{{ $name }}: {{ toString $value | quote }}
{{ end -}}
{{- end -}}
{{- end -}}

{{/* Falco chart keys win over their agent.* counterparts when set. */}}
{{- define "falcopy.agentLeastPrivileged" -}}
{{- if or .Values.driver.modernEbpf.leastPrivileged .Values.agent.leastPrivileged.enabled -}}true{{- end -}}
{{- end -}}

{{/* falcopy.yaml: the configuration in effect + what the chart decides for the node. */}}
{{- define "falcopy.agentConfig" -}}
{{- $cfg := include "falcopy.config" . | fromYaml -}}
{{- $_ := set $cfg "rules_files" (include "falcopy.rulesFiles" . | fromYamlArray) -}}
{{- if .Values.falcosidekick.enabled -}}
{{- $http := deepCopy (default dict $cfg.http_output) -}}
{{- $_ := set $http "enabled" true -}}
{{- $_ := set $http "url" (include "falcopy.falcosidekickUrl" .) -}}
{{- $_ := set $cfg "http_output" $http -}}
{{- $_ := set $cfg "json_output" true -}}
{{- $_ := set $cfg "json_include_output_fields_property" true -}}
{{- end -}}
{{- if and $cfg.capture $cfg.capture.enabled (not $cfg.capture.path_prefix) -}}
{{- $capture := deepCopy $cfg.capture -}}
{{- $_ := set $capture "path_prefix" (printf "%s/falcopy" .Values.agent.capture.mountPath) -}}
{{- $_ := set $cfg "capture" $capture -}}
{{- end -}}
{{- if and $cfg.capture (not $cfg.capture.path_prefix) -}}
{{- $_ := unset $cfg.capture "path_prefix" -}}
{{- end -}}
{{- $host := dict "root" .Values.agent.hostRoot "proc" (printf "%s/proc" .Values.agent.hostRoot) -}}
{{- $kubelet := dict "enabled" .Values.agent.kubelet.enabled "insecure" .Values.agent.kubelet.insecure -}}
{{- $a := .Values.agent.k8sAudit -}}
{{- $audit := dict "enabled" $a.enabled "listen_address" "0.0.0.0" "listen_port" (int $a.port) "path" $a.path -}}
{{- if and $a.enabled $a.tls.enabled -}}
{{- $tls := include "falcopy.k8sAuditTlsDir" . -}}
{{- $_ := set $audit "ssl_enabled" true -}}
{{- $_ := set $audit "ssl_certificate" (printf "%s/tls.crt" $tls) -}}
{{- $_ := set $audit "ssl_key" (printf "%s/tls.key" $tls) -}}
{{- if $a.clientAuth.enabled -}}
{{- $_ := set $audit "ssl_client_ca" (printf "%s/ca.crt" (include "falcopy.k8sAuditClientCADir" .)) -}}
{{- end -}}
{{- end -}}
{{- $enrichment := dict "enabled" true "kubelet" $kubelet -}}
{{- if include "falcopy.collectorEnabled" . -}}
{{- $url := printf "https://%s.%s.svc:%d" (include "falcopy.collectorName" .) .Release.Namespace (int .Values.operator.collector.port) -}}
{{- $idle := mul 4 (int .Values.operator.collector.heartbeatSeconds) -}}
{{- $_ := set $enrichment "k8smeta" (dict "enabled" true "url" $url "ca_file" (printf "%s/ca.crt" (include "falcopy.collectorCADir" .)) "idle_timeout_s" $idle) -}}
{{- end -}}
{{- $computed := dict "host" $host "enrichment" $enrichment "k8s_audit" $audit -}}
{{- if and .Values.operator.enabled .Values.agent.rulesApi.enabled -}}
{{- $names := include "falcopy.operatorRulesConfigMaps" . | fromYamlArray -}}
{{- $_ := set $computed "rules_api" (dict "enabled" true "namespace" .Release.Namespace "configmaps" $names "volume" (include "falcopy.operatorRulesDir" .)) -}}
{{- end -}}
{{- $_ := set $cfg "falcopy" (mergeOverwrite $computed (deepCopy (default dict $cfg.falcopy))) -}}
{{- toYaml $cfg -}}
{{- end -}}
