package k8s

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// Minimal views of the rendered objects: only what the assertions read.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name        string            `json:"name"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
	Spec struct {
		// Deployment
		Template struct {
			Metadata struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec podSpec `json:"spec"`
		} `json:"template"`
		// Service
		Type  string `json:"type"`
		Ports []struct {
			Name       string `json:"name"`
			Port       int    `json:"port"`
			TargetPort any    `json:"targetPort"`
			NodePort   int    `json:"nodePort"`
		} `json:"ports"`
		// ServiceMonitor
		Endpoints []struct {
			Port string `json:"port"`
			Path string `json:"path"`
		} `json:"endpoints"`
		// PodDisruptionBudget
		MinAvailable any `json:"minAvailable"`
		// A Service's selector is a label map; a PodDisruptionBudget's
		// has matchLabels.
		Selector any `json:"selector"`
	} `json:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds int         `json:"terminationGracePeriodSeconds"`
	SecurityContext               secContext  `json:"securityContext"`
	InitContainers                []container `json:"initContainers"`
	Containers                    []container `json:"containers"`
	Volumes                       []struct {
		Name      string         `json:"name"`
		ConfigMap map[string]any `json:"configMap"`
		Secret    map[string]any `json:"secret"`
		EmptyDir  map[string]any `json:"emptyDir"`
	} `json:"volumes"`
	AutomountServiceAccountToken *bool `json:"automountServiceAccountToken"`
}

type secContext struct {
	RunAsNonRoot             *bool `json:"runAsNonRoot"`
	ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
	Capabilities             struct {
		Drop []string `json:"drop"`
	} `json:"capabilities"`
	SeccompProfile struct {
		Type string `json:"type"`
	} `json:"seccompProfile"`
}

type probe struct {
	HTTPGet struct {
		Path string `json:"path"`
		Port any    `json:"port"`
	} `json:"httpGet"`
}

type container struct {
	Name            string     `json:"name"`
	Image           string     `json:"image"`
	Command         []string   `json:"command"`
	Args            []string   `json:"args"`
	SecurityContext secContext `json:"securityContext"`
	StartupProbe    *probe     `json:"startupProbe"`
	ReadinessProbe  *probe     `json:"readinessProbe"`
	LivenessProbe   *probe     `json:"livenessProbe"`
	Lifecycle       *struct {
		PreStop struct {
			Sleep *struct {
				Seconds int `json:"seconds"`
			} `json:"sleep"`
		} `json:"preStop"`
	} `json:"lifecycle"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	VolumeMounts []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
		SubPath   string `json:"subPath"`
	} `json:"volumeMounts"`
}

// entrypointConfig mirrors the keys of config.Config the chart writes.
type entrypointConfig struct {
	PreStopDelay string `json:"preStopDelay"`
	Health       struct {
		Listen         string `json:"listen"`
		Admin          bool   `json:"admin"`
		AdminTokenFile string `json:"adminTokenFile"`
	} `json:"health"`
	Apps []struct {
		Name    string   `json:"name"`
		Command []string `json:"command"`
		Listen  []struct {
			Name    string `json:"name"`
			Address string `json:"address"`
		} `json:"listen"`
		Readiness    map[string]any `json:"readiness"`
		Takeover     string         `json:"takeover"`
		Watch        []string       `json:"watch"`
		Validate     []string       `json:"validate"`
		DrainTimeout string         `json:"drainTimeout"`
		StopSignal   string         `json:"stopSignal"`
		Restart      struct {
			Policy string `json:"policy"`
		} `json:"restart"`
	} `json:"apps"`
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func helmPath(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if h, err := exec.LookPath("helm"); err == nil {
		return h
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		h := filepath.Join(strings.TrimSpace(string(out)), "bin", "helm")
		if _, err := os.Stat(h); err == nil {
			return h
		}
	}
	t.Skip("helm not found (scripts/test.sh and e2e/k8s/lint.sh install it)")
	return ""
}

// render runs helm template with the given extra arguments and returns the
// objects by kind/name.
func render(t *testing.T, args ...string) map[string]object {
	t.Helper()
	chart := filepath.Join(repoRoot(t), "charts", "entrypoint")
	cmd := exec.Command(helmPath(t), append([]string{"template", "rel", chart, "-n", "ns"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, stderr.String())
	}
	objs := map[string]object{}
	for _, doc := range strings.Split(string(out), "\n---") {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("parse rendered object: %v\n%s", err, doc)
		}
		if o.Kind == "" {
			continue
		}
		objs[o.Kind+"/"+o.Metadata.Name] = o
	}
	return objs
}

func mustGet(t *testing.T, objs map[string]object, key string) object {
	t.Helper()
	o, ok := objs[key]
	if !ok {
		keys := make([]string, 0, len(objs))
		for k := range objs {
			keys = append(keys, k)
		}
		t.Fatalf("no %s rendered; have %v", key, keys)
	}
	return o
}

func epConfig(t *testing.T, objs map[string]object) entrypointConfig {
	t.Helper()
	cm := mustGet(t, objs, "ConfigMap/rel-entrypoint-entrypoint")
	var c entrypointConfig
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &c); err != nil {
		t.Fatalf("entrypoint config.yaml: %v\n%s", err, cm.Data["config.yaml"])
	}
	return c
}

