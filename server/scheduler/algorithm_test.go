package scheduler

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestFitMessage(t *testing.T) {
	taint, cpu := untoleratedTaint(corev1.Taint{Key: "lab", Value: "only"}), stInsufficientCPU
	both := &status{codeUnschedulable, []string{reasonInsufficientCPU, reasonInsufficientMemory}, plNodeResourcesFit}
	for _, tc := range []struct {
		got, want string
	}{
		{fitMessage(3, []nodeStatus{{"a", taint}, {"b", cpu}, {"c", cpu}}, "", "preemption: "+fitMessage(3, nil, reasonPreemptionNotHelpful, "")),
			"0/3 nodes are available: 1 node(s) had untolerated taint {lab: only}, 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."},
		{fitMessage(2, []nodeStatus{{"a", both}, {"b", cpu}}, "", ""),
			"0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu."},
		{fitMessage(1, []nodeStatus{{"a", cpu}}, "", "preemption: "+msgPreemptionPolicyNever),
			"0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %q\nwant %q", tc.got, tc.want)
		}
	}
}

func TestFilterMessages(t *testing.T) {
	cordoned := testNode("cordoned", "4")
	cordoned.Spec.Unschedulable = true
	tainted := testNode("tainted", "4")
	tainted.Spec.Taints = []corev1.Taint{{Key: "lab", Value: "only", Effect: corev1.TaintEffectNoSchedule}}
	h := newHarness(t, cordoned, tainted, testNode("small", "1"), testNode("other", "4", "disk", "hdd"))
	p := testPod("p", "2")
	p.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": "small"}
	// Sorted as strings, as upstream sorts them. 2 CPUs on a 1-CPU node:
	// no eviction helps.
	want := "0/4 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {lab: only}, 1 node(s) were unschedulable. " +
		"preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling."
	if _, d := h.place(p); d.msg != want {
		t.Fatalf("got  %s\nwant %s", d.msg, want)
	}
	// 800m on the 1-CPU node half taken: evicting could help, had the
	// pod a higher priority than what runs there.
	h.bound(testPod("resident", "500m"), "small")
	p = testPod("p2", "800m")
	p.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": "small"}
	want = "0/4 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {lab: only}, 1 node(s) were unschedulable. " +
		"preemption: 0/4 nodes are available: 1 No preemption victims found for incoming pod, 3 Preemption is not helpful for scheduling."
	if _, d := h.place(p); d.msg != want {
		t.Fatalf("got  %s\nwant %s", d.msg, want)
	}
	// Tolerating the unschedulable taint tolerates a cordoned node.
	q := testPod("q", "100m")
	q.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": "cordoned"}
	q.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	if got := h.mustPlace(q); got != "cordoned" {
		t.Fatalf("q on %s", got)
	}
	// Too many pods, and several resources at once.
	tiny := testNode("tiny", "1")
	tiny.Status.Allocatable[corev1.ResourcePods] = resource.MustParse("1")
	h2 := newHarness(t, tiny)
	h2.bound(testPod("resident", "0"), "tiny")
	big := testPod("big", "2")
	big.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("16Gi")
	if _, d := h2.place(big); d.msg != "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 Too many pods. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling." {
		t.Fatalf("got %s", d.msg)
	}
	if _, d := newHarness(t).place(testPod("x", "1")); d.msg != msgNoNodes || d.rejectedBy != plAll {
		t.Fatalf("no nodes: %+v", d)
	}
}

