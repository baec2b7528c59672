package scheduler

import (
	"fmt"
	"math"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// The filter plugins of upstream's default profile that apply here, as
// bits, in the order upstream runs them; a pod that fits nowhere remembers
// which of them rejected it, so that only cluster events that may change
// their verdict send it back to the active queue.
const (
	plNodeUnschedulable uint16 = 1 << iota
	plNodeName
	plTaintToleration
	plNodeAffinity
	plNodePorts
	plNodeResourcesFit
	plVolumeBinding
	plPodTopologySpread
	plInterPodAffinity
	plAll = 1<<iota - 1
)

// code is how a filter rejected a node: Unschedulable (preempting pods on
// it may help) or UnschedulableAndUnresolvable (it cannot).
type code uint8

const (
	codeUnschedulable code = iota + 1
	codeUnresolvable
)

// status is why a node cannot run a pod, in upstream's words.
type status struct {
	code    code
	reasons []string
	plugin  uint16
}

// Upstream's reasons (the plugins' ErrReason constants).
const (
	reasonUnschedulable        = "node(s) were unschedulable"
	reasonNodeName             = "node(s) didn't match the requested node name"
	reasonNodeAffinity         = "node(s) didn't match Pod's node affinity/selector"
	reasonNodePorts            = "node(s) didn't have free ports for the requested pod ports"
	reasonSpread               = "node(s) didn't match pod topology spread constraints"
	reasonSpreadLabel          = reasonSpread + " (missing required label)"
	reasonAffinity             = "node(s) didn't match pod affinity rules"
	reasonAntiAffinity         = "node(s) didn't match pod anti-affinity rules"
	reasonExistingAntiAffinity = "node(s) didn't satisfy existing pods anti-affinity rules"
	reasonNoVictims            = "No preemption victims found for incoming pod"
	reasonPreemptionNotHelpful = "Preemption is not helpful for scheduling"
	msgNoNodes                 = "no nodes available to schedule pods"
	msgPreemptionPolicyNever   = "not eligible due to preemptionPolicy=Never."
	msgTerminatingOnNominated  = "not eligible due to a terminating pod on the nominated node."
	reasonTooManyPods          = "Too many pods"
	reasonInsufficientCPU      = "Insufficient cpu"
	reasonInsufficientMemory   = "Insufficient memory"
	// reasonUntoleratedTaint is TaintToleration's reason as the course's
	// clusters (Kubernetes up to 1.33) word it, naming the first taint the
	// pod does not tolerate: "node(s) had untolerated taint {lab: only}".
	// Kubernetes 1.34 dropped the key and value (kubernetes#134740); the
	// course reads them, so labctl keeps them.
	reasonUntoleratedTaint = "node(s) had untolerated taint {%s: %s}"
)

var (
	stUnschedulable        = &status{codeUnresolvable, []string{reasonUnschedulable}, plNodeUnschedulable}
	stNodeName             = &status{codeUnresolvable, []string{reasonNodeName}, plNodeName}
	stNodeAffinity         = &status{codeUnresolvable, []string{reasonNodeAffinity}, plNodeAffinity}
	stNodePorts            = &status{codeUnschedulable, []string{reasonNodePorts}, plNodePorts}
	stSpread               = &status{codeUnschedulable, []string{reasonSpread}, plPodTopologySpread}
	stSpreadLabel          = &status{codeUnresolvable, []string{reasonSpreadLabel}, plPodTopologySpread}
	stAffinity             = &status{codeUnresolvable, []string{reasonAffinity}, plInterPodAffinity}
	stAntiAffinity         = &status{codeUnschedulable, []string{reasonAntiAffinity}, plInterPodAffinity}
	stExistingAntiAffinity = &status{codeUnschedulable, []string{reasonExistingAntiAffinity}, plInterPodAffinity}
	stNoVictims            = &status{codeUnresolvable, []string{reasonNoVictims}, 0}
	stTooManyPods          = &status{codeUnschedulable, []string{reasonTooManyPods}, plNodeResourcesFit}
	stInsufficientCPU      = &status{codeUnschedulable, []string{reasonInsufficientCPU}, plNodeResourcesFit}
	stInsufficientMemory   = &status{codeUnschedulable, []string{reasonInsufficientMemory}, plNodeResourcesFit}
)

// untoleratedTaint is TaintToleration's refusal, naming the taint.
func untoleratedTaint(t corev1.Taint) *status {
	return &status{codeUnresolvable, []string{fmt.Sprintf(reasonUntoleratedTaint, t.Key, t.Value)}, plTaintToleration}
}

var unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

func doNotScheduleTaints(t *corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
}

// cycle is one attempt to schedule one pod: the pod and what the
// pre-filters worked out for it over all nodes.
type cycle struct {
	pi                     *podInfo
	nodeAffinity           nodeaffinity.RequiredNodeAffinity
	toleratesUnschedulable bool
	nsLabels               labels.Set // the pod's namespace's labels
	ipa                    *affinityState
	pts                    *spreadState
	volumes                *volumeState // nil: the pod has no claims
	volumeMsg              string       // why VolumeBinding's pre-filter refuses the pod
	// nominated returns the pods nominated to a node that weigh on this
	// pod (equal or higher priority, not the pod itself).
	nominated func(node string) []*podInfo
}

// nodeView is a node as a filter sees it: its pods, plus the pods
// nominated to it, minus the victims of a preemption being tried.
type nodeView struct {
	ni        *nodeInfo
	requested resources
	numPods   int
	added     []*podInfo      // nominated pods counted on the node
	removed   map[string]bool // victims taken off the node
}

func (a *algorithm) view(c *cycle, ni *nodeInfo) nodeView {
	v := nodeView{ni: ni, requested: ni.requested, numPods: len(ni.pods)}
	if c.nominated != nil {
		if nom := c.nominated(ni.name); len(nom) > 0 {
			v.requested = ni.requested.clone()
			for _, p := range nom {
				if _, on := ni.index[p.key]; on {
					continue
				}
				v.added = append(v.added, p)
				v.requested.add(&p.req, 1)
				v.numPods++
			}
		}
	}
	return v
}

// portsFree reports whether none of want is in use on the node.
func (v *nodeView) portsFree(want []hostPort) bool {
	conflict := func(used hostPort, w hostPort) bool {
		return used.port == w.port && used.protocol == w.protocol &&
			(used.ip == w.ip || used.ip == "0.0.0.0" || w.ip == "0.0.0.0")
	}
	for _, w := range want {
		for used, n := range v.ni.ports {
			if n > 0 && conflict(used, w) && !v.portOnlyOnRemoved(used) {
				return false
			}
		}
		for _, p := range v.added {
			for _, used := range p.ports {
				if conflict(used, w) {
					return false
				}
			}
		}
	}
	return true
}

// portOnlyOnRemoved reports whether every pod using port on the node is
// a victim taken off it.
func (v *nodeView) portOnlyOnRemoved(port hostPort) bool {
	if len(v.removed) == 0 {
		return false
	}
	for _, p := range v.ni.pods {
		if v.removed[p.key] {
			continue
		}
		for _, used := range p.ports {
			if used == port {
				return false
			}
		}
	}
	return true
}

// fits is NodeResourcesFit's filter: every resource the node lacks.
// When the pod asks for more of a resource than the node has at all,
// evicting pods cannot help: UnschedulableAndUnresolvable, as upstream.
func (v *nodeView) fits(pi *podInfo) *status {
	var reasons []string
	unresolvable := false
	if v.numPods+1 > v.ni.allowedPods {
		reasons = append(reasons, reasonTooManyPods)
	}
	req, alloc := &pi.req, &v.ni.alloc
	if !req.isZero() {
		check := func(want, total, used int64, reason string) {
			if want > 0 && want > total-used {
				reasons = append(reasons, reason)
				unresolvable = unresolvable || want > total
			}
		}
		check(req.milliCPU, alloc.milliCPU, v.requested.milliCPU, reasonInsufficientCPU)
		check(req.memory, alloc.memory, v.requested.memory, reasonInsufficientMemory)
		check(req.ephemeral, alloc.ephemeral, v.requested.ephemeral, "Insufficient ephemeral-storage")
		if len(req.scalar) > 0 {
			names := make([]string, 0, len(req.scalar))
			for name := range req.scalar {
				names = append(names, string(name))
			}
			sort.Strings(names)
			for _, name := range names {
				n := corev1.ResourceName(name)
				check(req.scalar[n], alloc.scalar[n], v.requested.scalar[n], "Insufficient "+name)
			}
		}
	}
	switch {
	case len(reasons) == 0:
		return nil
	case unresolvable:
		return &status{codeUnresolvable, reasons, plNodeResourcesFit}
	case len(reasons) > 1:
		return &status{codeUnschedulable, reasons, plNodeResourcesFit}
	case reasons[0] == reasonTooManyPods:
		return stTooManyPods
	case reasons[0] == reasonInsufficientCPU:
		return stInsufficientCPU
	case reasons[0] == reasonInsufficientMemory:
		return stInsufficientMemory
	}
	return &status{codeUnschedulable, reasons, plNodeResourcesFit}
}

// filter runs upstream's filter plugins on one node, in upstream's order,
// and returns the first rejection, or nil when the pod fits.
func (a *algorithm) filter(c *cycle, v *nodeView) *status {
	n, pod := v.ni.node, c.pi.pod
	// NodeUnschedulable
	if n.Spec.Unschedulable && !c.toleratesUnschedulable {
		return stUnschedulable
	}
	// NodeName
	if pod.Spec.NodeName != "" && pod.Spec.NodeName != n.Name {
		return stNodeName
	}
	// TaintToleration
	if len(n.Spec.Taints) > 0 {
		if taint, bad := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), n.Spec.Taints, pod.Spec.Tolerations, doNotScheduleTaints, false); bad {
			return untoleratedTaint(taint)
		}
	}
	// NodeAffinity (nodeSelector and required node affinity)
	if ok, _ := c.nodeAffinity.Match(n); !ok {
		return stNodeAffinity
	}
	// NodePorts
	if len(c.pi.ports) > 0 && !v.portsFree(c.pi.ports) {
		return stNodePorts
	}
	// NodeResourcesFit
	if st := v.fits(c.pi); st != nil {
		return st
	}
	// VolumeBinding
	if c.volumes != nil {
		if _, st := a.volumeFit(c.volumes, n); st != nil {
			return st
		}
	}
	// PodTopologySpread
	if c.pts != nil {
		if st := c.pts.filter(c.pi.pod, n); st != nil {
			return st
		}
	}
	// InterPodAffinity
	if c.ipa != nil {
		if st := c.ipa.filter(c, n); st != nil {
			return st
		}
	}
	return nil
}

