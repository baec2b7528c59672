package scheduler

import (
	"math"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
)

// candidate is a node where evicting victims makes room for the pod.
type candidate struct {
	ni               *nodeInfo
	victims          []*podInfo // most important first
	numPDBViolations int
	// pods are the victims' pod objects, taken under the cache's lock
	// for the API calls made without it.
	pods []*corev1.Pod
}

// preemption is what DefaultPreemption's PostFilter decided.
type preemption struct {
	// chosen is the node to nominate and the pods to evict; nil when
	// preemption does not help.
	chosen *candidate
	// msg is the PostFilter's message ("preemption: ..."), added to the
	// FitError message; empty when a candidate was chosen.
	msg string
	// clearNomination tells to clear the pod's nominatedNodeName.
	clearNomination bool
}

// preempt looks, as upstream's DefaultPreemption, for a node where
// evicting lower-priority pods lets the pod fit: fewest PDB violations,
// then the lowest highest-priority victim, the lowest sum of priorities,
// the fewest victims, the latest start.
func (a *algorithm) preempt(c *cycle, statuses []nodeStatus, numNodes int) preemption {
	pod := c.pi.pod
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy == corev1.PreemptNever {
		return preemption{msg: "preemption: " + msgPreemptionPolicyNever}
	}
	if nnn := pod.Status.NominatedNodeName; nnn != "" {
		var nominatedStatus *status
		for _, ns := range statuses {
			if ns.node == nnn {
				nominatedStatus = ns.st
			}
		}
		// Preempt again only when the nominated node cannot take the
		// pod whatever is evicted, or nothing is terminating on it yet.
		if nominatedStatus == nil || nominatedStatus.code != codeUnresolvable {
			if ni := a.cache.nodes[nnn]; ni != nil {
				for _, p := range ni.pods {
					if p.priority < c.pi.priority && terminatingByPreemption(p.pod) {
						return preemption{msg: "preemption: " + msgTerminatingOnNominated}
					}
				}
			}
		}
	}
	var potential []*nodeInfo
	for _, ns := range statuses {
		if ns.st.code == codeUnschedulable {
			if ni := a.cache.nodes[ns.node]; ni != nil && ni.node != nil {
				potential = append(potential, ni)
			}
		}
	}
	if len(potential) == 0 {
		return preemption{msg: "preemption: " + fitMessage(numNodes, nil, reasonPreemptionNotHelpful, ""), clearNomination: true}
	}
	pdbs := a.objs.pdbs()
	var candidates []*candidate
	var dry []nodeStatus
	for _, ni := range potential {
		victims, violations, st := a.selectVictims(c, ni, pdbs)
		if st == nil && len(victims) > 0 {
			candidates = append(candidates, &candidate{ni: ni, victims: victims, numPDBViolations: violations})
			continue
		}
		if st == nil {
			st = &status{code: codeUnresolvable, reasons: []string{"expected at least one victim pod on node " + `"` + ni.name + `"`}}
		}
		dry = append(dry, nodeStatus{ni.name, st})
	}
	if len(candidates) == 0 {
		return preemption{msg: "preemption: " + fitMessage(numNodes, dry, reasonPreemptionNotHelpful, ""), clearNomination: true}
	}
	chosen := pickCandidate(candidates)
	for _, v := range chosen.victims {
		chosen.pods = append(chosen.pods, v.pod)
	}
	return preemption{chosen: chosen}
}

// selectVictims finds the fewest, least important pods on ni whose
// eviction lets the pod fit: it takes every lower-priority pod off, checks
// that the pod fits, then puts back as many as still let it fit, the PDB
// violating ones first, the most important first.
func (a *algorithm) selectVictims(c *cycle, ni *nodeInfo, pdbs []*policyv1.PodDisruptionBudget) ([]*podInfo, int, *status) {
	var potential []*podInfo
	for _, p := range ni.pods {
		if p.priority < c.pi.priority {
			potential = append(potential, p)
		}
	}
	if len(potential) == 0 {
		return nil, 0, stNoVictims
	}
	cc := *c
	if c.ipa != nil {
		cc.ipa = c.ipa.clone()
	}
	if c.pts != nil {
		cc.pts = c.pts.clone()
	}
	v := a.view(&cc, ni)
	v.requested = v.requested.clone()
	v.removed = map[string]bool{}
	remove := func(p *podInfo) {
		v.removed[p.key] = true
		v.requested.add(&p.req, -1)
		v.numPods--
		if cc.ipa != nil {
			cc.ipa.update(a, &cc, p, ni.node, -1)
		}
		if cc.pts != nil && p.pod.DeletionTimestamp == nil {
			cc.pts.update(&cc, p, ni.node, -1)
		}
	}
	add := func(p *podInfo) {
		delete(v.removed, p.key)
		v.requested.add(&p.req, 1)
		v.numPods++
		if cc.ipa != nil {
			cc.ipa.update(a, &cc, p, ni.node, 1)
		}
		if cc.pts != nil && p.pod.DeletionTimestamp == nil {
			cc.pts.update(&cc, p, ni.node, 1)
		}
	}
	for _, p := range potential {
		remove(p)
	}
	if st := a.filter(&cc, &v); st != nil {
		return nil, 0, st
	}
	now := time.Now()
	sort.SliceStable(potential, func(i, j int) bool { return moreImportant(potential[i].pod, potential[j].pod, now) })
	violating, nonViolating := splitByPDBViolation(potential, pdbs)
	var victims []*podInfo
	reprieve := func(p *podInfo) bool {
		add(p)
		if a.filter(&cc, &v) != nil {
			remove(p)
			victims = append(victims, p)
			return false
		}
		return true
	}
	violations := 0
	for _, p := range violating {
		if !reprieve(p) {
			violations++
		}
	}
	for _, p := range nonViolating {
		reprieve(p)
	}
	if len(violating) > 0 && len(nonViolating) > 0 {
		sort.SliceStable(victims, func(i, j int) bool { return moreImportant(victims[i].pod, victims[j].pod, now) })
	}
	return victims, violations, nil
}

