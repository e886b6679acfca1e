// Package k8s checks the Kubernetes manifests beside it without a cluster
// and without the network: every object is decoded strictly into its
// k8s.io/api type (an unknown or misspelt field fails), and the objects
// are held against each other — selectors, ports, volumes, the Secret's
// keys and the files the command lines name, the DNS names the pods give
// each other. `make check-k8s` runs it (a Go module of its own, so the
// service's module does not carry the Kubernetes types).
package k8s

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// The Secret the manifests read tokens from (README.md says how to make
// it), and the keys it must have.
const secretName = "cairn-tokens"

var secretKeys = []string{"tokens", "admin.token", "worker.token"}

type manifests struct {
	services     map[string]*corev1.Service
	statefulSets map[string]*appsv1.StatefulSet
	claims       map[string]*corev1.PersistentVolumeClaim
	budgets      map[string]*policyv1.PodDisruptionBudget
}

// load decodes every document of every .yaml file here, strictly.
func load(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests here: %v", err)
	}
	m := &manifests{services: map[string]*corev1.Service{}, statefulSets: map[string]*appsv1.StatefulSet{},
		claims: map[string]*corev1.PersistentVolumeClaim{}, budgets: map[string]*policyv1.PodDisruptionBudget{}}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(text), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s, document %d", f, i+1)
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var obj any
			switch head.APIVersion + " " + head.Kind {
			case "v1 Service":
				o := &corev1.Service{}
				obj, m.services[head.Metadata.Name] = o, o
			case "apps/v1 StatefulSet":
				o := &appsv1.StatefulSet{}
				obj, m.statefulSets[head.Metadata.Name] = o, o
			case "v1 PersistentVolumeClaim":
				o := &corev1.PersistentVolumeClaim{}
				obj, m.claims[head.Metadata.Name] = o, o
			case "policy/v1 PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				obj, m.budgets[head.Metadata.Name] = o, o
			default:
				t.Fatalf("%s: %s %s is a kind this test does not know: teach it (decode it strictly and check it)", where, head.APIVersion, head.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s (%s %s): %v", where, head.Kind, head.Metadata.Name, err)
			}
		}
	}
	return m
}

func stripComments(doc string) string {
	var b bytes.Buffer
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// flags is a container's --name=value arguments.
func flags(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, a := range c.Args {
		if k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && strings.HasPrefix(a, "--") {
			out[k] = v
		}
	}
	return out
}

func containerPort(c corev1.Container, port int32) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == port })
}

