package kubelet

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func svc(ns, name, ip string, ports ...corev1.ServicePort) corev1.Service {
	return corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
}

func envObjects() *fakeObjects {
	objs := newFakeObjects()
	objs.services["default"] = []corev1.Service{
		svc("default", "kubernetes", "10.43.0.1", corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}),
		svc("default", "other", "10.43.0.9", corev1.ServicePort{Port: 8080}),
	}
	objs.services["shop"] = []corev1.Service{
		svc("shop", "web-front", "10.43.0.5", corev1.ServicePort{Name: "http", Port: 80},
			corev1.ServicePort{Name: "dns-udp", Port: 53, Protocol: corev1.ProtocolUDP}),
		svc("shop", "headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 80}),
		svc("shop", "pending", "", corev1.ServicePort{Port: 80}),
		svc("shop", "v6", "fd00::7", corev1.ServicePort{Port: 443}),
	}
	return objs
}

func envPod(ns string, c corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-0", UID: "1234-abcd",
			Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"note": "x"}},
		Spec: corev1.PodSpec{NodeName: "node1", ServiceAccountName: "builder", Containers: []corev1.Container{c}},
	}
}

var kubernetesVars = []string{
	"KUBERNETES_SERVICE_HOST=10.43.0.1",
	"KUBERNETES_SERVICE_PORT=443",
	"KUBERNETES_SERVICE_PORT_HTTPS=443",
	"KUBERNETES_PORT=tcp://10.43.0.1:443",
	"KUBERNETES_PORT_443_TCP=tcp://10.43.0.1:443",
	"KUBERNETES_PORT_443_TCP_PROTO=tcp",
	"KUBERNETES_PORT_443_TCP_PORT=443",
	"KUBERNETES_PORT_443_TCP_ADDR=10.43.0.1",
}

