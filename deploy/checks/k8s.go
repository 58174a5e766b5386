package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// Peak RSS per service from README.md "Benchmarks" (MB); memory limits must exceed them.
// aggregate's is the backlog-draining peak (1.03-1.15 GB for 400k events).
var benchPeakMB = map[string]int64{"classify": 114, "aggregate": 1150, "serve": 12}

// The port each service serves /healthz, /readyz and /metrics on, as a pingan.toml key.
var listenKey = map[string][2]string{
	"ingest":    {"ingest", "listen"},
	"serve":     {"serve", "listen"},
	"classify":  {"classifier", "admin_listen"},
	"aggregate": {"aggregator", "admin_listen"},
}

var services = []string{"ingest", "classify", "aggregate", "serve"}

type manifests struct {
	deployments  map[string]*appsv1.Deployment // by component
	pdbs         []*policyv1.PodDisruptionBudget
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	policies     []*networkingv1.NetworkPolicy
	configMaps   []*corev1.ConfigMap
	secrets      []*corev1.Secret
	svcs         []*corev1.Service
	jobs         []*batchv1.Job
	serviceAccts []*corev1.ServiceAccount
}

// strict decodes one YAML document into out, refusing unknown fields.
func strict(doc []byte, out any) error {
	return yaml.UnmarshalStrict(doc, out)
}

func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(data, []byte("\n---")) {
		// drop comment-only / empty documents
		meaningful := false
		for _, line := range strings.Split(string(d), "\n") {
			t := strings.TrimSpace(line)
			if t != "" && !strings.HasPrefix(t, "#") && t != "---" {
				meaningful = true
				break
			}
		}
		if meaningful {
			docs = append(docs, d)
		}
	}
	return docs
}

