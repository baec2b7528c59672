package scheduler

import (
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/sets"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
)

// Upstream's defaults for containers that request no CPU or memory, used
// when scoring (schedutil.DefaultMilliCPURequest, DefaultMemoryRequest).
const (
	defaultMilliCPURequest = 100
	defaultMemoryRequest   = 200 * 1024 * 1024
)

var nonZeroDefaults = corev1.ResourceList{
	corev1.ResourceCPU:    *resource.NewMilliQuantity(defaultMilliCPURequest, resource.DecimalSI),
	corev1.ResourceMemory: *resource.NewQuantity(defaultMemoryRequest, resource.DecimalSI),
}

// resources is an amount of each resource, as upstream's framework.Resource.
type resources struct {
	milliCPU, memory, ephemeral int64
	scalar                      map[corev1.ResourceName]int64
}

func newResources(list corev1.ResourceList) resources {
	var r resources
	for name, q := range list {
		switch name {
		case corev1.ResourceCPU:
			r.milliCPU = q.MilliValue()
		case corev1.ResourceMemory:
			r.memory = q.Value()
		case corev1.ResourceEphemeralStorage:
			r.ephemeral = q.Value()
		case corev1.ResourcePods:
		default:
			if r.scalar == nil {
				r.scalar = map[corev1.ResourceName]int64{}
			}
			r.scalar[name] = q.Value()
		}
	}
	return r
}

// add adds sign times o to r.
func (r *resources) add(o *resources, sign int64) {
	r.milliCPU += sign * o.milliCPU
	r.memory += sign * o.memory
	r.ephemeral += sign * o.ephemeral
	for name, v := range o.scalar {
		if r.scalar == nil {
			r.scalar = map[corev1.ResourceName]int64{}
		}
		r.scalar[name] += sign * v
	}
}

func (r *resources) clone() resources {
	c := *r
	if r.scalar != nil {
		c.scalar = make(map[corev1.ResourceName]int64, len(r.scalar))
		for k, v := range r.scalar {
			c.scalar[k] = v
		}
	}
	return c
}

func (r *resources) isZero() bool {
	if r.milliCPU != 0 || r.memory != 0 || r.ephemeral != 0 {
		return false
	}
	for _, v := range r.scalar {
		if v != 0 {
			return false
		}
	}
	return true
}

// affinityTerm is a parsed PodAffinityTerm, as upstream's fwk.AffinityTerm.
type affinityTerm struct {
	namespaces  sets.Set[string]
	nsSelector  labels.Selector // labels.Nothing() when the term has none
	nsNothing   bool
	selector    labels.Selector
	topologyKey string
	weight      int32 // for preferred terms
}

// matches reports whether p is selected by the term: in one of its
// namespaces (or one its namespaceSelector selects, by the labels nsLabels
// returns) and matching its labelSelector.
func (t *affinityTerm) matches(p *corev1.Pod, nsLabels func(string) labels.Set) bool {
	if !t.namespaces.Has(p.Namespace) {
		if t.nsNothing || !t.nsSelector.Matches(nsLabels(p.Namespace)) {
			return false
		}
	}
	return t.selector.Matches(labels.Set(p.Labels))
}

func newAffinityTerm(pod *corev1.Pod, term *corev1.PodAffinityTerm, weight int32) (affinityTerm, error) {
	sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
	if err != nil {
		return affinityTerm{}, err
	}
	// matchLabelKeys and mismatchLabelKeys, when the API server has not
	// merged them into the selector already (adding them twice is harmless).
	if term.LabelSelector != nil {
		for _, key := range term.MatchLabelKeys {
			if v, ok := pod.Labels[key]; ok {
				if r, err := labels.NewRequirement(key, selection.In, []string{v}); err == nil {
					sel = sel.Add(*r)
				}
			}
		}
		for _, key := range term.MismatchLabelKeys {
			if v, ok := pod.Labels[key]; ok {
				if r, err := labels.NewRequirement(key, selection.NotIn, []string{v}); err == nil {
					sel = sel.Add(*r)
				}
			}
		}
	}
	ns := sets.New(term.Namespaces...)
	if len(term.Namespaces) == 0 && term.NamespaceSelector == nil {
		ns.Insert(pod.Namespace)
	}
	nsSel, err := metav1.LabelSelectorAsSelector(term.NamespaceSelector)
	if err != nil {
		return affinityTerm{}, err
	}
	return affinityTerm{namespaces: ns, nsSelector: nsSel, nsNothing: term.NamespaceSelector == nil,
		selector: sel, topologyKey: term.TopologyKey, weight: weight}, nil
}

// hostPort is a host port a container asks for.
type hostPort struct {
	ip       string
	protocol corev1.Protocol
	port     int32
}

// podInfo is a pod with what scheduling needs of it worked out once.
type podInfo struct {
	pod      *corev1.Pod
	key      string
	priority int32
	req      resources // requests, as NodeResourcesFit counts them
	// nonZeroCPU and nonZeroMem are the requests with upstream's defaults
	// for containers that have none, as least-allocated scoring counts.
	nonZeroCPU, nonZeroMem int64
	ports                  []hostPort
	reqAffinity, reqAnti   []affinityTerm
	prefAffinity, prefAnti []affinityTerm
	parseErr               error
}