// newCycle runs the pre-filters for pod over every node.
func (a *algorithm) newCycle(pi *podInfo, nominated func(string) []*podInfo) *cycle {
	pod := pi.pod
	c := &cycle{
		pi:                     pi,
		nodeAffinity:           nodeaffinity.GetRequiredNodeAffinity(pod),
		toleratesUnschedulable: corev1helpers.TolerationsTolerateTaint(klog.Background(), pod.Spec.Tolerations, &unschedulableTaint, false),
		nominated:              nominated,
	}
	c.nsLabels = a.objs.namespaceLabels(pod.Namespace)
	c.volumes, c.volumeMsg = a.preFilterVolumes(pod)
	c.pts = a.preFilterSpread(c)
	c.ipa = a.preFilterAffinity(c)
	return c
}

// nsLabels returns a namespace's labels.
func (a *algorithm) nsLabels(ns string) labels.Set {
	return a.objs.namespaceLabels(ns)
}

// ---- InterPodAffinity ----

type topologyPair struct{ key, value string }

// affinityState is InterPodAffinity's pre-filter state: counts per
// topology domain.
type affinityState struct {
	// existingAnti counts existing pods whose required anti-affinity
	// terms match the incoming pod.
	existingAnti map[topologyPair]int64
	// affinity counts existing pods that match all the incoming pod's
	// required affinity terms; anti those matching each anti term.
	affinity, anti map[topologyPair]int64
}