func ciValues(t *testing.T, name string) string {
	return filepath.Join(repoRoot(t), "charts", "entrypoint", "ci", name)
}

func checkSecure(t *testing.T, what string, sc secContext) {
	t.Helper()
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: runAsNonRoot not true", what)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem not true", what)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation not false", what)
	}
	if !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("%s: capabilities.drop = %v, want [ALL]", what, sc.Capabilities.Drop)
	}
	if sc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("%s: seccompProfile %q, want RuntimeDefault", what, sc.SeccompProfile.Type)
	}
}

func TestChartDefaults(t *testing.T) {
	objs := render(t, "--kube-version", "1.32.0")
	d := mustGet(t, objs, "Deployment/rel-entrypoint")
	pod := d.Spec.Template.Spec
	for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
		if d.Metadata.Labels[l] == "" || pod.Containers == nil || d.Spec.Template.Metadata.Labels[l] == "" {
			t.Errorf("label %s missing on the Deployment or its pods", l)
		}
	}
	if len(pod.InitContainers) != 0 {
		t.Errorf("mode image renders init containers: %+v", pod.InitContainers)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("want 1 container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if want := []string{"/entrypoint", "--config", "/etc/entrypoint/config.yaml"}; !slices.Equal(c.Command, want) {
		t.Errorf("command %q, want %q", c.Command, want)
	}
	checkSecure(t, "container", c.SecurityContext)
	if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod securityContext not restricted: %+v", pod.SecurityContext)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("service account token mounted by default")
	}
	for name, p := range map[string]*probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		want := "/readyz"
		if name == "liveness" {
			want = "/livez"
		}
		if p == nil {
			t.Errorf("no %s probe", name)
			continue
		}
		if p.HTTPGet.Path != want || p.HTTPGet.Port != "health" {
			t.Errorf("%s probe %s on %v, want %s on health", name, p.HTTPGet.Path, p.HTTPGet.Port, want)
		}
	}
	// 1.32 has the native sleep action: the kubelet waits the pre-stop
	// delay, entrypoint must not wait it a second time.
	if c.Lifecycle == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds != 5 {
		t.Errorf("preStop sleep not 5s: %+v", c.Lifecycle)
	}
	cfg := epConfig(t, objs)
	if cfg.PreStopDelay != "0s" {
		t.Errorf("entrypoint preStopDelay %q with a preStop sleep, want 0s", cfg.PreStopDelay)
	}
	if got, want := pod.TerminationGracePeriodSeconds, 5+30+10; got != want {
		t.Errorf("terminationGracePeriodSeconds %d, want preStop 5 + drain 30 + margin 10 = %d", got, want)
	}
	if cfg.Health.Listen != ":9090" || cfg.Health.Admin {
		t.Errorf("health %+v, want :9090 without admin", cfg.Health)
	}
	if len(cfg.Apps) != 1 || len(cfg.Apps[0].Command) == 0 || len(cfg.Apps[0].Listen) != 1 || cfg.Apps[0].Listen[0].Address != ":8080" {
		t.Errorf("apps %+v, want one app listening on :8080", cfg.Apps)
	}
	svc := mustGet(t, objs, "Service/rel-entrypoint")
	ports := map[string]int{}
	for _, p := range svc.Spec.Ports {
		ports[p.Name] = p.Port
	}
	if ports["http"] != 80 || ports["metrics"] != 9090 {
		t.Errorf("service ports %v, want http 80 and metrics 9090", ports)
	}
	for _, k := range []string{"ServiceMonitor/rel-entrypoint", "PodDisruptionBudget/rel-entrypoint", "Secret/rel-entrypoint-admin"} {
		if _, ok := objs[k]; ok {
			t.Errorf("%s rendered by default", k)
		}
	}
	if _, ok := objs["Pod/rel-entrypoint-test-readyz"]; !ok {
		t.Errorf("no helm test pod")
	}
}