// moreImportant orders pods by priority, then the earlier started
// (util.MoreImportantPod).
func moreImportant(p1, p2 *corev1.Pod, now time.Time) bool {
	a, b := corev1helpers.PodPriority(p1), corev1helpers.PodPriority(p2)
	if a != b {
		return a > b
	}
	return startTime(p1, now).Before(startTime(p2, now))
}

func startTime(p *corev1.Pod, now time.Time) time.Time {
	if p.Status.StartTime != nil {
		return p.Status.StartTime.Time
	}
	return now // not started: as if now, as upstream's GetPodStartTime
}

// splitByPDBViolation sorts victims into those whose eviction would
// break a PodDisruptionBudget and the others, keeping their order.
func splitByPDBViolation(pods []*podInfo, pdbs []*policyv1.PodDisruptionBudget) (violating, nonViolating []*podInfo) {
	allowed := make([]int32, len(pdbs))
	for i, pdb := range pdbs {
		allowed[i] = pdb.Status.DisruptionsAllowed
	}
	for _, p := range pods {
		violated := false
		if len(p.pod.Labels) != 0 {
			for i, pdb := range pdbs {
				if pdb.Namespace != p.pod.Namespace {
					continue
				}
				sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
				if err != nil || sel.Empty() || !sel.Matches(labels.Set(p.pod.Labels)) {
					continue
				}
				if _, done := pdb.Status.DisruptedPods[p.pod.Name]; done {
					continue // already counted by the API server
				}
				allowed[i]--
				if allowed[i] < 0 {
					violated = true
				}
			}
		}
		if violated {
			violating = append(violating, p)
		} else {
			nonViolating = append(nonViolating, p)
		}
	}
	return violating, nonViolating
}

// pickCandidate is upstream's pickOneNodeForPreemption.
func pickCandidate(cands []*candidate) *candidate {
	now := time.Now()
	scores := []func(*candidate) int64{
		func(c *candidate) int64 { return -int64(c.numPDBViolations) },
		func(c *candidate) int64 { return -int64(c.victims[0].priority) },
		func(c *candidate) int64 {
			var sum int64
			for _, v := range c.victims {
				sum += int64(v.priority) + int64(math.MaxInt32+1)
			}
			return -sum
		},
		func(c *candidate) int64 { return -int64(len(c.victims)) },
		func(c *candidate) int64 {
			// The earliest start among the highest-priority victims; later is better.
			earliest := startTime(c.victims[0].pod, now)
			top := c.victims[0].priority
			for _, v := range c.victims {
				if v.priority == top {
					if t := startTime(v.pod, now); t.Before(earliest) {
						earliest = t
					}
				} else if v.priority > top {
					top, earliest = v.priority, startTime(v.pod, now)
				}
			}
			return earliest.UnixNano()
		},
	}
	all := cands
	for _, f := range scores {
		var best []*candidate
		maxScore := int64(math.MinInt64)
		for _, c := range all {
			s := f(c)
			if s > maxScore {
				maxScore, best = s, best[:0]
			}
			if s == maxScore {
				best = append(best, c)
			}
		}
		if len(best) == 1 {
			return best[0]
		}
		all = best
	}
	return all[0]
}

func terminatingByPreemption(p *corev1.Pod) bool {
	if p.DeletionTimestamp == nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.DisruptionTarget {
			return c.Status == corev1.ConditionTrue && c.Reason == corev1.PodReasonPreemptionByScheduler
		}
	}
	return false
}
