package scheduler

import (
	"math"
	"math/rand"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// maxNodeScore is the most a score plugin gives a node (framework.MaxNodeScore).
const maxNodeScore = 100

// Score plugin weights of upstream's default profile.
const (
	weightTaintToleration    = 3
	weightNodeAffinity       = 2
	weightNodeResourcesFit   = 1
	weightPodTopologySpread  = 2
	weightInterPodAffinity   = 2
	weightBalancedAllocation = 1
)

// Upstream's percentageOfNodesToScore defaults: below 100 nodes all are
// searched; above, a share that falls with the cluster's size.
const (
	minFeasibleNodesToFind           = 100
	minFeasibleNodesPercentageToFind = 5
)

// algorithm decides where pods go, over the cache. Its callers hold the
// cache's lock.
type algorithm struct {
	cache     *clusterCache
	objs      objects
	rnd       *rand.Rand
	nextStart int
}

func numFeasibleNodesToFind(numAll int) int {
	if numAll < minFeasibleNodesToFind {
		return numAll
	}
	pct := 50 - numAll/125
	if pct < minFeasibleNodesPercentageToFind {
		pct = minFeasibleNodesPercentageToFind
	}
	n := numAll * pct / 100
	if n < minFeasibleNodesToFind {
		return minFeasibleNodesToFind
	}
	return n
}

// findFeasible runs the filters: the nominated node alone when the pod
// has one and fits there, else the nodes in turn from where the last
// search stopped, until enough fit. It returns the nodes that fit and
// why each other node does not.
func (a *algorithm) findFeasible(c *cycle) ([]*nodeInfo, []nodeStatus) {
	if nnn := c.pi.pod.Status.NominatedNodeName; nnn != "" {
		if ni := a.cache.nodes[nnn]; ni != nil && ni.node != nil {
			v := a.view(c, ni)
			if a.filter(c, &v) == nil {
				return []*nodeInfo{ni}, nil
			}
		}
	}
	nodes := a.cache.nodeList()
	n := len(nodes)
	if n == 0 {
		return nil, nil
	}
	want := numFeasibleNodesToFind(n)
	var feasible []*nodeInfo
	var statuses []nodeStatus
	processed := 0
	for ; processed < n && len(feasible) < want; processed++ {
		ni := nodes[(a.nextStart+processed)%n]
		v := a.view(c, ni)
		if st := a.filter(c, &v); st != nil {
			statuses = append(statuses, nodeStatus{ni.name, st})
		} else {
			feasible = append(feasible, ni)
		}
	}
	a.nextStart = (a.nextStart + processed) % n
	return feasible, statuses
}

// selectHost picks the node with the highest score, at random among ties.
func (a *algorithm) selectHost(nodes []*nodeInfo, scores []int64) *nodeInfo {
	best, ties := 0, 1
	for i := 1; i < len(nodes); i++ {
		switch {
		case scores[i] > scores[best]:
			best, ties = i, 1
		case scores[i] == scores[best]:
			ties++
			if a.rnd.Intn(ties) == 0 {
				best = i
			}
		}
	}
	return nodes[best]
}

// prioritize runs upstream's default score plugins over the feasible
// nodes and returns each node's weighted sum.
func (a *algorithm) prioritize(c *cycle, nodes []*nodeInfo) []int64 {
	total := make([]int64, len(nodes))
	raw := make([]int64, len(nodes))
	add := func(weight int64) {
		for i := range raw {
			total[i] += weight * raw[i]
			raw[i] = 0
		}
	}
	if a.scoreTaints(c, nodes, raw) {
		add(weightTaintToleration)
	}
	if a.scoreNodeAffinity(c, nodes, raw) {
		add(weightNodeAffinity)
	}
	a.scoreLeastAllocated(c, nodes, raw)
	add(weightNodeResourcesFit)
	if a.scoreSpread(c, nodes, raw) {
		add(weightPodTopologySpread)
	}
	if a.scoreInterPodAffinity(c, nodes, raw) {
		add(weightInterPodAffinity)
	}
	if a.scoreBalanced(c, nodes, raw) {
		add(weightBalancedAllocation)
	}
	return total
}

// defaultNormalize scales scores to 0..maxNodeScore by the highest
// (helper.DefaultNormalizeScore); reverse turns them around.
func defaultNormalize(scores []int64, reverse bool) {
	var max int64
	for _, s := range scores {
		if s > max {
			max = s
		}
	}
	if max == 0 {
		if reverse {
			for i := range scores {
				scores[i] = maxNodeScore
			}
		}
		return
	}
	for i, s := range scores {
		s = maxNodeScore * s / max
		if reverse {
			s = maxNodeScore - s
		}
		scores[i] = s
	}
}

// scoreTaints is TaintToleration's score: fewer untolerated
// PreferNoSchedule taints is better.
func (a *algorithm) scoreTaints(c *cycle, nodes []*nodeInfo, out []int64) bool {
	var tolerations []corev1.Toleration
	for _, t := range c.pi.pod.Spec.Tolerations {
		if t.Effect == "" || t.Effect == corev1.TaintEffectPreferNoSchedule {
			tolerations = append(tolerations, t)
		}
	}
	for i, ni := range nodes {
		for j := range ni.node.Spec.Taints {
			t := &ni.node.Spec.Taints[j]
			if t.Effect == corev1.TaintEffectPreferNoSchedule && !corev1helpers.TolerationsTolerateTaint(klog.Background(), tolerations, t, false) {
				out[i]++
			}
		}
	}
	defaultNormalize(out, true)
	return true
}

// scoreNodeAffinity is NodeAffinity's score: the weights of the preferred
// node affinity terms a node matches.
func (a *algorithm) scoreNodeAffinity(c *cycle, nodes []*nodeInfo, out []int64) bool {
	aff := c.pi.pod.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || len(aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		return false
	}
	terms, err := nodeaffinity.NewPreferredSchedulingTerms(aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	if err != nil {
		return false
	}
	for i, ni := range nodes {
		out[i] = terms.Score(ni.node)
	}
	defaultNormalize(out, false)
	return true
}

// scoreLeastAllocated is NodeResourcesFit's default score: the share of
// CPU and memory left free after the pod, counting upstream's defaults
// for containers that request none.
func (a *algorithm) scoreLeastAllocated(c *cycle, nodes []*nodeInfo, out []int64) {
	least := func(requested, capacity int64) int64 {
		if capacity == 0 || requested > capacity {
			return 0
		}
		return (capacity - requested) * maxNodeScore / capacity
	}
	for i, ni := range nodes {
		var sum, weights int64
		if ni.alloc.milliCPU != 0 {
			sum += least(ni.nonZeroCPU+c.pi.nonZeroCPU, ni.alloc.milliCPU)
			weights++
		}
		if ni.alloc.memory != 0 {
			sum += least(ni.nonZeroMem+c.pi.nonZeroMem, ni.alloc.memory)
			weights++
		}
		if weights > 0 {
			out[i] = sum / weights
		}
	}
}

// scoreBalanced is NodeResourcesBalancedAllocation: nodes whose CPU and
// memory would be used in like shares are better. Skipped for pods that
// request neither.
func (a *algorithm) scoreBalanced(c *cycle, nodes []*nodeInfo, out []int64) bool {
	if c.pi.req.milliCPU == 0 && c.pi.req.memory == 0 {
		return false
	}
	for i, ni := range nodes {
		var fractions [2]float64
		n := 0
		if ni.alloc.milliCPU != 0 {
			fractions[n] = math.Min(1, float64(ni.requested.milliCPU+c.pi.req.milliCPU)/float64(ni.alloc.milliCPU))
			n++
		}
		if ni.alloc.memory != 0 {
			fractions[n] = math.Min(1, float64(ni.requested.memory+c.pi.req.memory)/float64(ni.alloc.memory))
			n++
		}
		std := 0.0
		if n == 2 {
			std = math.Abs((fractions[0] - fractions[1]) / 2)
		}
		out[i] = int64((1 - std) * maxNodeScore)
	}
	return true
}

// scoreSpread is PodTopologySpread's score: for the pod's ScheduleAnyway
// constraints, or upstream's system defaults (spread over hostnames with
// maxSkew 3 and zones with maxSkew 5 the pods of the pod's Services and
// controller), nodes in domains with fewer matching pods are better.
func (a *algorithm) scoreSpread(c *cycle, nodes []*nodeInfo, out []int64) bool {
	pod := c.pi.pod
	cs := a.spreadConstraints(pod, corev1.ScheduleAnyway)
	if len(cs) == 0 {
		return false
	}
	// System defaults spread over hostnames even on nodes without zones.
	requireAll := len(pod.Spec.TopologySpreadConstraints) > 0
	ignored := make([]bool, len(nodes))
	numIgnored := 0
	counts := make([]map[string]*int64, len(cs))
	size := make([]int, len(cs))
	for i := range cs {
		counts[i] = map[string]*int64{}
	}
	for j, ni := range nodes {
		if requireAll && !hasAllKeys(ni.node.Labels, cs) {
			ignored[j] = true
			numIgnored++
			continue
		}
		for i := range cs {
			if cs[i].topologyKey == corev1.LabelHostname {
				continue // counted per node below
			}
			v := ni.node.Labels[cs[i].topologyKey]
			if counts[i][v] == nil {
				counts[i][v] = new(int64)
				size[i]++
			}
		}
	}
	weight := make([]float64, len(cs))
	for i := range cs {
		sz := size[i]
		if cs[i].topologyKey == corev1.LabelHostname {
			sz = len(nodes) - numIgnored
		}
		weight[i] = math.Log(float64(sz + 2))
	}
	for _, ni := range a.cache.nodeList() {
		if requireAll && !hasAllKeys(ni.node.Labels, cs) {
			continue
		}
		for i := range cs {
			if !cs[i].includes(c, ni.node) {
				continue
			}
			cnt := counts[i][ni.node.Labels[cs[i].topologyKey]]
			if cnt == nil {
				continue
			}
			*cnt += int64(countMatching(ni.pods, cs[i].selector, pod.Namespace, nil))
		}
	}
	for j, ni := range nodes {
		if ignored[j] {
			continue
		}
		var score float64
		for i := range cs {
			v, ok := ni.node.Labels[cs[i].topologyKey]
			if !ok {
				continue
			}
			var cnt int64
			if cs[i].topologyKey == corev1.LabelHostname {
				cnt = int64(countMatching(ni.pods, cs[i].selector, pod.Namespace, nil))
			} else if p := counts[i][v]; p != nil {
				cnt = *p
			}
			score += float64(cnt)*weight[i] + float64(cs[i].maxSkew-1)
		}
		out[j] = int64(math.Round(score))
	}
	// Normalize: fewer matching pods is better; ignored nodes get 0.
	var minScore int64 = math.MaxInt64
	var maxScore int64
	for j := range nodes {
		if ignored[j] {
			continue
		}
		minScore = min(minScore, out[j])
		maxScore = max(maxScore, out[j])
	}
	for j := range nodes {
		switch {
		case ignored[j]:
			out[j] = 0
		case maxScore == 0:
			out[j] = maxNodeScore
		default:
			out[j] = maxNodeScore * (maxScore + minScore - out[j]) / maxScore
		}
	}
	return true
}

// scoreInterPodAffinity is InterPodAffinity's score: the incoming pod's
// preferred (anti-)affinity terms against the existing pods, and the
// existing pods' required affinity (weight 1) and preferred
// (anti-)affinity terms against the incoming pod, summed per topology
// domain.
func (a *algorithm) scoreInterPodAffinity(c *cycle, nodes []*nodeInfo, out []int64) bool {
	pi := c.pi
	hasPreferred := len(pi.prefAffinity)+len(pi.prefAnti) > 0
	ownNS := func(string) labels.Set { return c.nsLabels }
	scores := map[topologyPair]int64{}
	process := func(term *affinityTerm, weight int64, p *corev1.Pod, nsLabels func(string) labels.Set, node *corev1.Node) {
		if v, ok := node.Labels[term.topologyKey]; ok && term.matches(p, nsLabels) {
			scores[topologyPair{term.topologyKey, v}] += weight
		}
	}
	any := false
	for _, ni := range a.cache.nodeList() {
		if !hasPreferred && ni.affinityPods == 0 {
			continue
		}
		node := ni.node
		if len(node.Labels) == 0 {
			continue
		}
		for _, p := range ni.pods {
			if !hasPreferred && !p.hasAffinity() {
				continue
			}
			any = true
			for i := range pi.prefAffinity {
				process(&pi.prefAffinity[i], int64(pi.prefAffinity[i].weight), p.pod, a.nsLabels, node)
			}
			for i := range pi.prefAnti {
				process(&pi.prefAnti[i], -int64(pi.prefAnti[i].weight), p.pod, a.nsLabels, node)
			}
			for i := range p.reqAffinity {
				process(&p.reqAffinity[i], 1, pi.pod, ownNS, node) // hardPodAffinityWeight
			}
			for i := range p.prefAffinity {
				process(&p.prefAffinity[i], int64(p.prefAffinity[i].weight), pi.pod, ownNS, node)
			}
			for i := range p.prefAnti {
				process(&p.prefAnti[i], -int64(p.prefAnti[i].weight), pi.pod, ownNS, node)
			}
		}
	}
	if !any && !hasPreferred {
		return false
	}
	if len(scores) == 0 {
		return true // all zero
	}
	var minCount int64 = math.MaxInt64
	var maxCount int64 = math.MinInt64
	for j, ni := range nodes {
		var s int64
		for k, v := range ni.node.Labels {
			s += scores[topologyPair{k, v}]
		}
		out[j] = s
		minCount = min(minCount, s)
		maxCount = max(maxCount, s)
	}
	diff := maxCount - minCount
	for j := range nodes {
		if diff > 0 {
			out[j] = int64(float64(maxNodeScore) * float64(out[j]-minCount) / float64(diff))
		} else {
			out[j] = 0
		}
	}
	return true
}
