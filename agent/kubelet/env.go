package kubelet

import (
	"context"
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Container environments (env.go): what upstream's kubelet gives a
// container beside its image's variables, in this order:
//
//   - envFrom: every key of each ConfigMap and Secret, with the prefix
//     (a missing optional object gives none);
//   - env: each variable declared, a value with its $(VAR) references
//     expanded against the variables before it and the services', or a
//     valueFrom resolved (fieldRef, resourceFieldRef, configMapKeyRef,
//     secretKeyRef); a name already set keeps its place and takes the
//     new value;
//   - the services' variables (FOO_SERVICE_HOST, FOO_PORT_80_TCP_ADDR...)
//     that the container does not set itself: those of the `kubernetes`
//     service in default always, and of the pod's namespace's services
//     when enableServiceLinks is not false.
//
// Upstream builds the list from maps, so its order in the container is
// random; labctl keeps the order above, the services sorted by name.

// envList is NAME=value entries in order, a name set again keeping its
// place.
type envList struct {
	names []string
	vals  map[string]string
}

func (l *envList) set(name, value string) {
	if _, ok := l.vals[name]; !ok {
		l.names = append(l.names, name)
	}
	l.vals[name] = value
}

func (l *envList) entries() []string {
	out := make([]string, len(l.names))
	for i, n := range l.names {
		out[i] = n + "=" + l.vals[n]
	}
	return out
}

// containerEnvironment resolves the container's env as upstream's kubelet
// does (see above). podIPs and hostIPs are the pod's and the node's
// addresses (status.podIP(s), status.hostIP(s)); nodeAllocatable stands
// in for limits the container does not set, for resourceFieldRef. Its
// errors read as upstream's CreateContainerConfigError messages.
func containerEnvironment(ctx context.Context, objs podObjects, pod *corev1.Pod, c *corev1.Container, podIPs, hostIPs []string, nodeAllocatable corev1.ResourceList) ([]string, error) {
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	services, err := serviceEnvironment(ctx, objs, pod.Namespace, links)
	if err != nil {
		return nil, err
	}

	env := &envList{vals: map[string]string{}}
	// refs are what $(VAR) expands to: the container's variables so far,
	// else the services'.
	refs := map[string]string{}
	for _, kv := range services {
		refs[kv[0]] = kv[1]
	}
	set := func(name, value string) {
		env.set(name, value)
		refs[name] = value
	}

	configMaps := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	// configMap and secret return nil, nil for a missing optional object.
	configMap := func(name string, optional bool) (*corev1.ConfigMap, error) {
		if cm, ok := configMaps[name]; ok {
			return cm, nil
		}
		cm, err := objs.ConfigMap(ctx, pod.Namespace, name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional {
				return nil, nil
			}
			return nil, err
		}
		configMaps[name] = cm
		return cm, nil
	}
	secret := func(name string, optional bool) (*corev1.Secret, error) {
		if s, ok := secrets[name]; ok {
			return s, nil
		}
		s, err := objs.Secret(ctx, pod.Namespace, name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional {
				return nil, nil
			}
			return nil, err
		}
		secrets[name] = s
		return s, nil
	}

	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := configMap(from.ConfigMapRef.Name, isTrue(from.ConfigMapRef.Optional))
			if err != nil {
				return nil, err
			}
			if cm == nil {
				continue
			}
			for _, k := range sortedKeys(cm.Data) {
				if name := from.Prefix + k; validEnvName(name) {
					set(name, cm.Data[k])
				}
			}
		case from.SecretRef != nil:
			s, err := secret(from.SecretRef.Name, isTrue(from.SecretRef.Optional))
			if err != nil {
				return nil, err
			}
			if s == nil {
				continue
			}
			for _, k := range sortedKeys(s.Data) {
				if name := from.Prefix + k; validEnvName(name) {
					set(name, string(s.Data[k]))
				}
			}
		}
	}

	var limited *corev1.Pod // the pod with the node's allocatable for missing limits
	for _, ev := range c.Env {
		val := ev.Value
		switch from := ev.ValueFrom; {
		case val != "":
			val = expand(val, refs)
		case from == nil:
		case from.FieldRef != nil:
			if val, err = podFieldValue(pod, from.FieldRef, podIPs, hostIPs); err != nil {
				return nil, err
			}
		case from.ResourceFieldRef != nil:
			if limited == nil {
				limited = withDefaultLimits(pod, nodeAllocatable)
			}
			lc := podContainer(limited, c.Name)
			if lc == nil {
				lc = c.DeepCopy()
				mergeLimits(lc, nodeAllocatable)
			}
			if val, err = containerResourceValue(from.ResourceFieldRef, limited, lc); err != nil {
				return nil, err
			}
		case from.ConfigMapKeyRef != nil:
			ref := from.ConfigMapKeyRef
			cm, err := configMap(ref.Name, isTrue(ref.Optional))
			if err != nil {
				return nil, err
			}
			if cm == nil {
				continue
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				if isTrue(ref.Optional) {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
			}
			val = v
		case from.SecretKeyRef != nil:
			ref := from.SecretKeyRef
			s, err := secret(ref.Name, isTrue(ref.Optional))
			if err != nil {
				return nil, err
			}
			if s == nil {
				continue
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				if isTrue(ref.Optional) {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
			}
			val = string(v)
		default:
			return nil, fmt.Errorf("env var %q: valueFrom has no source labctl supports", ev.Name)
		}
		set(ev.Name, val)
	}

	for _, kv := range services {
		if _, ok := env.vals[kv[0]]; !ok {
			env.set(kv[0], kv[1])
		}
	}
	return env.entries(), nil
}

// validEnvName tells whether an envFrom key (with its prefix) can be a
// variable: the API's relaxed rule, any printable ASCII but '='.
func validEnvName(name string) bool {
	return len(validation.IsRelaxedEnvVarName(name)) == 0
}

func isTrue(b *bool) bool { return b != nil && *b }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// serviceEnvironment is the services' variables for a pod in ns, as
// [name, value] pairs: the `kubernetes` service of default always, the
// services of ns with links (one of the same name wins over default's),
// only those with a cluster IP, sorted by name.
func serviceEnvironment(ctx context.Context, objs podObjects, ns string, links bool) ([][2]string, error) {
	byName := map[string]*corev1.Service{}
	if ns != "default" || !links {
		svcs, err := objs.Services(ctx, "default")
		if err != nil {
			return nil, fmt.Errorf("failed to list services when setting up env vars: %w", err)
		}
		for i := range svcs {
			if s := &svcs[i]; s.Name == "kubernetes" && serviceIPSet(s) {
				byName[s.Name] = s
			}
		}
	}
	if links {
		svcs, err := objs.Services(ctx, ns)
		if err != nil {
			return nil, fmt.Errorf("failed to list services when setting up env vars: %w", err)
		}
		for i := range svcs {
			if s := &svcs[i]; serviceIPSet(s) {
				byName[s.Name] = s
			}
		}
	}
	var out [][2]string
	for _, name := range sortedKeys(byName) {
		out = append(out, serviceVars(byName[name])...)
	}
	return out, nil
}

func serviceIPSet(s *corev1.Service) bool {
	return s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone && len(s.Spec.Ports) > 0
}

// serviceVars are one service's variables, as upstream's envvars package
// makes them (docker links' names).
func serviceVars(s *corev1.Service) [][2]string {
	prefix := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
	ip := s.Spec.ClusterIP
	out := [][2]string{
		{prefix + "_SERVICE_HOST", ip},
		{prefix + "_SERVICE_PORT", strconv.Itoa(int(s.Spec.Ports[0].Port))},
	}
	for _, p := range s.Spec.Ports {
		if p.Name != "" {
			out = append(out, [2]string{prefix + "_SERVICE_PORT_" + strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")), strconv.Itoa(int(p.Port))})
		}
	}
	for i, p := range s.Spec.Ports {
		proto := string(corev1.ProtocolTCP)
		if p.Protocol != "" {
			proto = string(p.Protocol)
		}
		port := strconv.Itoa(int(p.Port))
		url := strings.ToLower(proto) + "://" + net.JoinHostPort(ip, port)
		if i == 0 {
			out = append(out, [2]string{prefix + "_PORT", url})
		}
		pp := prefix + "_PORT_" + port + "_" + strings.ToUpper(proto)
		out = append(out,
			[2]string{pp, url},
			[2]string{pp + "_PROTO", strings.ToLower(proto)},
			[2]string{pp + "_PORT", port},
			[2]string{pp + "_ADDR", ip},
		)
	}
	return out
}

// podFieldValue is a fieldRef's value, as upstream's kubelet resolves it
// for env and the downward API.
func podFieldValue(pod *corev1.Pod, fs *corev1.ObjectFieldSelector, podIPs, hostIPs []string) (string, error) {
	if v := fs.APIVersion; v != "" && v != "v1" {
		return "", fmt.Errorf("unsupported pod version: %s", v)
	}
	path := fs.FieldPath
	if p, key, ok := splitSubscript(path); ok {
		var m map[string]string
		switch p {
		case "metadata.annotations":
			if errs := content.IsLabelKey(strings.ToLower(key)); len(errs) > 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", path, strings.Join(errs, ";"))
			}
			m = pod.Annotations
		case "metadata.labels":
			if errs := content.IsLabelKey(key); len(errs) > 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", path, strings.Join(errs, ";"))
			}
			m = pod.Labels
		default:
			return "", fmt.Errorf("field label does not support subscript: %s", path)
		}
		return m[key], nil
	}
	switch path {
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName", "spec.host":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		if len(podIPs) > 0 {
			return podIPs[0], nil
		}
		return "", nil
	case "status.podIPs":
		return strings.Join(podIPs, ","), nil
	case "status.hostIP":
		if len(hostIPs) == 0 {
			return "", fmt.Errorf("can't get the node's IP for %s", path)
		}
		return hostIPs[0], nil
	case "status.hostIPs":
		if len(hostIPs) == 0 {
			return "", fmt.Errorf("can't get the node's IPs for %s", path)
		}
		return strings.Join(hostIPs, ","), nil
	case "spec.restartPolicy", "spec.schedulerName", "status.phase":
		return "", fmt.Errorf("unsupported fieldPath: %s", path)
	}
	return "", fmt.Errorf("field label not supported: %s", path)
}