func TestManifests(t *testing.T) {
	m := load(t)
	for _, want := range []string{"cairn-master", "cairn-worker"} {
		if m.statefulSets[want] == nil {
			t.Fatalf("no StatefulSet %s", want)
		}
	}
	masters, workers := m.statefulSets["cairn-master"], m.statefulSets["cairn-worker"]

	for name, ss := range m.statefulSets {
		t.Run("statefulset "+name, func(t *testing.T) {
			tpl := ss.Spec.Template
			if ss.Spec.Selector == nil || !selects(ss.Spec.Selector.MatchLabels, tpl.Labels) {
				t.Errorf("its selector %v does not select its own pods %v", ss.Spec.Selector, tpl.Labels)
			}
			svc := m.services[ss.Spec.ServiceName]
			switch {
			case svc == nil:
				t.Errorf("serviceName %q is no Service here", ss.Spec.ServiceName)
			case svc.Spec.ClusterIP != corev1.ClusterIPNone:
				t.Errorf("its Service %s is not headless: the pods get no DNS names of their own", svc.Name)
			case !svc.Spec.PublishNotReadyAddresses:
				t.Errorf("its Service %s publishes ready pods only: pods that need each other to become ready cannot find each other", svc.Name)
			case !selects(svc.Spec.Selector, tpl.Labels):
				t.Errorf("its Service %s does not select its pods", svc.Name)
			}
			if ss.Spec.Replicas == nil || *ss.Spec.Replicas < 1 {
				t.Errorf("replicas %v", ss.Spec.Replicas)
			}
			checkPod(t, m, ss)
		})
	}

	t.Run("services", func(t *testing.T) {
		for name, svc := range m.services {
			var pods []corev1.PodTemplateSpec
			for _, ss := range m.statefulSets {
				if selects(svc.Spec.Selector, ss.Spec.Template.Labels) {
					pods = append(pods, ss.Spec.Template)
				}
			}
			if len(pods) == 0 {
				t.Errorf("Service %s selects no pods", name)
				continue
			}
			for _, p := range svc.Spec.Ports {
				for _, pod := range pods {
					found := false
					for _, c := range pod.Spec.Containers {
						for _, cp := range c.Ports {
							if (p.TargetPort.StrVal != "" && cp.Name == p.TargetPort.StrVal) || (p.TargetPort.StrVal == "" && cp.ContainerPort == p.TargetPort.IntVal) ||
								(p.TargetPort.StrVal == "" && p.TargetPort.IntVal == 0 && cp.ContainerPort == p.Port) {
								found = true
								if cp.ContainerPort != p.Port {
									t.Errorf("Service %s port %s: %d, its pods' %d (keep them equal: addresses name one port)", name, p.Name, p.Port, cp.ContainerPort)
								}
							}
						}
					}
					if !found {
						t.Errorf("Service %s port %s targets %s, which its pods do not have", name, p.Name, p.TargetPort.String())
					}
				}
			}
		}
	})

	t.Run("budgets", func(t *testing.T) {
		for name, b := range m.budgets {
			if b.Spec.Selector == nil || !selects(b.Spec.Selector.MatchLabels, masters.Spec.Template.Labels) {
				t.Errorf("PodDisruptionBudget %s does not select the masters", name)
			}
		}
	})

	// The names the pods give each other: the masters' advertised
	// addresses are their StatefulSet's DNS names, every master joins the
	// first, and the workers know every master.
	t.Run("addresses", func(t *testing.T) {
		mc, wc := masters.Spec.Template.Spec.Containers[0], workers.Spec.Template.Spec.Containers[0]
		mf, wf := flags(mc), flags(wc)
		dns := func(ss *appsv1.StatefulSet, pod string) string {
			return pod + "." + ss.Spec.ServiceName + ".$(POD_NAMESPACE).svc.cluster.local"
		}
		api, raft := port(t, mf["api"]), port(t, mf["raft"])
		if want := dns(masters, "$(POD_NAME)") + ":" + strconv.Itoa(api); mf["api-advertise"] != want {
			t.Errorf("masters' --api-advertise %q, want %q", mf["api-advertise"], want)
		}
		if want := dns(masters, "$(POD_NAME)") + ":" + strconv.Itoa(raft); mf["raft-advertise"] != want {
			t.Errorf("masters' --raft-advertise %q, want %q", mf["raft-advertise"], want)
		}
		first := dns(masters, masters.Name+"-0") + ":" + strconv.Itoa(api)
		if mf["join"] != first {
			t.Errorf("masters' --join %q, want the first pod, %q (which, joining itself, bootstraps)", mf["join"], first)
		}
		if mf["bootstrap"] != "" {
			t.Error("masters have --bootstrap: every pod would start a cluster of its own")
		}
		var all []string
		for i := range *masters.Spec.Replicas {
			all = append(all, dns(masters, fmt.Sprintf("%s-%d", masters.Name, i))+":"+strconv.Itoa(api))
		}
		if wf["masters"] != strings.Join(all, ",") {
			t.Errorf("workers' --masters %q, want every master: %q", wf["masters"], strings.Join(all, ","))
		}
		if want := dns(workers, "$(POD_NAME)") + ":" + strconv.Itoa(port(t, wf["api"])); wf["api-advertise"] != want {
			t.Errorf("workers' --api-advertise %q, want %q", wf["api-advertise"], want)
		}
		if mf["id"] != "$(POD_NAME)" || wf["id"] != "$(POD_NAME)" {
			t.Error("a pod's id must be its (stable) name")
		}
		// The UFS: the same volume at the same path everywhere, and the
		// path the masters are given.
		for _, ss := range []*appsv1.StatefulSet{masters, workers} {
			if got := mountOf(ss, "ufs"); got != mf["ufs"] {
				t.Errorf("%s mounts the UFS at %q; the masters' --ufs is %q", ss.Name, got, mf["ufs"])
			}
		}
	})
}

func port(t *testing.T, hostPort string) int {
	t.Helper()
	i := strings.LastIndex(hostPort, ":")
	p, err := strconv.Atoi(hostPort[i+1:])
	if i < 0 || err != nil {
		t.Fatalf("no port in %q", hostPort)
	}
	return p
}

func mountOf(ss *appsv1.StatefulSet, volume string) string {
	for _, c := range ss.Spec.Template.Spec.Containers {
		for _, vm := range c.VolumeMounts {
			if vm.Name == volume {
				return vm.MountPath
			}
		}
	}
	return ""
}