func runK8s(args []string) {
	fs := flag.NewFlagSet("k8s", flag.ExitOnError)
	partitions := fs.Int("partitions", 12, "kafka.partitions the chart was rendered with")
	configOut := fs.String("config-out", "", "write the rendered pingan.toml here")
	expectHPA := fs.Bool("expect-hpa", false, "the rendering enabled both HPAs")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		usage()
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	r := &report{}
	m := manifests{deployments: map[string]*appsv1.Deployment{}}
	kinds := map[string]int{}
	for _, doc := range splitDocs(data) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			r.fail("YAML document does not parse: %v", err)
			continue
		}
		key := tm.APIVersion + "/" + tm.Kind
		kinds[tm.Kind]++
		var derr error
		switch key {
		case "apps/v1/Deployment":
			d := &appsv1.Deployment{}
			if derr = strict(doc, d); derr == nil {
				m.deployments[d.Spec.Template.Labels["app.kubernetes.io/component"]] = d
			}
		case "policy/v1/PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			if derr = strict(doc, p); derr == nil {
				m.pdbs = append(m.pdbs, p)
			}
		case "autoscaling/v2/HorizontalPodAutoscaler":
			h := &autoscalingv2.HorizontalPodAutoscaler{}
			if derr = strict(doc, h); derr == nil {
				m.hpas = append(m.hpas, h)
			}
		case "networking.k8s.io/v1/NetworkPolicy":
			p := &networkingv1.NetworkPolicy{}
			if derr = strict(doc, p); derr == nil {
				m.policies = append(m.policies, p)
			}
		case "v1/ConfigMap":
			c := &corev1.ConfigMap{}
			if derr = strict(doc, c); derr == nil {
				m.configMaps = append(m.configMaps, c)
			}
		case "v1/Secret":
			s := &corev1.Secret{}
			if derr = strict(doc, s); derr == nil {
				m.secrets = append(m.secrets, s)
			}
		case "v1/Service":
			s := &corev1.Service{}
			if derr = strict(doc, s); derr == nil {
				m.svcs = append(m.svcs, s)
			}
		case "v1/ServiceAccount":
			s := &corev1.ServiceAccount{}
			if derr = strict(doc, s); derr == nil {
				m.serviceAccts = append(m.serviceAccts, s)
			}
		case "batch/v1/Job":
			j := &batchv1.Job{}
			if derr = strict(doc, j); derr == nil {
				m.jobs = append(m.jobs, j)
			}
		default:
			r.fail("unexpected object %s (no typed check for it)", key)
			continue
		}
		if derr != nil {
			r.fail("%s does not decode strictly: %v", key, derr)
		}
	}
	var ks []string
	for k, n := range kinds {
		ks = append(ks, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(ks)
	r.check(r.failed == 0, "every object decodes into its Kubernetes type with no unknown field (%s)", strings.Join(ks, ", "))

	// the configuration the Deployments mount
	var cm *corev1.ConfigMap
	for _, c := range m.configMaps {
		if strings.HasSuffix(c.Name, "-config") {
			cm = c
		}
	}
	conf := map[string]any{}
	if r.check(cm != nil && cm.Data["pingan.toml"] != "", "a ConfigMap *-config holds pingan.toml") {
		if _, err := toml.Decode(cm.Data["pingan.toml"], &conf); err != nil {
			r.fail("pingan.toml of the ConfigMap does not parse as TOML: %v", err)
		} else if *configOut != "" {
			if err := os.WriteFile(*configOut, []byte(cm.Data["pingan.toml"]), 0o644); err != nil {
				r.fail("write %s: %v", *configOut, err)
			}
		}
	}

	for _, svc := range services {
		checkDeployment(r, svc, m, conf, cm)
	}
	checkPDBs(r, m)
	checkHPAs(r, m, *partitions, *expectHPA)
	checkNetworkPolicies(r, m)
	checkMigrateJob(r, m)
	checkServices(r, m)
	r.done("k8s")
}

func portOf(conf map[string]any, key [2]string) (int32, bool) {
	sec, _ := conf[key[0]].(map[string]any)
	addr, _ := sec[key[1]].(string)
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(p)
	return int32(n), err == nil
}

func hostOf(conf map[string]any, key [2]string) string {
	sec, _ := conf[key[0]].(map[string]any)
	addr, _ := sec[key[1]].(string)
	h, _, _ := net.SplitHostPort(addr)
	return h
}

func checkDeployment(r *report, svc string, m manifests, conf map[string]any, cm *corev1.ConfigMap) {
	d := m.deployments[svc]
	if !r.check(d != nil, "%s: a Deployment", svc) {
		return
	}
	spec := d.Spec.Template.Spec
	if !r.check(len(spec.Containers) == 1, "%s: one container", svc) {
		return
	}
	c := spec.Containers[0]
	r.check(slices.Equal(c.Args, []string{svc}), "%s: runs `pingan %s` (args %v)", svc, svc, c.Args)
	want, okPort := portOf(conf, listenKey[svc])
	r.check(okPort, "%s: pingan.toml sets %s.%s", svc, listenKey[svc][0], listenKey[svc][1])
	r.check(hostOf(conf, listenKey[svc]) == "0.0.0.0", "%s: listens on all interfaces of the pod (%s.%s host %q)", svc, listenKey[svc][0], listenKey[svc][1], hostOf(conf, listenKey[svc]))
	named := map[string]int32{}
	for _, p := range c.Ports {
		named[p.Name] = p.ContainerPort
	}
	probePort := func(p *corev1.Probe) (string, int32) {
		if p == nil || p.HTTPGet == nil {
			return "", 0
		}
		pt := p.HTTPGet.Port
		if pt.IntVal != 0 {
			return p.HTTPGet.Path, pt.IntVal
		}
		return p.HTTPGet.Path, named[pt.StrVal]
	}
	for _, pr := range []struct {
		name string
		p    *corev1.Probe
		path string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"startup", c.StartupProbe, "/healthz"}} {
		path, port := probePort(pr.p)
		r.check(path == pr.path && port == want && port != 0, "%s: %s probe GET %s on %d (got %s on %d)", svc, pr.name, pr.path, want, path, port)
	}
	// resources
	mem := c.Resources.Limits[corev1.ResourceMemory]
	req := c.Resources.Requests[corev1.ResourceMemory]
	r.check(!mem.IsZero() && !req.IsZero() && !c.Resources.Requests.Cpu().IsZero(), "%s: cpu/memory requests and a memory limit", svc)
	if peak, ok := benchPeakMB[svc]; ok {
		limitMB := mem.Value() / 1_000_000
		r.check(limitMB > peak, "%s: memory limit %s above the benchmark's peak RSS %d MB", svc, mem.String(), peak)
	}
	r.check(req.Cmp(mem) <= 0, "%s: memory request %s <= limit %s", svc, req.String(), mem.String())
	// security
	psc := spec.SecurityContext
	sc := c.SecurityContext
	r.check(psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot && psc.RunAsUser != nil && *psc.RunAsUser != 0,
		"%s: runAsNonRoot with a non-zero runAsUser", svc)
	r.check(sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem &&
		sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation &&
		sc.Capabilities != nil && slices.Contains(sc.Capabilities.Drop, "ALL"),
		"%s: read-only root, no privilege escalation, all capabilities dropped", svc)
	r.check(spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken, "%s: no service account token", svc)
	// configuration from the ConfigMap, secrets from Secrets
	var cfgEnv string
	secretEnv := 0
	plainSecret := []string{}
	for _, e := range c.Env {
		if e.Name == "PINGAN_CONFIG" {
			cfgEnv = e.Value
		}
		if isSecretName(e.Name) {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				secretEnv++
			} else {
				plainSecret = append(plainSecret, e.Name)
			}
		}
	}
	mounted := ""
	for _, vm := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil && cm != nil && v.ConfigMap.Name == cm.Name {
				mounted = vm.MountPath
			}
		}
	}
	r.check(mounted != "" && cfgEnv == mounted+"/pingan.toml", "%s: PINGAN_CONFIG (%s) is the ConfigMap's pingan.toml mounted at %s", svc, cfgEnv, mounted)
	r.check(len(plainSecret) == 0, "%s: no secret passed as a plain env value %v", svc, plainSecret)
	wantSecrets := map[string]int{"ingest": 3, "classify": 0, "aggregate": 2, "serve": 2}[svc]
	r.check(secretEnv == wantSecrets, "%s: %d secret env vars from a Secret (want %d)", svc, secretEnv, wantSecrets)
	r.check(d.Spec.Template.Annotations["checksum/config"] != "", "%s: pods roll when the configuration changes (checksum/config)", svc)
}