func TestAntiAffinitySpreadsReplicas(t *testing.T) {
	h := newHarness(t, testNode("a", "4"), testNode("b", "4"), testNode("c", "4"))
	used := map[string]bool{}
	for i := range 3 {
		p := testPod(fmt.Sprintf("web-%d", i), "100m", "app", "web")
		p.Spec.Affinity = antiAffinity(term("app", corev1.LabelHostname, "web"))
		n := h.mustPlace(p)
		if used[n] {
			t.Fatalf("two web pods on %s", n)
		}
		used[n] = true
	}
	p := testPod("web-3", "100m", "app", "web")
	p.Spec.Affinity = antiAffinity(term("app", corev1.LabelHostname, "web"))
	node, d := h.place(p)
	want := "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
	if node != "" || d.msg != want {
		t.Fatalf("got %q %q", node, d.msg)
	}
	if d.rejectedBy != plInterPodAffinity {
		t.Fatalf("rejected by %b", d.rejectedBy)
	}
	// A pod of another app, whose own labels the web pods' anti-affinity
	// does not select, goes anywhere; a pod the existing web pods'
	// anti-affinity selects goes nowhere.
	h.mustPlace(testPod("db", "100m", "app", "db"))
	if node, d := h.place(testPod("stray-web", "100m", "app", "web")); node != "" ||
		d.msg != "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod." {
		t.Fatalf("got %q %q", node, d.msg)
	}
}

func TestRequiredAffinity(t *testing.T) {
	h := newHarness(t, testNode("a", "4", corev1.LabelTopologyZone, "z1"), testNode("b", "4", corev1.LabelTopologyZone, "z2"),
		testNode("c", "4", corev1.LabelTopologyZone, "z2"), testNode("nozone", "4"))
	// The first of a series with affinity to itself goes anywhere the
	// topology label exists; the rest join it.
	first := testPod("first", "100m", "app", "cache")
	first.Spec.Affinity = affinity(term("app", corev1.LabelTopologyZone, "cache"))
	zoneOf := map[string]string{"a": "z1", "b": "z2", "c": "z2"}
	z := zoneOf[h.mustPlace(first)]
	if z == "" {
		t.Fatalf("first went to a node without a zone")
	}
	for i := range 5 {
		p := testPod(fmt.Sprintf("more-%d", i), "100m", "app", "cache")
		p.Spec.Affinity = affinity(term("app", corev1.LabelTopologyZone, "cache"))
		if got := zoneOf[h.mustPlace(p)]; got != z {
			t.Fatalf("%s in %s, want %s", p.Name, got, z)
		}
	}
	// Affinity to pods that do not exist (and that the pod is not).
	p := testPod("lonely", "100m", "app", "x")
	p.Spec.Affinity = affinity(term("app", corev1.LabelTopologyZone, "nothing"))
	if _, d := h.place(p); d.msg != "0/4 nodes are available: 4 node(s) didn't match pod affinity rules. preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling." {
		t.Fatalf("got %s", d.msg)
	}
}

func TestAffinityNamespaces(t *testing.T) {
	h := newHarness(t, testNode("a", "4"), testNode("b", "4"))
	h.objs.nsLabels["blue"] = labels.Set{"team": "blue"}
	h.objs.nsLabels["red"] = labels.Set{"team": "red"}
	db := testPod("db", "100m", "app", "db")
	db.Namespace = "blue"
	h.bound(db, "b")
	// Same namespace by default: no match in default.
	p := testPod("p", "100m")
	p.Spec.Affinity = affinity(term("app", corev1.LabelHostname, "db"))
	if node, _ := h.place(p); node != "" {
		t.Fatalf("p placed on %s by a pod of another namespace", node)
	}
	// namespaceSelector picks blue.
	q := testPod("q", "100m")
	tm := term("app", corev1.LabelHostname, "db")
	tm.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "blue"}}
	q.Spec.Affinity = affinity(tm)
	if got := h.mustPlace(q); got != "b" {
		t.Fatalf("q on %s", got)
	}
	// namespaces lists blue.
	r := testPod("r", "100m")
	tm = term("app", corev1.LabelHostname, "db")
	tm.Namespaces = []string{"blue"}
	r.Spec.Affinity = affinity(tm)
	if got := h.mustPlace(r); got != "b" {
		t.Fatalf("r on %s", got)
	}
	// An existing pod's anti-affinity with a namespaceSelector reaches
	// pods of the namespaces it selects.
	guard := testPod("guard", "100m")
	guard.Namespace = "red"
	tm = term("app", corev1.LabelHostname, "web")
	tm.NamespaceSelector = &metav1.LabelSelector{} // all namespaces
	guard.Spec.Affinity = antiAffinity(tm)
	h.bound(guard, "a")
	for i := range 3 {
		if got := h.mustPlace(testPod(fmt.Sprintf("web-%d", i), "100m", "app", "web")); got != "b" {
			t.Fatalf("web pod on %s, next to the guard", got)
		}
	}
}