// checkPod holds a StatefulSet's pod against itself and the other objects:
// volumes, claims, the Secret, the files and ports its command line names,
// its probes and the variables its arguments use.
func checkPod(t *testing.T, m *manifests, ss *appsv1.StatefulSet) {
	spec := ss.Spec.Template.Spec
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		switch {
		case v.PersistentVolumeClaim != nil:
			if m.claims[v.PersistentVolumeClaim.ClaimName] == nil {
				t.Errorf("volume %s claims %s, which is no PersistentVolumeClaim here", v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		case v.Secret != nil:
			if v.Secret.SecretName != secretName {
				t.Errorf("volume %s reads Secret %s; the tokens are in %s", v.Name, v.Secret.SecretName, secretName)
			}
			for _, it := range v.Secret.Items {
				if !slices.Contains(secretKeys, it.Key) {
					t.Errorf("volume %s reads key %s of %s, which has %v", v.Name, it.Key, secretName, secretKeys)
				}
			}
		}
	}
	for _, ct := range ss.Spec.VolumeClaimTemplates {
		if _, dup := volumes[ct.Name]; dup {
			t.Errorf("%s is both a volume and a claim template", ct.Name)
		}
		volumes[ct.Name] = corev1.Volume{Name: ct.Name}
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.Image == "" || !strings.HasPrefix(c.Image, "cairn:") {
		t.Errorf("image %q: the cairn image (make image builds cairn:dev; push it where your nodes pull from)", c.Image)
	}
	mounted := map[string]string{} // mount path -> volume
	for _, vm := range c.VolumeMounts {
		if _, ok := volumes[vm.Name]; !ok {
			t.Errorf("mount %s names no volume or claim template", vm.Name)
		}
		mounted[vm.MountPath] = vm.Name
	}
	for name := range volumes {
		if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.Name == name }) {
			t.Errorf("volume %s is mounted nowhere", name)
		}
	}
	f := flags(c)
	// Folders and files the command line names must be on volumes: data
	// on a volume of its own, token files in the Secret's volume under
	// one of its items.
	if v := mounted[f["data"]]; v == "" || volumes[v].Secret != nil || volumes[v].PersistentVolumeClaim != nil {
		t.Errorf("--data %s is not on a volume of its own (a claim template): the pod would lose its state", f["data"])
	}
	for _, flag := range []string{"token-file", "initial-tokens"} {
		file := f[flag]
		if file == "" {
			continue
		}
		v, ok := volumes[mounted[filepath.Dir(file)]]
		if !ok || v.Secret == nil {
			t.Errorf("--%s %s is not in the Secret's volume", flag, file)
			continue
		}
		if !slices.ContainsFunc(v.Secret.Items, func(it corev1.KeyToPath) bool { return it.Path == filepath.Base(file) }) {
			t.Errorf("--%s %s: the volume %s projects no %s", flag, file, v.Name, filepath.Base(file))
		}
	}
	if f["token-file"] == "" {
		t.Error("no --token-file: tokens are checked (a worker needs its token, a joining master the admin token)")
	}
	// Ports: what the process listens on is declared; probes ask it.
	for _, flag := range []string{"api", "raft"} {
		if f[flag] != "" && !containerPort(c, int32(port(t, f[flag]))) {
			t.Errorf("--%s %s: no such container port", flag, f[flag])
		}
	}
	for what, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		switch {
		case p == nil:
			t.Errorf("no %s probe", what)
		case p.GRPC == nil:
			t.Errorf("the %s probe is not gRPC health", what)
		case p.GRPC.Port != int32(port(t, f["api"])):
			t.Errorf("the %s probe asks port %d; the API is %s", what, p.GRPC.Port, f["api"])
		}
	}
	// $(VAR) in the arguments must be variables the container defines.
	env := map[string]bool{}
	for _, e := range c.Env {
		env[e.Name] = true
	}
	for _, a := range c.Args {
		for _, v := range regexp.MustCompile(`\$\(([A-Z_]+)\)`).FindAllStringSubmatch(a, -1) {
			if !env[v[1]] {
				t.Errorf("argument %q uses $(%s), which the container does not define", a, v[1])
			}
		}
	}
}

// Strict decoding is what catches a misspelt field: the lenient decoder
// would drop it without a word.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	doc := []byte("apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: x\nspec:\n  replica: 3\n")
	var ss appsv1.StatefulSet
	if err := yaml.Unmarshal(doc, &ss); err != nil {
		t.Fatalf("the lenient decoder: %v", err)
	}
	if err := yaml.UnmarshalStrict(doc, &ss); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("strict decoding of a misspelt field: %v", err)
	}
}
