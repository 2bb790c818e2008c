{{/*
Names and labels. The fullname is cut at 63 characters because it becomes a
DNS label (Service name).
*/}}
{{- define "entrypoint.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "entrypoint.fullname" -}}
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

{{- define "entrypoint.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "entrypoint.selectorLabels" -}}
app.kubernetes.io/name: {{ include "entrypoint.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "entrypoint.labels" -}}
helm.sh/chart: {{ include "entrypoint.chart" . }}
{{ include "entrypoint.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: entrypoint
{{- end }}

{{/*
Labels of the helm test pod: the common ones without app.kubernetes.io/name,
so that it never matches the selector of the Service (it would become an
endpoint that refuses every request while the test runs), the Deployment or
the PodDisruptionBudget.
*/}}
{{- define "entrypoint.testLabels" -}}
helm.sh/chart: {{ include "entrypoint.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: entrypoint
app.kubernetes.io/component: test
{{- end }}

{{- define "entrypoint.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "entrypoint.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
entrypoint.image renders repository:tag or repository@digest.
Call with (dict "image" .Values.image "root" .).
*/}}
{{- define "entrypoint.image" -}}
{{- $img := .image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default .root.Chart.AppVersion $img.tag) }}
{{- end }}
{{- end }}

{{/*
entrypoint.seconds turns a Go duration ("30s", "1m30s", "500ms") into
seconds as a float string. Helm has no duration parser, and
terminationGracePeriodSeconds must follow the drain timeout and the pre-stop
delay the user wrote as durations. values.schema.json guarantees the format.
*/}}
{{- define "entrypoint.seconds" -}}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h)" (toString .) -1 }}
{{- $n := float64 (regexFind "^[0-9]+(\\.[0-9]+)?" .) }}
{{- $u := regexFind "(ns|us|µs|ms|s|m|h)$" . }}
{{- $f := dict "ns" 0.000000001 "us" 0.000001 "µs" 0.000001 "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 }}
{{- $total = addf $total (mulf $n (get $f $u)) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
entrypoint.preStop resolves termination.preStop "auto" to "sleep" when the
cluster has the native sleep action (PodLifecycleSleepAction: beta and on by
default since 1.30), else "entrypoint".
*/}}
{{- define "entrypoint.preStop" -}}
{{- $m := .Values.termination.preStop }}
{{- if eq $m "auto" }}
{{- if semverCompare ">=1.30-0" .Capabilities.KubeVersion.Version }}sleep{{ else }}entrypoint{{ end }}
{{- else }}
{{- $m }}
{{- end }}
{{- end }}

{{/*
entrypoint.apps normalises the single-app values (command, listeners, ...)
and the multi-app list into one list, as JSON: {"apps": [...]}. Both the
config file and the Service ports read it, so they cannot disagree.
*/}}
{{- define "entrypoint.apps" -}}
{{- $v := .Values }}
{{- $apps := list }}
{{- if $v.apps }}
{{- $apps = $v.apps }}
{{- else }}
{{- if not $v.command }}
{{- fail "command is empty: set command to the app's argv (command: [\"/app\", \"-flag\"]) or list apps" }}
{{- end }}
{{- $watch := list }}
{{- if and $v.config.watch (or $v.config.files $v.config.existingConfigMap) }}
{{- $watch = list $v.config.mountPath }}
{{- end }}
{{- $apps = list (dict "name" $v.appName "command" $v.command "listeners" $v.listeners "readiness" $v.readiness "takeover" $v.takeover "watch" $watch "validate" $v.config.validate "onChange" $v.config.onChange) }}
{{- end }}
{{- dict "apps" $apps | toJson }}
{{- end }}

{{/*
entrypoint.drainSeconds is the longest drain timeout of all apps.
*/}}
{{- define "entrypoint.drainSeconds" -}}
{{- $max := float64 (include "entrypoint.seconds" .Values.termination.drainTimeout) }}
{{- range (include "entrypoint.apps" . | fromJson).apps }}
{{- if .drainTimeout }}
{{- $max = max $max (float64 (include "entrypoint.seconds" .drainTimeout)) }}
{{- end }}
{{- end }}
{{- $max }}
{{- end }}

{{/*
entrypoint.config is entrypoint's own config file (config.Config in the Go
code). It is what the pod runs, so a change to it rolls the Deployment
(checksum annotation); the app's files in config.files are watched and
swapped in place instead.
*/}}
{{- define "entrypoint.config" -}}
{{- $v := .Values }}
{{- $preStop := include "entrypoint.preStop" . }}
{{- $delay := $v.termination.preStopDelay }}
{{- if ne $preStop "entrypoint" }}
{{- $delay = "0s" }}
{{- end }}
{{- $health := dict "listen" (printf ":%d" (int $v.entrypoint.healthPort)) }}
{{- if $v.admin.enabled }}
{{- $_ := set $health "admin" true }}
{{- $_ := set $health "adminTokenFile" (printf "/var/run/secrets/entrypoint/admin/%s" $v.admin.secretKey) }}
{{- end }}
{{- $apps := list }}
{{- range (include "entrypoint.apps" . | fromJson).apps }}
{{- $a := dict "name" .name "command" .command }}
{{- if .env }}{{ $_ := set $a "env" .env }}{{ end }}
{{- $listen := list }}
{{- range .listeners }}
{{- $listen = append $listen (dict "name" .name "address" (printf ":%d" (int .port))) }}
{{- end }}
{{- if $listen }}{{ $_ := set $a "listen" $listen }}{{ end }}
{{- $r := dict }}
{{- range $k, $x := (default dict .readiness) }}
{{- if $x }}{{ $_ := set $r $k $x }}{{ end }}
{{- end }}
{{- if $r }}{{ $_ := set $a "readiness" $r }}{{ end }}
{{- if .watch }}
{{- $_ := set $a "watch" .watch }}
{{- $_ := set $a "watchDebounce" $v.config.debounce }}
{{- end }}
{{- if .validate }}{{ $_ := set $a "validate" .validate }}{{ end }}
{{- if .onChange }}{{ $_ := set $a "onChange" .onChange }}{{ end }}
{{- with (default $v.takeover .takeover) }}{{ $_ := set $a "takeover" . }}{{ end }}
{{- $_ := set $a "drainTimeout" (default $v.termination.drainTimeout .drainTimeout) }}
{{- with (default $v.termination.stopSignal .stopSignal) }}{{ $_ := set $a "stopSignal" . }}{{ end }}
{{- $_ := set $a "restart" (default (dict "policy" $v.restartPolicy) .restart) }}
{{- $apps = append $apps $a }}
{{- end }}
{{- $c := dict "logFormat" $v.entrypoint.logFormat "logLevel" $v.entrypoint.logLevel "signalTarget" $v.entrypoint.signalTarget "preStopDelay" $delay "health" $health "apps" $apps }}
{{- toYaml $c }}
{{- end }}

{{/*
entrypoint.bin is the binary's path inside the app container.
*/}}
{{- define "entrypoint.bin" -}}
{{- if eq .Values.mode "initContainer" }}
{{- printf "%s/entrypoint" (trimSuffix "/" .Values.entrypoint.installDir) }}
{{- else }}
{{- .Values.entrypoint.path }}
{{- end }}
{{- end }}

{{/*
entrypoint.killCmd is what `kubectl exec` runs to send SIGUSR1 to PID 1.
*/}}
{{- define "entrypoint.killCmd" -}}
{{- if eq .Values.mode "initContainer" }}
{{- printf "%s/kill" (trimSuffix "/" .Values.entrypoint.installDir) }}
{{- else }}kill{{ end }}
{{- end }}

{{- define "entrypoint.adminSecretName" -}}
{{- default (printf "%s-admin" (include "entrypoint.fullname" .)) .Values.admin.existingSecret }}
{{- end }}

{{- define "entrypoint.configMapName" -}}
{{- default (printf "%s-config" (include "entrypoint.fullname" .)) .Values.config.existingConfigMap }}
{{- end }}