func TestTopologySpread(t *testing.T) {
	zone := corev1.LabelTopologyZone
	h := newHarness(t, testNode("a1", "8", zone, "a"), testNode("a2", "8", zone, "a"), testNode("b1", "8", zone, "b"), testNode("c1", "8", zone, "c"))
	count := map[string]int{}
	zoneOf := map[string]string{"a1": "a", "a2": "a", "b1": "b", "c1": "c"}
	for i := range 9 {
		p := testPod(fmt.Sprintf("p%d", i), "100m", "app", "spread")
		p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{spreadBy(zone, 1, corev1.DoNotSchedule, "spread")}
		count[zoneOf[h.mustPlace(p)]]++
		lo, hi := 1<<30, 0
		for _, z := range []string{"a", "b", "c"} {
			lo, hi = min(lo, count[z]), max(hi, count[z])
		}
		if hi-lo > 1 {
			t.Fatalf("after %d pods: %v", i+1, count)
		}
	}
	// A node without the topology label cannot take the pod.
	h2 := newHarness(t, testNode("nolabel", "8"))
	p := testPod("p", "100m", "app", "spread")
	p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{spreadBy(zone, 1, corev1.DoNotSchedule, "spread")}
	if _, d := h2.place(p); d.msg != "0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label). preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling." {
		t.Fatalf("got %s", d.msg)
	}
	// minDomains 3 over two zones: the global minimum counts as 0, so
	// each zone takes one pod only.
	h3 := newHarness(t, testNode("x", "8", zone, "x"), testNode("y", "8", zone, "y"))
	for i := range 3 {
		p := testPod(fmt.Sprintf("m%d", i), "100m", "app", "md")
		c := spreadBy(zone, 1, corev1.DoNotSchedule, "md")
		c.MinDomains = ptr.To[int32](3)
		p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{c}
		node, d := h3.place(p)
		if i < 2 && node == "" || i == 2 && node != "" {
			t.Fatalf("pod %d: %q %s", i, node, d.msg)
		}
	}
	// ScheduleAnyway: prefers the emptier zone, never refuses.
	h4 := newHarness(t, testNode("a1", "8", zone, "a"), testNode("b1", "8", zone, "b"))
	for i := range 3 {
		h4.bound(testPod(fmt.Sprintf("old%d", i), "100m", "app", "soft"), "a1")
	}
	p = testPod("soft", "100m", "app", "soft")
	p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{spreadBy(zone, 1, corev1.ScheduleAnyway, "soft")}
	if got := h4.mustPlace(p); got != "b1" {
		t.Fatalf("soft on %s", got)
	}
}

// Upstream's system default constraints spread the pods of a ReplicaSet
// even when the pods ask for nothing; pods of no Service or controller
// are not spread.
func TestDefaultSpreading(t *testing.T) {
	bigNode := func() *corev1.Node {
		n := testNode("big", "64")
		n.Status.Allocatable[corev1.ResourceMemory] = resource.MustParse("64Gi")
		return n
	}
	h := newHarness(t, bigNode(), testNode("small", "8"))
	rs := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "rs-uid", Controller: ptr.To(true)}
	h.objs.controllers["rs-uid"] = labels.SelectorFromSet(labels.Set{"app": "web"})
	perNode := map[string]int{}
	for i := range 10 {
		p := testPod(fmt.Sprintf("web-%d", i), "100m", "app", "web")
		p.OwnerReferences = []metav1.OwnerReference{rs}
		perNode[h.mustPlace(p)]++
	}
	if perNode["small"] < 3 {
		t.Fatalf("replicas per node %v: not spread", perNode)
	}
	h2 := newHarness(t, bigNode(), testNode("small", "8"))
	for i := range 10 {
		if got := h2.mustPlace(testPod(fmt.Sprintf("bare-%d", i), "100m", "app", "web")); got != "big" {
			t.Fatalf("bare pod on %s; least allocated wants big", got)
		}
	}
	// A Service's selector spreads too.
	h3 := newHarness(t, bigNode(), testNode("small", "8"))
	h3.objs.svcs = []*corev1.Service{{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}}}
	clear(perNode)
	for i := range 10 {
		perNode[h3.mustPlace(testPod(fmt.Sprintf("svc-%d", i), "100m", "app", "web"))]++
	}
	if perNode["small"] < 3 {
		t.Fatalf("service pods per node %v: not spread", perNode)
	}
}