// isSecretName: env vars that carry secrets in pingan's configuration.
func isSecretName(n string) bool {
	for _, s := range []string{"PASSWORD", "__KEY", "KEYS", "TOKENS", "SECRET"} {
		if strings.HasSuffix(n, s) && !strings.HasSuffix(n, "KEY_ID") {
			return true
		}
	}
	return false
}

func selects(sel *metav1.LabelSelector, lbls map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(lbls))
}

func checkPDBs(r *report, m manifests) {
	for _, svc := range services {
		d := m.deployments[svc]
		if d == nil {
			continue
		}
		n := 0
		for _, p := range m.pdbs {
			if selects(p.Spec.Selector, d.Spec.Template.Labels) {
				n++
				r.check(p.Spec.MaxUnavailable != nil || p.Spec.MinAvailable != nil, "%s: PodDisruptionBudget %s sets a budget", svc, p.Name)
			}
		}
		r.check(n == 1, "%s: exactly one PodDisruptionBudget selects its pods (%d)", svc, n)
	}
}

func checkHPAs(r *report, m manifests, partitions int, expect bool) {
	if expect {
		r.check(len(m.hpas) == 2, "two HorizontalPodAutoscalers (classify, aggregate): %d", len(m.hpas))
	}
	for _, h := range m.hpas {
		target := ""
		for svc, d := range m.deployments {
			if d.Name == h.Spec.ScaleTargetRef.Name && h.Spec.ScaleTargetRef.Kind == "Deployment" {
				target = svc
				r.check(d.Spec.Replicas == nil, "HPA %s: its Deployment leaves replicas to it", h.Name)
			}
		}
		r.check(target == "classify" || target == "aggregate", "HPA %s scales a Kafka consumer Deployment (%q)", h.Name, target)
		r.check(int(h.Spec.MaxReplicas) <= partitions, "HPA %s: maxReplicas %d <= %d partitions", h.Name, h.Spec.MaxReplicas, partitions)
	}
}