func TestChartPreStopModes(t *testing.T) {
	for _, tc := range []struct {
		name, kube, mode string
		sleep            int
		delay            string
		grace            int
	}{
		{"auto on 1.29 falls back to entrypoint", "1.29.0", "auto", 0, "5s", 45},
		{"entrypoint", "1.32.0", "entrypoint", 0, "5s", 45},
		{"sleep", "1.32.0", "sleep", 5, "0s", 45},
		{"none", "1.32.0", "none", 0, "0s", 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, "--kube-version", tc.kube, "--set", "termination.preStop="+tc.mode)
			c := mustGet(t, objs, "Deployment/rel-entrypoint").Spec.Template.Spec.Containers[0]
			sleep := 0
			if c.Lifecycle != nil && c.Lifecycle.PreStop.Sleep != nil {
				sleep = c.Lifecycle.PreStop.Sleep.Seconds
			}
			if sleep != tc.sleep {
				t.Errorf("preStop sleep %d, want %d", sleep, tc.sleep)
			}
			if got := epConfig(t, objs).PreStopDelay; got != tc.delay {
				t.Errorf("entrypoint preStopDelay %q, want %q", got, tc.delay)
			}
			if got := mustGet(t, objs, "Deployment/rel-entrypoint").Spec.Template.Spec.TerminationGracePeriodSeconds; got != tc.grace {
				t.Errorf("grace %d, want %d", got, tc.grace)
			}
		})
	}
}

func TestChartDurations(t *testing.T) {
	objs := render(t, "--set", "termination.preStop=entrypoint,termination.preStopDelay=1500ms,termination.drainTimeout=1m30s,termination.graceMarginSeconds=3")
	if got := mustGet(t, objs, "Deployment/rel-entrypoint").Spec.Template.Spec.TerminationGracePeriodSeconds; got != 95 {
		t.Errorf("grace %d, want ceil(2 + 90 + 3) = 95", got)
	}
}

func TestChartSeveralApps(t *testing.T) {
	objs := render(t, "-f", ciValues(t, "several-apps-values.yaml"))
	pod := mustGet(t, objs, "Deployment/rel-entrypoint").Spec.Template.Spec
	if len(pod.InitContainers) != 1 {
		t.Fatalf("initContainer mode: %d init containers", len(pod.InitContainers))
	}
	ic := pod.InitContainers[0]
	if !strings.Contains(ic.Image, "entrypoint") || ic.Command[len(ic.Command)-1] != "/opt/entrypoint" {
		t.Errorf("init container %s %q does not install into /opt/entrypoint", ic.Image, ic.Command)
	}
	checkSecure(t, "init container", ic.SecurityContext)
	c := pod.Containers[0]
	if c.Command[0] != "/opt/entrypoint/entrypoint" || c.Image != "docker.io/library/nginx:1.27" {
		t.Errorf("app container %s runs %q", c.Image, c.Command)
	}
	cfg := epConfig(t, objs)
	if len(cfg.Apps) != 2 || cfg.Apps[0].Name != "web" || cfg.Apps[1].Name != "grpc" {
		t.Fatalf("apps %+v", cfg.Apps)
	}
	if cfg.Apps[1].StopSignal != "SIGINT" || cfg.Apps[1].Restart.Policy != "restart" || cfg.Apps[1].DrainTimeout != "1m" {
		t.Errorf("grpc app %+v", cfg.Apps[1])
	}
	if cfg.Apps[0].Readiness["type"] != "notify" || !slices.Equal(cfg.Apps[0].Watch, []string{"/etc/app"}) || len(cfg.Apps[0].Validate) == 0 {
		t.Errorf("web app %+v", cfg.Apps[0])
	}
	if cfg.PreStopDelay != "3s" {
		t.Errorf("preStopDelay %q, want 3s (preStop: entrypoint)", cfg.PreStopDelay)
	}
	if got := pod.TerminationGracePeriodSeconds; got != 3+60+10 {
		t.Errorf("grace %d, want preStop 3 + longest drain 60 + 10", got)
	}
	var names []string
	for _, p := range mustGet(t, objs, "Service/rel-entrypoint").Spec.Ports {
		names = append(names, p.Name)
	}
	if want := []string{"http", "https", "grpc", "metrics"}; !slices.Equal(names, want) {
		t.Errorf("service ports %v, want %v (debug has service: false)", names, want)
	}
}