func TestHostPorts(t *testing.T) {
	withPort := func(name, ip string, port int32, proto corev1.Protocol) *corev1.Pod {
		p := testPod(name, "100m")
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: port, HostIP: ip, Protocol: proto}}
		return p
	}
	h := newHarness(t, testNode("a", "4"))
	h.mustPlace(withPort("any", "", 80, ""))
	if node, d := h.place(withPort("same", "10.0.0.1", 80, corev1.ProtocolTCP)); node != "" ||
		d.msg != "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod." {
		t.Fatalf("got %q %s", node, d.msg)
	}
	h.mustPlace(withPort("udp", "", 80, corev1.ProtocolUDP))
	h.mustPlace(withPort("other", "", 81, corev1.ProtocolTCP))
	h2 := newHarness(t, testNode("a", "4"))
	h2.mustPlace(withPort("ip1", "10.0.0.1", 80, corev1.ProtocolTCP))
	h2.mustPlace(withPort("ip2", "10.0.0.2", 80, corev1.ProtocolTCP))
	if node, _ := h2.place(withPort("all", "0.0.0.0", 80, corev1.ProtocolTCP)); node != "" {
		t.Fatalf("0.0.0.0:80 placed next to 10.0.0.1:80")
	}
}

func TestPreferredScoring(t *testing.T) {
	zone := corev1.LabelTopologyZone
	prefer := testNode("prefer", "4", zone, "z1")
	prefer.Spec.Taints = []corev1.Taint{{Key: "soft", Effect: corev1.TaintEffectPreferNoSchedule}}
	h := newHarness(t, prefer, testNode("clean", "4", zone, "z2"), testNode("other", "4", zone, "z3"))
	// PreferNoSchedule taints are avoided: never on "prefer".
	for i := range 4 {
		if got := h.mustPlace(testPod(fmt.Sprintf("p%d", i), "100m")); got == "prefer" {
			t.Fatalf("p%d on the PreferNoSchedule node", i)
		}
	}
	// Tolerated, the taint costs nothing; preferred node affinity then
	// draws the pod there.
	p := testPod("likes-z1", "100m")
	p.Spec.Tolerations = []corev1.Toleration{{Key: "soft", Operator: corev1.TolerationOpExists}}
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
		{Weight: 10, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: zone, Operator: corev1.NodeSelectorOpIn, Values: []string{"z1"}}}}}}}}
	if got := h.mustPlace(p); got != "prefer" {
		t.Fatalf("likes-z1 on %s", got)
	}
	// Preferred pod affinity and anti-affinity.
	h.bound(testPod("cache", "100m", "app", "cache"), "other")
	near := testPod("near", "100m")
	near.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
		{Weight: 100, PodAffinityTerm: term("app", zone, "cache")}}}}
	if got := h.mustPlace(near); got != "other" {
		t.Fatalf("near on %s", got)
	}
	far := testPod("far", "100m")
	far.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
		{Weight: 100, PodAffinityTerm: term("app", zone, "cache")}}}}
	if got := h.mustPlace(far); got == "other" {
		t.Fatalf("far next to the cache")
	}
	// An existing pod's preferred affinity draws the pods it names.
	h2 := newHarness(t, testNode("a", "4"), testNode("b", "4"))
	lure := testPod("lure", "100m")
	lure.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
		{Weight: 100, PodAffinityTerm: term("app", corev1.LabelHostname, "moth")}}}}
	h2.bound(lure, "b")
	if got := h2.mustPlace(testPod("moth", "100m", "app", "moth")); got != "b" {
		t.Fatalf("moth on %s", got)
	}
}