// reachable describes which sources may open connections to a pod's port under the policies:
// "none", "any" or "restricted" (peers listed).
func reachable(pols []*networkingv1.NetworkPolicy, lbls map[string]string, portName string, port int32) string {
	selected := false
	result := "none"
	for _, p := range pols {
		if !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !selects(&p.Spec.PodSelector, lbls) {
			continue
		}
		selected = true
		for _, rule := range p.Spec.Ingress {
			portOK := len(rule.Ports) == 0
			for _, pp := range rule.Ports {
				if pp.Port == nil || pp.Port.StrVal == portName || (pp.Port.IntVal != 0 && pp.Port.IntVal == port) {
					portOK = true
				}
			}
			if !portOK {
				continue
			}
			if len(rule.From) == 0 {
				return "any"
			}
			result = "restricted"
		}
	}
	if !selected {
		return "any" // no policy selects the pod: Kubernetes lets everything in
	}
	return result
}

func checkNetworkPolicies(r *report, m manifests) {
	if !r.check(len(m.policies) > 0, "NetworkPolicies are rendered") {
		return
	}
	for _, svc := range services {
		d := m.deployments[svc]
		if d == nil {
			continue
		}
		c := d.Spec.Template.Spec.Containers[0]
		if len(c.Ports) == 0 {
			r.fail("%s: no container port", svc)
			continue
		}
		got := reachable(m.policies, d.Spec.Template.Labels, c.Ports[0].Name, c.Ports[0].ContainerPort)
		switch svc {
		case "ingest", "serve":
			r.check(got == "any" || got == "restricted", "%s: reachable from outside the release on %s (%s)", svc, c.Ports[0].Name, got)
		default:
			r.check(got == "restricted", "%s: admin port only for the listed scrapers (%s)", svc, got)
		}
		// any other port of the pod: closed
		other := reachable(m.policies, d.Spec.Template.Labels, "not-a-port", 1)
		r.check(other == "none", "%s: every other port closed (%s)", svc, other)
	}
}

func checkMigrateJob(r *report, m manifests) {
	var job *batchv1.Job
	for _, j := range m.jobs {
		if strings.HasSuffix(j.Name, "-migrate") {
			job = j
		}
	}
	if !r.check(job != nil, "a migrate Job") {
		return
	}
	hooks := strings.Split(job.Annotations["helm.sh/hook"], ",")
	r.check(slices.Contains(hooks, "pre-install") && slices.Contains(hooks, "pre-upgrade"), "migrate: a pre-install,pre-upgrade hook (%v)", hooks)
	c := job.Spec.Template.Spec.Containers
	r.check(len(c) == 1 && slices.Equal(c[0].Args, []string{"migrate"}), "migrate: runs `pingan migrate`")
	r.check(job.Spec.Template.Spec.RestartPolicy == corev1.RestartPolicyNever, "migrate: restartPolicy Never (backoffLimit retries)")
	// its ConfigMap and Secret must exist when the hook runs: hooks themselves, with a lower weight
	w, _ := strconv.Atoi(job.Annotations["helm.sh/hook-weight"])
	for _, v := range job.Spec.Template.Spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		found := false
		for _, cm := range m.configMaps {
			if cm.Name == v.ConfigMap.Name {
				cw, _ := strconv.Atoi(cm.Annotations["helm.sh/hook-weight"])
				found = cm.Annotations["helm.sh/hook"] == job.Annotations["helm.sh/hook"] && cw < w
			}
		}
		r.check(found, "migrate: ConfigMap %s is a hook created before the Job", v.ConfigMap.Name)
	}
	for _, e := range c[0].Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		name := e.ValueFrom.SecretKeyRef.Name
		for _, s := range m.secrets {
			if s.Name == name {
				sw, _ := strconv.Atoi(s.Annotations["helm.sh/hook-weight"])
				r.check(s.Annotations["helm.sh/hook"] == job.Annotations["helm.sh/hook"] && sw < w,
					"migrate: Secret %s is a hook created before the Job", name)
			}
		}
	}
}

func checkServices(r *report, m manifests) {
	for _, svc := range []string{"ingest", "serve"} {
		d := m.deployments[svc]
		if d == nil {
			continue
		}
		n := 0
		for _, s := range m.svcs {
			if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
				for _, p := range s.Spec.Ports {
					r.check(p.TargetPort.StrVal == d.Spec.Template.Spec.Containers[0].Ports[0].Name,
						"%s: Service %s targets the container port %q", svc, s.Name, p.TargetPort.String())
				}
			}
		}
		r.check(n == 1, "%s: one Service", svc)
	}
}