// hasAffinity reports whether the pod has any pod affinity or
// anti-affinity term (upstream's NodeInfo.PodsWithAffinity).
func (pi *podInfo) hasAffinity() bool {
	return len(pi.reqAffinity)+len(pi.reqAnti)+len(pi.prefAffinity)+len(pi.prefAnti) > 0
}

func newPodInfo(pod *corev1.Pod) *podInfo {
	pi := &podInfo{pod: pod, key: podKey(pod), priority: corev1helpers.PodPriority(pod)}
	pi.req = newResources(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
	nz := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{NonMissingContainerRequests: nonZeroDefaults})
	pi.nonZeroCPU, pi.nonZeroMem = nz.Cpu().MilliValue(), nz.Memory().Value()
	addPorts := func(cs []corev1.Container, sidecarsOnly bool) {
		for i := range cs {
			if sidecarsOnly && (cs[i].RestartPolicy == nil || *cs[i].RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, p := range cs[i].Ports {
				if p.HostPort <= 0 {
					continue
				}
				hp := hostPort{ip: p.HostIP, protocol: p.Protocol, port: p.HostPort}
				if hp.ip == "" {
					hp.ip = "0.0.0.0"
				}
				if hp.protocol == "" {
					hp.protocol = corev1.ProtocolTCP
				}
				pi.ports = append(pi.ports, hp)
			}
		}
	}
	addPorts(pod.Spec.InitContainers, true)
	addPorts(pod.Spec.Containers, false)
	if a := pod.Spec.Affinity; a != nil {
		parse := func(terms []corev1.PodAffinityTerm) []affinityTerm {
			var out []affinityTerm
			for i := range terms {
				t, err := newAffinityTerm(pod, &terms[i], 0)
				if err != nil {
					pi.parseErr = err
					continue
				}
				out = append(out, t)
			}
			return out
		}
		parseWeighted := func(terms []corev1.WeightedPodAffinityTerm) []affinityTerm {
			var out []affinityTerm
			for i := range terms {
				t, err := newAffinityTerm(pod, &terms[i].PodAffinityTerm, terms[i].Weight)
				if err != nil {
					pi.parseErr = err
					continue
				}
				out = append(out, t)
			}
			return out
		}
		if a.PodAffinity != nil {
			pi.reqAffinity = parse(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
			pi.prefAffinity = parseWeighted(a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
		}
		if a.PodAntiAffinity != nil {
			pi.reqAnti = parse(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
			pi.prefAnti = parseWeighted(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
		}
	}
	return pi
}

func podKey(pod *corev1.Pod) string {
	if pod.Namespace == "" {
		return pod.Name
	}
	return pod.Namespace + "/" + pod.Name
}

// nodeInfo is a node with the pods on it (bound, or assumed: chosen by
// this scheduler and being bound) and their sums.
type nodeInfo struct {
	name        string
	node        *corev1.Node // nil once the node is deleted while pods remain
	alloc       resources
	allowedPods int
	pods        []*podInfo
	index       map[string]int // pod key → position in pods
	requested   resources
	// nonZeroCPU and nonZeroMem sum the pods' requests with upstream's
	// defaults for containers without any.
	nonZeroCPU, nonZeroMem int64
	ports                  map[hostPort]int
	affinityPods           int // pods with any pod (anti-)affinity term
	requiredAntiPods       int // pods with a required anti-affinity term
}

func newNodeInfo(name string) *nodeInfo {
	return &nodeInfo{name: name, index: map[string]int{}}
}

func (ni *nodeInfo) setNode(n *corev1.Node) {
	ni.node = n
	if n == nil {
		return
	}
	ni.alloc = newResources(n.Status.Allocatable)
	ni.allowedPods = int(n.Status.Allocatable.Pods().Value())
}

func (ni *nodeInfo) addPod(pi *podInfo) {
	ni.index[pi.key] = len(ni.pods)
	ni.pods = append(ni.pods, pi)
	ni.account(pi, 1)
}

func (ni *nodeInfo) removePod(key string) *podInfo {
	i, ok := ni.index[key]
	if !ok {
		return nil
	}
	pi := ni.pods[i]
	last := len(ni.pods) - 1
	ni.pods[i] = ni.pods[last]
	ni.index[ni.pods[i].key] = i
	ni.pods[last] = nil
	ni.pods = ni.pods[:last]
	delete(ni.index, key)
	ni.account(pi, -1)
	return pi
}

func (ni *nodeInfo) account(pi *podInfo, sign int64) {
	ni.requested.add(&pi.req, sign)
	ni.nonZeroCPU += sign * pi.nonZeroCPU
	ni.nonZeroMem += sign * pi.nonZeroMem
	for _, p := range pi.ports {
		if ni.ports == nil {
			ni.ports = map[hostPort]int{}
		}
		ni.ports[p] += int(sign)
		if ni.ports[p] <= 0 {
			delete(ni.ports, p)
		}
	}
	if pi.hasAffinity() {
		ni.affinityPods += int(sign)
	}
	if len(pi.reqAnti) > 0 {
		ni.requiredAntiPods += int(sign)
	}
}

// podState is where the cache has a pod.
type podState struct {
	pi      *podInfo
	node    string
	assumed bool // chosen by this scheduler, not yet seen bound
}

// clusterCache holds the cluster as the scheduler sees it: every node with the
// pods bound or assumed on it, kept up to date by informer events and by
// the scheduler's own decisions, so that a scheduling attempt never lists
// pods. Callers hold mu.
type clusterCache struct {
	mu    sync.Mutex
	nodes map[string]*nodeInfo
	list  []*nodeInfo // nodes that exist, by name
	dirty bool        // list needs rebuilding
	pods  map[string]*podState
}

func newClusterCache() *clusterCache {
	return &clusterCache{nodes: map[string]*nodeInfo{}, pods: map[string]*podState{}}
}

// nodeList returns the nodes that exist, by name.
func (c *clusterCache) nodeList() []*nodeInfo {
	if c.dirty {
		c.list = c.list[:0]
		for _, ni := range c.nodes {
			if ni.node != nil {
				c.list = append(c.list, ni)
			}
		}
		sort.Slice(c.list, func(i, j int) bool { return c.list[i].name < c.list[j].name })
		c.dirty = false
	}
	return c.list
}

func (c *clusterCache) setNode(n *corev1.Node) {
	ni := c.nodes[n.Name]
	if ni == nil {
		ni = newNodeInfo(n.Name)
		c.nodes[n.Name] = ni
	}
	if ni.node == nil {
		c.dirty = true
	}
	ni.setNode(n)
}

func (c *clusterCache) removeNode(name string) {
	ni := c.nodes[name]
	if ni == nil {
		return
	}
	ni.setNode(nil)
	if len(ni.pods) == 0 {
		delete(c.nodes, name)
	}
	c.dirty = true
}

// addPod records pod as bound to pod.Spec.NodeName (confirming an
// assumed pod, or moving it if it was bound elsewhere).
func (c *clusterCache) addPod(pod *corev1.Pod) {
	key := podKey(pod)
	if st := c.pods[key]; st != nil {
		if st.node == pod.Spec.NodeName && st.pi.pod.UID == pod.UID && !podChangedForCache(st.pi.pod, pod) {
			st.pi.pod = pod
			st.assumed = false
			return
		}
		c.removePod(key)
	}
	pi := newPodInfo(pod)
	c.place(pi, pod.Spec.NodeName, false)
}

// podChangedForCache reports whether what the cache worked out of a pod
// may differ between old and new: labels, requests, affinity, ports.
func podChangedForCache(old, new *corev1.Pod) bool {
	if old == new {
		return false
	}
	if !labels.Equals(old.Labels, new.Labels) || old.Namespace != new.Namespace {
		return true
	}
	if len(old.Spec.Containers) != len(new.Spec.Containers) || len(old.Spec.InitContainers) != len(new.Spec.InitContainers) {
		return true
	}
	for i := range old.Spec.Containers {
		o, n := &old.Spec.Containers[i], &new.Spec.Containers[i]
		if !resourceListsEqual(o.Resources.Requests, n.Resources.Requests) || len(o.Ports) != len(n.Ports) {
			return true
		}
	}
	// Everything else that matters (affinity, overhead, init containers)
	// cannot change on a bound pod; terminal phases are handled apart.
	return old.Spec.Resources != new.Spec.Resources && (old.Spec.Resources == nil || new.Spec.Resources == nil ||
		!resourceListsEqual(old.Spec.Resources.Requests, new.Spec.Resources.Requests))
}

func resourceListsEqual(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v.Cmp(w) != 0 {
			return false
		}
	}
	return true
}

func (c *clusterCache) place(pi *podInfo, node string, assumed bool) {
	ni := c.nodes[node]
	if ni == nil {
		ni = newNodeInfo(node)
		c.nodes[node] = ni
	}
	ni.addPod(pi)
	c.pods[pi.key] = &podState{pi: pi, node: node, assumed: assumed}
}

// removePod forgets a pod, bound or assumed; it returns where it was.
func (c *clusterCache) removePod(key string) *podState {
	st := c.pods[key]
	if st == nil {
		return nil
	}
	delete(c.pods, key)
	if ni := c.nodes[st.node]; ni != nil {
		ni.removePod(key)
		if ni.node == nil && len(ni.pods) == 0 {
			delete(c.nodes, st.node)
		}
	}
	return st
}

// assume puts a pod the scheduler chose a node for on that node, before
// the binding is seen.
func (c *clusterCache) assume(pi *podInfo, node string) {
	c.removePod(pi.key)
	c.place(pi, node, true)
}

// forget takes back an assumed pod whose binding failed.
func (c *clusterCache) forget(key string, uid string) {
	if st := c.pods[key]; st != nil && st.assumed && string(st.pi.pod.UID) == uid {
		c.removePod(key)
	}
}

// has reports whether the cache already has the pod on a node, bound
// or assumed.
func (c *clusterCache) has(key string) bool {
	return c.pods[key] != nil
}