func TestPreemption(t *testing.T) {
	prio := func(p *corev1.Pod, v int32) *corev1.Pod { p.Spec.Priority = &v; return p }
	h := newHarness(t, testNode("a", "1"), testNode("b", "1"))
	h.bound(prio(testPod("a-low1", "500m", "app", "x"), 1), "a")
	h.bound(prio(testPod("a-low2", "500m", "app", "x"), 1), "a")
	h.bound(prio(testPod("b-mid", "1", "app", "y"), 5), "b")
	urgent := prio(testPod("urgent", "1"), 10)
	_, d := h.place(urgent)
	if d.msg != "0/2 nodes are available: 2 Insufficient cpu." || d.preemption.chosen == nil {
		t.Fatalf("got %+v", d)
	}
	// The lowest highest-priority victim wins over fewer victims.
	if c := d.preemption.chosen; c.ni.name != "a" || len(c.victims) != 2 {
		t.Fatalf("chose %s with %d victims", c.ni.name, len(c.victims))
	}
	// With a PodDisruptionBudget that allows no disruption over node a's
	// pods, node b (no violation) wins.
	h.objs.budgets = []*policyv1.PodDisruptionBudget{{
		ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(2)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 0},
	}}
	_, d = h.place(prio(testPod("urgent2", "1"), 10))
	if c := d.preemption.chosen; c == nil || c.ni.name != "b" || c.numPDBViolations != 0 {
		t.Fatalf("chose %+v", c)
	}
	// Only as many victims as needed, least important first.
	h2 := newHarness(t, testNode("a", "2"))
	h2.bound(prio(testPod("p1", "500m"), 1), "a")
	h2.bound(prio(testPod("p2", "500m"), 2), "a")
	h2.bound(prio(testPod("p3", "500m"), 3), "a")
	h2.bound(prio(testPod("p4", "500m"), 100), "a")
	_, d = h2.place(prio(testPod("new", "700m"), 50))
	if c := d.preemption.chosen; c == nil || len(c.victims) != 2 || c.victims[0].pod.Name != "p2" || c.victims[1].pod.Name != "p1" {
		t.Fatalf("victims %+v", c)
	}
	// Never: no preemption.
	never := prio(testPod("never", "1"), 10)
	never.Spec.PreemptionPolicy = ptr.To(corev1.PreemptNever)
	if _, d = h.place(never); d.preemption.chosen != nil || d.msg != "0/2 nodes are available: 2 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never." {
		t.Fatalf("got %+v", d)
	}
	// Nothing of lower priority.
	if _, d = h.place(prio(testPod("equal", "1"), 1)); d.msg != "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod." {
		t.Fatalf("got %s", d.msg)
	}
	// Evicting does not help pods that fail for other reasons.
	sel := prio(testPod("selective", "100m"), 10)
	sel.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	if _, d = h.place(sel); d.msg != "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling." || !d.preemption.clearNomination {
		t.Fatalf("got %+v", d)
	}
}

// A pod nominated to a node keeps its room there from pods of lower
// priority; one of higher priority may take it.
func TestNominatedPodsKeepRoom(t *testing.T) {
	h := newHarness(t, testNode("a", "1"))
	nominated := testPod("nominated", "800m")
	nominated.Spec.Priority = ptr.To[int32](100)
	nominated.Status.NominatedNodeName = "a"
	h.s.podAdded(nominated)
	if node, d := h.place(testPod("small", "500m")); node != "" || d.msg != "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod." {
		t.Fatalf("small: %q %s", node, d.msg)
	}
	vip := testPod("vip", "500m")
	vip.Spec.Priority = ptr.To[int32](1000)
	h.mustPlace(vip)
	// The nominated pod itself fits where it was nominated (vip took
	// half, so not any more here; the nomination is tried first).
	h2 := newHarness(t, testNode("a", "1"), testNode("b", "1"))
	nominated.Status.NominatedNodeName = "b"
	h2.s.podAdded(nominated)
	if got := h2.mustPlace(nominated); got != "b" {
		t.Fatalf("nominated pod on %s", got)
	}
}