// TestChartTakeover: the takeover value reaches the app's config, an
// app's own value wins over the chart-wide one, and the default readiness
// gate is auto, so a server that binds its own port is ready at its
// listen() without any readiness value.
func TestChartTakeover(t *testing.T) {
	a := epConfig(t, render(t)).Apps[0]
	if a.Takeover != "auto" || a.Readiness["type"] != "auto" {
		t.Errorf("defaults: takeover %q readiness %v, want auto and auto", a.Takeover, a.Readiness)
	}
	if a := epConfig(t, render(t, "--set", "takeover=on")).Apps[0]; a.Takeover != "on" {
		t.Errorf("--set takeover=on: app takeover %q", a.Takeover)
	}
	apps := epConfig(t, render(t, "-f", ciValues(t, "several-apps-values.yaml"), "--set", "takeover=on")).Apps
	if apps[0].Takeover != "on" || apps[1].Takeover != "off" {
		t.Errorf("several apps with takeover=on: web %q grpc %q, want on (chart-wide) and off (its own)", apps[0].Takeover, apps[1].Takeover)
	}
}

// TestChartConfigNotHashed: the app's files are swapped in place by
// entrypoint, so changing them must not change the pod template (which
// would roll the pods and defeat the hot swap); entrypoint's own config must.
func TestChartConfigNotHashed(t *testing.T) {
	a := mustGet(t, render(t, "--set", "config.files.app\\.yaml=one"), "Deployment/rel-entrypoint")
	b := mustGet(t, render(t, "--set", "config.files.app\\.yaml=two"), "Deployment/rel-entrypoint")
	ya, _ := yaml.Marshal(a.Spec.Template)
	yb, _ := yaml.Marshal(b.Spec.Template)
	if !bytes.Equal(ya, yb) {
		t.Errorf("pod template changes with config.files:\n%s\n---\n%s", ya, yb)
	}
	c := mustGet(t, render(t, "--set", "config.files.app\\.yaml=one,termination.drainTimeout=31s"), "Deployment/rel-entrypoint")
	if a.Spec.Template.Metadata.Annotations["checksum/entrypoint-config"] == c.Spec.Template.Metadata.Annotations["checksum/entrypoint-config"] {
		t.Errorf("entrypoint config change does not change the checksum annotation")
	}
	for _, m := range a.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.SubPath != "" {
			t.Errorf("volume %s mounted with subPath %q: the kubelet never updates it", m.Name, m.SubPath)
		}
	}
	var found bool
	for _, m := range a.Spec.Template.Spec.Containers[0].VolumeMounts {
		found = found || (m.Name == "app-config" && m.MountPath == "/etc/app")
	}
	if !found {
		t.Errorf("app config not mounted at /etc/app")
	}
}