func TestServiceEnvironment(t *testing.T) {
	objs := envObjects()
	ctx := context.Background()
	c := corev1.Container{Name: "c"}
	got, err := containerEnvironment(ctx, objs, envPod("shop", c), &c, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(kubernetesVars),
		"V6_SERVICE_HOST=fd00::7",
		"V6_SERVICE_PORT=443",
		"V6_PORT=tcp://[fd00::7]:443",
		"V6_PORT_443_TCP=tcp://[fd00::7]:443",
		"V6_PORT_443_TCP_PROTO=tcp",
		"V6_PORT_443_TCP_PORT=443",
		"V6_PORT_443_TCP_ADDR=fd00::7",
		"WEB_FRONT_SERVICE_HOST=10.43.0.5",
		"WEB_FRONT_SERVICE_PORT=80",
		"WEB_FRONT_SERVICE_PORT_HTTP=80",
		"WEB_FRONT_SERVICE_PORT_DNS_UDP=53",
		"WEB_FRONT_PORT=tcp://10.43.0.5:80",
		"WEB_FRONT_PORT_80_TCP=tcp://10.43.0.5:80",
		"WEB_FRONT_PORT_80_TCP_PROTO=tcp",
		"WEB_FRONT_PORT_80_TCP_PORT=80",
		"WEB_FRONT_PORT_80_TCP_ADDR=10.43.0.5",
		"WEB_FRONT_PORT_53_UDP=udp://10.43.0.5:53",
		"WEB_FRONT_PORT_53_UDP_PROTO=udp",
		"WEB_FRONT_PORT_53_UDP_PORT=53",
		"WEB_FRONT_PORT_53_UDP_ADDR=10.43.0.5",
	)
	if !slices.Equal(got, want) {
		t.Errorf("service env:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// enableServiceLinks: false keeps the kubernetes service's alone.
	pod := envPod("shop", c)
	pod.Spec.EnableServiceLinks = ptr.To(false)
	if got, err := containerEnvironment(ctx, objs, pod, &c, nil, nil, nil); err != nil || !slices.Equal(got, kubernetesVars) {
		t.Errorf("without service links: %v %v", got, err)
	}
	// In default, its services, the kubernetes one among them.
	got, err = containerEnvironment(ctx, objs, envPod("default", c), &c, nil, nil, nil)
	if err != nil || len(got) != len(kubernetesVars)+7 || !slices.Equal(got[:8], kubernetesVars) || got[8] != "OTHER_SERVICE_HOST=10.43.0.9" {
		t.Errorf("in default: %v %v", got, err)
	}
	// A kubernetes service in the pod's namespace wins over default's.
	objs.services["shop"] = append(objs.services["shop"], svc("shop", "kubernetes", "10.43.7.7", corev1.ServicePort{Port: 443}))
	got, err = containerEnvironment(ctx, objs, envPod("shop", c), &c, nil, nil, nil)
	if err != nil || got[0] != "KUBERNETES_SERVICE_HOST=10.43.7.7" {
		t.Errorf("namespace's kubernetes service: %v %v", got, err)
	}
	objs.servicesErr = errors.New("connection refused")
	if _, err := containerEnvironment(ctx, objs, envPod("shop", c), &c, nil, nil, nil); err == nil ||
		err.Error() != "failed to list services when setting up env vars: connection refused" {
		t.Errorf("services error: %v", err)
	}
}

func TestContainerEnvironment(t *testing.T) {
	objs := envObjects()
	objs.setConfigMap("shop", "settings", map[string]string{"MODE": "prod", "LEVEL": "3", "my.dotted-key": "ok", "bad=key": "no"})
	objs.setSecret("shop", "creds", map[string][]byte{"PASSWORD": []byte("s3cr3t")})
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
	}
	res := func(name, r, div string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: r, Divisor: resource.MustParse(div)}}}
	}
	c := corev1.Container{
		Name: "app",
		EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
			{Prefix: "DB_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}},
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr.To(true)}},
		},
		Env: []corev1.EnvVar{
			{Name: "LEVEL", Value: "9"},
			{Name: "GREETING", Value: "mode $(MODE) at $(WEB_FRONT_SERVICE_HOST), $(LATER) $(NOPE) $$(ESCAPED) $$$(MODE)"},
			{Name: "LATER", Value: "later"},
			{Name: "EMPTY"},
			field("POD_NAME", "metadata.name"), field("POD_NAMESPACE", "metadata.namespace"), field("POD_UID", "metadata.uid"),
			field("APP", "metadata.labels['app']"), field("NOTE", "metadata.annotations['note']"), field("NO_LABEL", "metadata.labels['none']"),
			field("NODE", "spec.nodeName"), field("SA", "spec.serviceAccountName"),
			field("POD_IP", "status.podIP"), field("POD_IPS", "status.podIPs"),
			field("HOST_IP", "status.hostIP"), field("HOST_IPS", "status.hostIPs"),
			res("CPU_LIMIT", "limits.cpu", "1m"), res("MEM_LIMIT", "limits.memory", "1Mi"),
			res("CPU_REQUEST", "requests.cpu", "0"), res("MEM_REQUEST", "requests.memory", "1Mi"),
			{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "MODE"}}},
			{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "PASSWORD"}}},
			{Name: "OPT_KEY", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "nope", Optional: ptr.To(true)}}},
			{Name: "OPT_OBJ", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k", Optional: ptr.To(true)}}},
			{Name: "WEB_FRONT_SERVICE_HOST", Value: "overridden"},
		},
		Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("100M")},
		},
	}
	pod := envPod("shop", c)
	pod.Spec.EnableServiceLinks = ptr.To(false)
	alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}
	got, err := containerEnvironment(context.Background(), objs, pod, &pod.Spec.Containers[0],
		[]string{"10.42.0.5", "fd00:42::5"}, []string{"192.168.1.10", "fd00::10"}, alloc)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		// LEVEL: envFrom's place, env's value.
		"LEVEL=9",
		"MODE=prod",
		"my.dotted-key=ok",
		"DB_PASSWORD=s3cr3t",
		"GREETING=mode prod at $(WEB_FRONT_SERVICE_HOST), $(LATER) $(NOPE) $(ESCAPED) $prod",
		"LATER=later",
		"EMPTY=",
		"POD_NAME=web-0", "POD_NAMESPACE=shop", "POD_UID=1234-abcd",
		"APP=web", "NOTE=x", "NO_LABEL=",
		"NODE=node1", "SA=builder",
		"POD_IP=10.42.0.5", "POD_IPS=10.42.0.5,fd00:42::5",
		"HOST_IP=192.168.1.10", "HOST_IPS=192.168.1.10,fd00::10",
		"CPU_LIMIT=500", "MEM_LIMIT=4096", "CPU_REQUEST=1", "MEM_REQUEST=96",
		"FROM_CM=prod", "FROM_SECRET=s3cr3t",
		"WEB_FRONT_SERVICE_HOST=overridden",
	}
	want = append(want, kubernetesVars...)
	if !slices.Equal(got, want) {
		t.Errorf("env:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// With service links, $(VAR) sees the services' variables, and a
	// variable the container sets is not repeated among them.
	pod.Spec.EnableServiceLinks = nil
	got, err = containerEnvironment(context.Background(), objs, pod, &pod.Spec.Containers[0], nil, []string{"192.168.1.10"}, alloc)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(got, "GREETING=mode prod at 10.43.0.5, $(LATER) $(NOPE) $(ESCAPED) $prod"); i != 4 {
		t.Errorf("GREETING with services at %d: %v", i, got)
	}
	n := 0
	for _, kv := range got {
		if strings.HasPrefix(kv, "WEB_FRONT_SERVICE_HOST=") {
			n++
		}
	}
	if n != 1 || !slices.Contains(got, "WEB_FRONT_SERVICE_HOST=overridden") || !slices.Contains(got, "WEB_FRONT_PORT_80_TCP_ADDR=10.43.0.5") {
		t.Errorf("service variable overridden: %v", got)
	}
	if !slices.Contains(got, "POD_IP=") || !slices.Contains(got, "POD_IPS=") {
		t.Errorf("no pod IP yet: %v", got)
	}
}

func TestContainerEnvironmentErrors(t *testing.T) {
	objs := envObjects()
	objs.setConfigMap("shop", "settings", map[string]string{"MODE": "prod"})
	objs.setSecret("shop", "creds", map[string][]byte{"PASSWORD": []byte("s3cr3t")})
	cmKey := func(name, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: "V", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key}}}
	}
	secretKey := func(name, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: "V", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key}}}
	}
	field := func(path string) corev1.EnvVar {
		return corev1.EnvVar{Name: "V", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
	}
	for _, tc := range []struct {
		c    corev1.Container
		want string
	}{
		{corev1.Container{Env: []corev1.EnvVar{cmKey("nope", "k")}}, `configmap "nope" not found`},
		{corev1.Container{Env: []corev1.EnvVar{cmKey("settings", "k")}}, "couldn't find key k in ConfigMap shop/settings"},
		{corev1.Container{Env: []corev1.EnvVar{secretKey("nope", "k")}}, `secret "nope" not found`},
		{corev1.Container{Env: []corev1.EnvVar{secretKey("creds", "k")}}, "couldn't find key k in Secret shop/creds"},
		{corev1.Container{EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}}}}},
			`secret "gone" not found`},
		{corev1.Container{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}}}}},
			`configmap "gone" not found`},
		{corev1.Container{Env: []corev1.EnvVar{field("spec.restartPolicy")}}, "unsupported fieldPath: spec.restartPolicy"},
		{corev1.Container{Env: []corev1.EnvVar{field("spec.bogus")}}, "field label not supported: spec.bogus"},
		{corev1.Container{Env: []corev1.EnvVar{field("metadata.name['x']")}}, "field label does not support subscript: metadata.name['x']"},
		{corev1.Container{Env: []corev1.EnvVar{{Name: "V", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v2", FieldPath: "metadata.name"}}}}},
			"unsupported pod version: v2"},
		{corev1.Container{Env: []corev1.EnvVar{{Name: "V", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.nvidia.com/gpu"}}}}},
			"unsupported container resource : limits.nvidia.com/gpu"},
		{corev1.Container{Env: []corev1.EnvVar{{Name: "V", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "ghost", Resource: "limits.cpu"}}}}},
			"container ghost not found"},
	} {
		tc.c.Name = "c"
		pod := envPod("shop", tc.c)
		_, err := containerEnvironment(context.Background(), objs, pod, &pod.Spec.Containers[0], nil, nil, nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v\nwant %s", err, tc.want)
		}
	}
}

func TestFormatMap(t *testing.T) {
	got := formatMap(map[string]string{"b": "2", "a": "x\ny", "c": `q"`})
	if want := "a=\"x\\ny\"\nb=\"2\"\nc=\"q\\\"\""; got != want {
		t.Errorf("formatMap: %q, want %q", got, want)
	}
	if formatMap(nil) != "" {
		t.Error("formatMap of nothing")
	}
}