// splitSubscript splits "metadata.labels['key']" into its path and key.
func splitSubscript(path string) (string, string, bool) {
	if !strings.HasSuffix(path, "']") {
		return path, "", false
	}
	p, key, ok := strings.Cut(strings.TrimSuffix(path, "']"), "['")
	if !ok || p == "" {
		return path, "", false
	}
	return p, key, true
}

// formatMap is upstream's downward API form of labels and annotations:
// key="value" lines (Go quoting), sorted by key.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// withDefaultLimits is a copy of pod whose containers have the node's
// allocatable as the limits they do not set, as upstream's downward API.
func withDefaultLimits(pod *corev1.Pod, allocatable corev1.ResourceList) *corev1.Pod {
	p := pod.DeepCopy()
	for i := range p.Spec.InitContainers {
		mergeLimits(&p.Spec.InitContainers[i], allocatable)
	}
	for i := range p.Spec.Containers {
		mergeLimits(&p.Spec.Containers[i], allocatable)
	}
	return p
}

// mergeLimits sets the container's missing (or zero) CPU, memory and
// ephemeral-storage limits to allocatable's.
func mergeLimits(c *corev1.Container, allocatable corev1.ResourceList) {
	if c.Resources.Limits == nil {
		c.Resources.Limits = corev1.ResourceList{}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		if q, ok := c.Resources.Limits[r]; !ok || q.IsZero() {
			if a, ok := allocatable[r]; ok {
				c.Resources.Limits[r] = a.DeepCopy()
			}
		}
	}
}

func podContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// containerResourceValue is a resourceFieldRef's value: the container's
// (fs.ContainerName's, when set) request or limit over the divisor,
// rounded up, as upstream. pod and c carry the limits already defaulted.
func containerResourceValue(fs *corev1.ResourceFieldSelector, pod *corev1.Pod, c *corev1.Container) (string, error) {
	if fs.ContainerName != "" {
		c = podContainer(pod, fs.ContainerName)
	}
	if c == nil {
		return "", fmt.Errorf("container %s not found", fs.ContainerName)
	}
	divisor := fs.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	kind, name, _ := strings.Cut(fs.Resource, ".")
	var list corev1.ResourceList
	switch kind {
	case "limits":
		list = c.Resources.Limits
	case "requests":
		list = c.Resources.Requests
	default:
		return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
	}
	q := list[corev1.ResourceName(name)]
	var v float64
	switch {
	case name == string(corev1.ResourceCPU):
		v = math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue()))
	case name == string(corev1.ResourceMemory), name == string(corev1.ResourceEphemeralStorage),
		strings.HasPrefix(name, corev1.ResourceHugePagesPrefix):
		v = math.Ceil(float64(q.Value()) / float64(divisor.Value()))
	default:
		return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
	}
	return strconv.FormatInt(int64(v), 10), nil
}