func TestChartAdminAndMonitoring(t *testing.T) {
	objs := render(t, "-f", ciValues(t, "admin-values.yaml"))
	cfg := epConfig(t, objs)
	if !cfg.Health.Admin || cfg.Health.AdminTokenFile != "/var/run/secrets/entrypoint/admin/token" {
		t.Errorf("health %+v, want admin with the token file", cfg.Health)
	}
	pod := mustGet(t, objs, "Deployment/rel-entrypoint").Spec.Template.Spec
	var secret string
	for _, v := range pod.Volumes {
		if v.Name == "admin-token" {
			secret, _ = v.Secret["secretName"].(string)
		}
	}
	if secret != "my-admin-token" {
		t.Errorf("admin token volume from %q, want my-admin-token", secret)
	}
	if _, ok := objs["Secret/rel-entrypoint-admin"]; ok {
		t.Errorf("Secret created although existingSecret is set")
	}
	svc := mustGet(t, objs, "Service/rel-entrypoint")
	if svc.Spec.Type != "NodePort" || svc.Spec.Ports[0].NodePort != 30080 {
		t.Errorf("service %+v, want NodePort 30080", svc.Spec)
	}
	if pdb := mustGet(t, objs, "PodDisruptionBudget/rel-entrypoint"); pdb.Spec.MinAvailable != float64(1) {
		t.Errorf("pdb minAvailable %v", pdb.Spec.MinAvailable)
	}

	objs = render(t, "-f", ciValues(t, "servicemonitor-values.yaml"))
	sm := mustGet(t, objs, "ServiceMonitor/rel-entrypoint")
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("servicemonitor endpoints %+v", sm.Spec.Endpoints)
	}
	if s := mustGet(t, objs, "Secret/rel-entrypoint-admin"); len(s.Data["token"]) == 0 {
		t.Errorf("generated admin Secret has no token")
	}
	if img := mustGet(t, objs, "Deployment/rel-entrypoint").Spec.Template.Spec.Containers[0].Image; !strings.Contains(img, "@sha256:") {
		t.Errorf("image %s not pinned by digest", img)
	}
}

// TestChartTestPodOutsideSelectors: a helm test pod that carries the
// Service's selector labels becomes one of its endpoints while it runs (it
// has no readiness probe, so it is Ready at once) and every request the
// Service sends it is refused. TestCluster saw 116 refused requests during
// `helm test` before the test pod's labels were cut down.
func TestChartTestPodOutsideSelectors(t *testing.T) {
	objs := render(t, "-f", ciValues(t, "admin-values.yaml"))
	pod := mustGet(t, objs, "Pod/rel-entrypoint-test-readyz")
	selectors := map[string]map[string]string{}
	for key, o := range objs {
		sel := map[string]string{}
		switch s := o.Spec.Selector.(type) {
		case map[string]any:
			m := s
			if ml, ok := s["matchLabels"].(map[string]any); ok {
				m = ml
			}
			for k, v := range m {
				if vs, ok := v.(string); ok {
					sel[k] = vs
				}
			}
		}
		if len(sel) > 0 {
			selectors[key] = sel
		}
	}
	if _, ok := selectors["Service/rel-entrypoint"]; !ok {
		t.Fatalf("no selector found on Service/rel-entrypoint; have %v", selectors)
	}
	for key, sel := range selectors {
		matches := true
		for k, v := range sel {
			if pod.Metadata.Labels[k] != v {
				matches = false
			}
		}
		if matches {
			t.Errorf("the helm test pod's labels %v match the selector %v of %s", pod.Metadata.Labels, sel, key)
		}
	}
}

// TestChartStopSignalDefault: the chart leaves the stop signal to
// entrypoint unless a value sets it, so a known server gets its graceful
// stop through the chart as it does through the binary. The rendered
// config goes through the real binary's `validate`, which prints the
// effective config.
func TestChartStopSignalDefault(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "entrypoint")
	build := exec.Command("go", "build", "-o", bin, "./cmd/entrypoint")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"default command", nil, "stopSignal: SIGTERM"},
		{"nginx", []string{"--set-json", `command=["nginx","-g","daemon off;"]`}, "stopSignal: SIGQUIT"},
		{"haproxy", []string{"--set-json", `command=["haproxy","-Ws","-f","/etc/haproxy/haproxy.cfg"]`}, "stopSignal: SIGUSR1"},
		{"nginx with a value", []string{"--set-json", `command=["nginx","-g","daemon off;"]`, "--set", "termination.stopSignal=SIGTERM"}, "stopSignal: SIGTERM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, tc.args...)
			cm := mustGet(t, objs, "ConfigMap/rel-entrypoint-entrypoint")
			if strings.Contains(cm.Data["config.yaml"], "stopSignal") != slices.Contains(tc.args, "termination.stopSignal=SIGTERM") {
				t.Errorf("config.yaml writes a stop signal only when a value sets one:\n%s", cm.Data["config.yaml"])
			}
			f := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(f, []byte(cm.Data["config.yaml"]), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, "validate", "--config", f).CombinedOutput()
			if err != nil {
				t.Fatalf("entrypoint validate: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("effective config lacks %q:\n%s", tc.want, out)
			}
		})
	}
}