func (s *affinityState) clone() *affinityState {
	cp := func(m map[topologyPair]int64) map[topologyPair]int64 {
		out := make(map[topologyPair]int64, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return &affinityState{existingAnti: cp(s.existingAnti), affinity: cp(s.affinity), anti: cp(s.anti)}
}

func addPair(m map[topologyPair]int64, node *corev1.Node, key string, delta int64) {
	if v, ok := node.Labels[key]; ok {
		p := topologyPair{key, v}
		m[p] += delta
		if m[p] == 0 {
			delete(m, p)
		}
	}
}

// update counts existing pod p on node (delta +1 or -1).
func (s *affinityState) update(a *algorithm, c *cycle, p *podInfo, node *corev1.Node, delta int64) {
	for i := range p.reqAnti {
		t := &p.reqAnti[i]
		if t.matches(c.pi.pod, func(string) labels.Set { return c.nsLabels }) {
			addPair(s.existingAnti, node, t.topologyKey, delta)
		}
	}
	if len(c.pi.reqAffinity) > 0 && matchesAll(c.pi.reqAffinity, p.pod, a.nsLabels) {
		for i := range c.pi.reqAffinity {
			addPair(s.affinity, node, c.pi.reqAffinity[i].topologyKey, delta)
		}
	}
	for i := range c.pi.reqAnti {
		t := &c.pi.reqAnti[i]
		if t.matches(p.pod, a.nsLabels) {
			addPair(s.anti, node, t.topologyKey, delta)
		}
	}
}

func matchesAll(terms []affinityTerm, p *corev1.Pod, nsLabels func(string) labels.Set) bool {
	if len(terms) == 0 {
		return false
	}
	for i := range terms {
		if !terms[i].matches(p, nsLabels) {
			return false
		}
	}
	return true
}

// preFilterAffinity counts, over every node, the existing pods that the
// incoming pod's required terms select and those whose required
// anti-affinity selects the incoming pod; nil when nothing applies.
func (a *algorithm) preFilterAffinity(c *cycle) *affinityState {
	pi := c.pi
	own := len(pi.reqAffinity)+len(pi.reqAnti) > 0
	s := &affinityState{existingAnti: map[topologyPair]int64{}, affinity: map[topologyPair]int64{}, anti: map[topologyPair]int64{}}
	ownNS := func(string) labels.Set { return c.nsLabels }
	for _, ni := range a.cache.nodeList() {
		if !own && ni.requiredAntiPods == 0 {
			continue
		}
		node := ni.node
		for _, p := range ni.pods {
			if own {
				s.update(a, c, p, node, 1)
				continue
			}
			for i := range p.reqAnti {
				t := &p.reqAnti[i]
				if t.matches(pi.pod, ownNS) {
					addPair(s.existingAnti, node, t.topologyKey, 1)
				}
			}
		}
	}
	if len(s.existingAnti) == 0 && !own {
		return nil
	}
	return s
}

func (s *affinityState) filter(c *cycle, n *corev1.Node) *status {
	// The incoming pod's required affinity.
	if len(c.pi.reqAffinity) > 0 {
		exist := true
		for i := range c.pi.reqAffinity {
			t := &c.pi.reqAffinity[i]
			v, ok := n.Labels[t.topologyKey]
			if !ok {
				return stAffinity // all topology labels must exist on the node
			}
			if s.affinity[topologyPair{t.topologyKey, v}] <= 0 {
				exist = false
			}
		}
		// The first pod of a series with affinity to itself goes
		// anywhere the topology labels exist.
		if !exist && !(len(s.affinity) == 0 && matchesAll(c.pi.reqAffinity, c.pi.pod, func(string) labels.Set { return c.nsLabels })) {
			return stAffinity
		}
	}
	// The incoming pod's required anti-affinity.
	for i := range c.pi.reqAnti {
		t := &c.pi.reqAnti[i]
		if v, ok := n.Labels[t.topologyKey]; ok && s.anti[topologyPair{t.topologyKey, v}] > 0 {
			return stAntiAffinity
		}
	}
	// Existing pods' required anti-affinity.
	if len(s.existingAnti) > 0 {
		for k, v := range n.Labels {
			if s.existingAnti[topologyPair{k, v}] > 0 {
				return stExistingAntiAffinity
			}
		}
	}
	return nil
}

// ---- PodTopologySpread ----

type spreadConstraint struct {
	maxSkew            int32
	topologyKey        string
	selector           labels.Selector
	minDomains         int32
	nodeAffinityPolicy corev1.NodeInclusionPolicy
	nodeTaintsPolicy   corev1.NodeInclusionPolicy
}

// upstream's system default constraints, for pods that set none.
var systemDefaultConstraints = []corev1.TopologySpreadConstraint{
	{TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway, MaxSkew: 3},
	{TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.ScheduleAnyway, MaxSkew: 5},
}

// spreadConstraints returns pod's constraints with the given action:
// its own, or when it has none, the system defaults with the selector of
// its Services and controller.
func (a *algorithm) spreadConstraints(pod *corev1.Pod, action corev1.UnsatisfiableConstraintAction) []spreadConstraint {
	if len(pod.Spec.TopologySpreadConstraints) > 0 {
		return filterConstraints(pod.Spec.TopologySpreadConstraints, pod.Labels, action)
	}
	cs := filterConstraints(systemDefaultConstraints, pod.Labels, action)
	if len(cs) == 0 {
		return nil
	}
	sel := defaultSelector(a.objs, pod)
	if sel.Empty() {
		return nil
	}
	for i := range cs {
		cs[i].selector = sel
	}
	return cs
}

func filterConstraints(in []corev1.TopologySpreadConstraint, podLabels map[string]string, action corev1.UnsatisfiableConstraintAction) []spreadConstraint {
	var out []spreadConstraint
	for _, c := range in {
		if c.WhenUnsatisfiable != action {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil {
			continue
		}
		if len(c.MatchLabelKeys) > 0 {
			set := labels.Set{}
			for _, k := range c.MatchLabelKeys {
				if v, ok := podLabels[k]; ok {
					set[k] = v
				}
			}
			if len(set) > 0 {
				merged := labels.SelectorFromSet(set)
				if reqs, ok := sel.Requirements(); ok {
					merged = merged.Add(reqs...)
				}
				sel = merged
			}
		}
		sc := spreadConstraint{maxSkew: c.MaxSkew, topologyKey: c.TopologyKey, selector: sel, minDomains: 1,
			nodeAffinityPolicy: corev1.NodeInclusionPolicyHonor, nodeTaintsPolicy: corev1.NodeInclusionPolicyIgnore}
		if c.MinDomains != nil {
			sc.minDomains = *c.MinDomains
		}
		if c.NodeAffinityPolicy != nil {
			sc.nodeAffinityPolicy = *c.NodeAffinityPolicy
		}
		if c.NodeTaintsPolicy != nil {
			sc.nodeTaintsPolicy = *c.NodeTaintsPolicy
		}
		out = append(out, sc)
	}
	return out
}

// includes reports whether node counts as a domain for constraint sc.
func (sc *spreadConstraint) includes(c *cycle, node *corev1.Node) bool {
	if sc.nodeAffinityPolicy == corev1.NodeInclusionPolicyHonor {
		if ok, _ := c.nodeAffinity.Match(node); !ok {
			return false
		}
	}
	if sc.nodeTaintsPolicy == corev1.NodeInclusionPolicyHonor {
		if _, bad := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), node.Spec.Taints, c.pi.pod.Spec.Tolerations, doNotScheduleTaints, false); bad {
			return false
		}
	}
	return true
}

func hasAllKeys(nodeLabels map[string]string, cs []spreadConstraint) bool {
	for i := range cs {
		if _, ok := nodeLabels[cs[i].topologyKey]; !ok {
			return false
		}
	}
	return true
}

// countMatching counts the pods of namespace ns on the node that sel
// selects, leaving out terminating pods as upstream does.
func countMatching(pods []*podInfo, sel labels.Selector, ns string, removed map[string]bool) int {
	n := 0
	for _, p := range pods {
		if p.pod.Namespace != ns || p.pod.DeletionTimestamp != nil || removed[p.key] {
			continue
		}
		if sel.Matches(labels.Set(p.pod.Labels)) {
			n++
		}
	}
	return n
}

// spreadState is PodTopologySpread's pre-filter state: per hard
// constraint, the matching pods per domain and the global minimum.
type spreadState struct {
	constraints []spreadConstraint
	counts      []map[string]int
	min         []int
}

func (s *spreadState) clone() *spreadState {
	out := &spreadState{constraints: s.constraints, counts: make([]map[string]int, len(s.counts)), min: append([]int(nil), s.min...)}
	for i, m := range s.counts {
		out.counts[i] = make(map[string]int, len(m))
		for k, v := range m {
			out.counts[i][k] = v
		}
	}
	return out
}

func (s *spreadState) recomputeMin(i int) {
	m := math.MaxInt32
	for _, n := range s.counts[i] {
		if n < m {
			m = n
		}
	}
	if len(s.counts[i]) < int(s.constraints[i].minDomains) {
		m = 0 // fewer eligible domains than minDomains: the minimum is 0
	}
	s.min[i] = m
}

func (a *algorithm) preFilterSpread(c *cycle) *spreadState {
	cs := a.spreadConstraints(c.pi.pod, corev1.DoNotSchedule)
	if len(cs) == 0 {
		return nil
	}
	s := &spreadState{constraints: cs, counts: make([]map[string]int, len(cs)), min: make([]int, len(cs))}
	for i := range cs {
		s.counts[i] = map[string]int{}
	}
	ns := c.pi.pod.Namespace
	for _, ni := range a.cache.nodeList() {
		if !hasAllKeys(ni.node.Labels, cs) {
			continue
		}
		for i := range cs {
			if !cs[i].includes(c, ni.node) {
				continue
			}
			s.counts[i][ni.node.Labels[cs[i].topologyKey]] += countMatching(ni.pods, cs[i].selector, ns, nil)
		}
	}
	for i := range cs {
		s.recomputeMin(i)
	}
	return s
}

// update counts pod p on node (delta +1 or -1), for preemption.
func (s *spreadState) update(c *cycle, p *podInfo, node *corev1.Node, delta int) {
	if p.pod.Namespace != c.pi.pod.Namespace || !hasAllKeys(node.Labels, s.constraints) {
		return
	}
	for i := range s.constraints {
		sc := &s.constraints[i]
		if !sc.selector.Matches(labels.Set(p.pod.Labels)) || !sc.includes(c, node) {
			continue
		}
		s.counts[i][node.Labels[sc.topologyKey]] += delta
		s.recomputeMin(i)
	}
}

func (s *spreadState) filter(pod *corev1.Pod, n *corev1.Node) *status {
	for i := range s.constraints {
		sc := &s.constraints[i]
		v, ok := n.Labels[sc.topologyKey]
		if !ok {
			return stSpreadLabel
		}
		self := 0
		if sc.selector.Matches(labels.Set(pod.Labels)) {
			self = 1
		}
		if s.counts[i][v]+self-s.min[i] > int(sc.maxSkew) {
			return stSpread
		}
	}
	return nil
}

// ---- diagnosis ----

// nodeStatus is one node's rejection.
type nodeStatus struct {
	node string
	st   *status
}

// fitMessage builds upstream's FitError message: "0/N nodes are
// available: <count> <reason>, ...." with the reasons sorted and nodes not
// listed counted under absent, then the post-filter's (preemption's)
// message as it is.
func fitMessage(numNodes int, statuses []nodeStatus, absent string, postFilter string) string {
	counts := map[string]int{}
	for _, ns := range statuses {
		for _, r := range ns.st.reasons {
			counts[r]++
		}
	}
	if absent != "" && len(statuses) < numNodes {
		counts[absent] += numNodes - len(statuses)
	}
	parts := make([]string, 0, len(counts))
	for r, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(parts)
	msg := fmt.Sprintf("0/%d nodes are available:", numNodes)
	if len(parts) > 0 {
		msg += " " + strings.Join(parts, ", ") + "."
	}
	if postFilter != "" {
		msg += " " + postFilter
	}
	return msg
}
