package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func node(name string, cpu string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Spec:       corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("110"),
		}},
	}
}

func pod(name, cpu string, selector map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeSelector: selector, Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}},
	}
}

func TestScheduler(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	runControllers(t, cfg, "server-a")

	// No nodes: FailedScheduling as upstream words it.
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod("early", "100m", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "FailedScheduling with no nodes", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "early", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message == "no nodes available to schedule pods" {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", p.Status.Conditions)
	})

	for _, n := range []*corev1.Node{
		node("small", "500m"),
		node("big", "4"),
		node("tainted", "8", corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}),
	} {
		if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	onNode := func(name, want string) {
		t.Helper()
		eventually(t, name+" on "+want, func() error {
			p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err == nil && p.Spec.NodeName != want {
				return fmt.Errorf("on %q", p.Spec.NodeName)
			}
			return err
		})
	}
	onNode("early", "big") // tried again when nodes came: the least allocated that fits
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod("pinned", "100m", map[string]string{"kubernetes.io/hostname": "small"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	onNode("pinned", "small")
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod("huge", "6", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "FailedScheduling with reasons", func() error {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=huge,reason=FailedScheduling"})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Message == "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling." {
				return nil
			}
		}
		return fmt.Errorf("events %v", evs.Items)
	})
	eventually(t, "a Scheduled event", func() error {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=pinned,reason=Scheduled"})
		if err == nil && (len(evs.Items) == 0 || evs.Items[0].Message != "Successfully assigned default/pinned to small") {
			return fmt.Errorf("events %v", evs.Items)
		}
		return err
	})
}

// schedCreate creates pods in default, failing the test on an error.
func schedCreate(t *testing.T, cs kubernetes.Interface, pods ...*corev1.Pod) {
	t.Helper()
	for _, p := range pods {
		if _, err := cs.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// schedNode waits for a pod to be bound and returns its node.
func schedNode(t *testing.T, cs kubernetes.Interface, name string) string {
	t.Helper()
	var node string
	eventually(t, name+" bound", func() error {
		p, err := cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && p.Spec.NodeName == "" {
			return fmt.Errorf("not bound; conditions %+v", p.Status.Conditions)
		}
		if err == nil {
			node = p.Spec.NodeName
		}
		return err
	})
	return node
}

// schedPending waits for a pod's PodScheduled=False condition to say msg,
// and for a FailedScheduling event with it, and checks the pod is unbound.
func schedPending(t *testing.T, cs kubernetes.Interface, name, msg string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	var got *corev1.Pod
	eventually(t, name+" unschedulable", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Spec.NodeName != "" {
			t.Fatalf("%s bound to %s", name, p.Spec.NodeName)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && c.Message == msg {
				got = p
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", p.Status.Conditions)
	})
	eventually(t, name+" FailedScheduling event", func() error {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name + ",reason=FailedScheduling"})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Message == msg && e.Type == corev1.EventTypeWarning && e.Source.Component == "default-scheduler" {
				return nil
			}
		}
		return fmt.Errorf("events %+v", evs.Items)
	})
	return got
}

// schedZoned is a node with a zone label.
func schedZoned(name, cpu, zone string, taints ...corev1.Taint) *corev1.Node {
	n := node(name, cpu, taints...)
	n.Labels[corev1.LabelTopologyZone] = zone
	return n
}

func schedCreateNodes(t *testing.T, cs kubernetes.Interface, nodes ...*corev1.Node) {
	t.Helper()
	for _, n := range nodes {
		if _, err := cs.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// schedLabelled returns pod with labels added.
func schedLabelled(p *corev1.Pod, kv ...string) *corev1.Pod {
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Labels[kv[i]] = kv[i+1]
	}
	return p
}

func schedTerm(key, topology string, values ...string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{TopologyKey: topology, LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: key, Operator: metav1.LabelSelectorOpIn, Values: values}}}}
}

// Replicas with required anti-affinity by hostname go one to a node; the
// one too many stays Pending and says why as upstream; a pod with
// required affinity joins the pod it names.
func TestSchedulerInterPodAffinity(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	runControllers(t, cfg, "server-a")
	schedCreateNodes(t, cs, node("a", "4"), node("b", "4"), node("c", "4"))
	for i := range 4 {
		p := schedLabelled(pod(fmt.Sprintf("web-%d", i), "100m", nil), "app", "web")
		p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{schedTerm("app", corev1.LabelHostname, "web")}}}
		schedCreate(t, cs, p)
	}
	onNodes := map[string]string{}
	var pending string
	eventually(t, "three web pods on three nodes", func() error {
		pods, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		clear(onNodes)
		pending = ""
		for _, p := range pods.Items {
			if p.Spec.NodeName == "" {
				pending = p.Name
				continue
			}
			if other, ok := onNodes[p.Spec.NodeName]; ok {
				t.Fatalf("%s and %s both on %s", p.Name, other, p.Spec.NodeName)
			}
			onNodes[p.Spec.NodeName] = p.Name
		}
		if len(onNodes) != 3 || pending == "" {
			return fmt.Errorf("placed %v, pending %q", onNodes, pending)
		}
		return nil
	})
	schedPending(t, cs, pending, "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. "+
		"preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.")

	// Required affinity: next to the db pod, wherever that is.
	schedCreate(t, cs, schedLabelled(pod("db", "100m", map[string]string{corev1.LabelHostname: "b"}), "app", "db"))
	if got := schedNode(t, cs, "db"); got != "b" {
		t.Fatalf("db on %s", got)
	}
	cache := pod("cache", "100m", nil)
	cache.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{schedTerm("app", corev1.LabelHostname, "db")}}}
	schedCreate(t, cs, cache)
	if got := schedNode(t, cs, "cache"); got != "b" {
		t.Fatalf("cache on %s, want b next to db", got)
	}
	// Affinity to pods that do not exist: it waits.
	lonely := pod("lonely", "100m", nil)
	lonely.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{schedTerm("app", corev1.LabelHostname, "queue")}}}
	schedCreate(t, cs, lonely)
	schedPending(t, cs, "lonely", "0/3 nodes are available: 3 node(s) didn't match pod affinity rules. "+
		"preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
	// The pod it wants arrives: it follows (moved back by the bound pod).
	schedCreate(t, cs, schedLabelled(pod("queue", "100m", map[string]string{corev1.LabelHostname: "c"}), "app", "queue"))
	if got := schedNode(t, cs, "lonely"); got != "c" {
		t.Fatalf("lonely on %s, want c", got)
	}
}

// Topology spread over zones: maxSkew 1 spreads evenly; a tainted node's
// zone still counts as a domain unless nodeTaintsPolicy is Honor.
func TestSchedulerTopologySpread(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	runControllers(t, cfg, "server-a")
	taint := corev1.Taint{Key: "lab", Value: "only", Effect: corev1.TaintEffectNoSchedule}
	schedCreateNodes(t, cs, schedZoned("n1", "8", "z1"), schedZoned("n2", "8", "z1"), schedZoned("n3", "8", "z2"), schedZoned("n4", "8", "z3"), schedZoned("n5", "8", "z4", taint))
	honor := corev1.NodeInclusionPolicyHonor
	spread := func(name, app string, policy *corev1.NodeInclusionPolicy) *corev1.Pod {
		p := schedLabelled(pod(name, "100m", nil), "app", app)
		p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone,
			WhenUnsatisfiable: corev1.DoNotSchedule, NodeTaintsPolicy: policy,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}}
		return p
	}
	for i := range 6 {
		schedCreate(t, cs, spread(fmt.Sprintf("even-%d", i), "even", &honor))
	}
	zones := map[string]string{"n1": "z1", "n2": "z1", "n3": "z2", "n4": "z3"}
	perZone := map[string]int{}
	for i := range 6 {
		perZone[zones[schedNode(t, cs, fmt.Sprintf("even-%d", i))]]++
	}
	if perZone["z1"] != 2 || perZone["z2"] != 2 || perZone["z3"] != 2 {
		t.Fatalf("per zone %v, want 2 each", perZone)
	}
	// Taints ignored (the default): z4 counts, with no pod, so each
	// other zone takes one.
	for i := range 4 {
		schedCreate(t, cs, spread(fmt.Sprintf("odd-%d", i), "odd", nil))
	}
	placed := map[string]bool{}
	var pending string
	eventually(t, "three odd pods placed", func() error {
		pods, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=odd"})
		if err != nil {
			return err
		}
		clear(placed)
		for _, p := range pods.Items {
			if p.Spec.NodeName == "" {
				pending = p.Name
			} else {
				placed[zones[p.Spec.NodeName]] = true
			}
		}
		if len(placed) != 3 {
			return fmt.Errorf("zones %v", placed)
		}
		return nil
	})
	schedPending(t, cs, pending, "0/5 nodes are available: 1 node(s) had untolerated taint {lab: only}, 4 node(s) didn't match pod topology spread constraints. "+
		"preemption: 0/5 nodes are available: 1 Preemption is not helpful for scheduling, 4 No preemption victims found for incoming pod.")
}

// Host ports: two pods asking for the same one never share a node.
func TestSchedulerHostPorts(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	runControllers(t, cfg, "server-a")
	schedCreateNodes(t, cs, node("a", "4"), node("b", "4"))
	withPort := func(name string, port int32, proto corev1.Protocol) *corev1.Pod {
		p := pod(name, "100m", nil)
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: port, Protocol: proto}}
		return p
	}
	schedCreate(t, cs, withPort("p1", 8080, corev1.ProtocolTCP), withPort("p2", 8080, corev1.ProtocolTCP))
	if a, b := schedNode(t, cs, "p1"), schedNode(t, cs, "p2"); a == b {
		t.Fatalf("p1 and p2 both on %s", a)
	}
	schedCreate(t, cs, withPort("p3", 8080, corev1.ProtocolTCP))
	schedPending(t, cs, "p3", "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports. "+
		"preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.")
	// Another protocol is another port.
	schedCreate(t, cs, withPort("p4", 8080, corev1.ProtocolUDP))
	schedNode(t, cs, "p4")
	// The port freed, the pending pod goes there.
	if err := cs.CoreV1().Pods("default").Delete(context.Background(), "p1", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	schedNode(t, cs, "p3")
}

// Preferred node affinity and preferred pod affinity win the scoring.
func TestSchedulerPreferredAffinity(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	runControllers(t, cfg, "server-a")
	schedCreateNodes(t, cs, schedZoned("a", "4", "z1"), schedZoned("b", "4", "z2"), schedZoned("c", "4", "z3"))
	p := pod("likes-z2", "100m", nil)
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{
		Weight: 50, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: []string{"z2"}}}}}}}}
	schedCreate(t, cs, p)
	if got := schedNode(t, cs, "likes-z2"); got != "b" {
		t.Fatalf("likes-z2 on %s, want b", got)
	}
	schedCreate(t, cs, schedLabelled(pod("cache", "100m", map[string]string{corev1.LabelHostname: "c"}), "app", "cache"))
	schedNode(t, cs, "cache")
	near := pod("near-cache", "100m", nil)
	near.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
		{Weight: 100, PodAffinityTerm: schedTerm("app", corev1.LabelHostname, "cache")}}}}
	schedCreate(t, cs, near)
	if got := schedNode(t, cs, "near-cache"); got != "c" {
		t.Fatalf("near-cache on %s, want c", got)
	}
	far := pod("far-from-cache", "100m", nil)
	far.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
		{Weight: 100, PodAffinityTerm: schedTerm("app", corev1.LabelTopologyZone, "cache")}}}}
	schedCreate(t, cs, far)
	if got := schedNode(t, cs, "far-from-cache"); got == "c" {
		t.Fatalf("far-from-cache on c, next to the cache")
	}
}

// Preemption: a higher-priority pod that fits nowhere evicts a
// lower-priority one and is nominated to its node; one whose
// preemptionPolicy is Never does not.
func TestSchedulerPreemption(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	runControllers(t, cfg, "server-a")
	if _, err := cs.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{
		ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	schedCreateNodes(t, cs, node("a", "1"))
	schedCreate(t, cs, pod("low", "800m", nil))
	schedNode(t, cs, "low")
	high := func(name string) *corev1.Pod {
		p := pod(name, "800m", nil)
		p.Spec.PriorityClassName, p.Spec.Priority = "high", ptr.To[int32](1000)
		return p
	}
	polite := high("polite")
	polite.Spec.PreemptionPolicy = ptr.To(corev1.PreemptNever)
	schedCreate(t, cs, polite)
	schedPending(t, cs, "polite", "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.")
	if err := cs.CoreV1().Pods("default").Delete(ctx, "polite", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	schedCreate(t, cs, high("urgent"))
	// No kubelet: the victim stays terminating, and the preemptor waits,
	// nominated to its node.
	urgent := schedPending(t, cs, "urgent", "0/1 nodes are available: 1 Insufficient cpu.")
	eventually(t, "urgent nominated to a", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "urgent", metav1.GetOptions{})
		if err == nil && p.Status.NominatedNodeName != "a" {
			return fmt.Errorf("nominatedNodeName %q", p.Status.NominatedNodeName)
		}
		return err
	})
	low, err := cs.CoreV1().Pods("default").Get(ctx, "low", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if low.DeletionTimestamp == nil {
		t.Fatalf("low not deleted")
	}
	found := false
	for _, c := range low.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == corev1.PodReasonPreemptionByScheduler &&
			c.Message == "default-scheduler: preempting to accommodate a higher priority pod" {
			found = true
		}
	}
	if !found {
		t.Fatalf("low's conditions %+v", low.Status.Conditions)
	}
	eventually(t, "the Preempted event", func() error {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=low,reason=Preempted"})
		if err == nil && (len(evs.Items) != 1 || evs.Items[0].Message != fmt.Sprintf("Preempted by pod %s on node a", urgent.UID)) {
			return fmt.Errorf("events %+v", evs.Items)
		}
		return err
	})
	// While the victim terminates, no one else is preempted for it, and a
	// pod of lower priority may not take the room nominated.
	schedCreate(t, cs, pod("small", "100m", nil))
	schedPending(t, cs, "small", "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.")
	// The kubelet would finish the deletion; the preemptor then binds.
	if err := cs.CoreV1().Pods("default").Delete(ctx, "low", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	if got := schedNode(t, cs, "urgent"); got != "a" {
		t.Fatalf("urgent on %s", got)
	}
}

// A pod that fits nowhere is tried again when a node that suits it comes.
func TestSchedulerRetriesWhenNodeAdded(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	runControllers(t, cfg, "server-a")
	schedCreateNodes(t, cs, node("hdd", "4"))
	schedCreate(t, cs, pod("fast", "100m", map[string]string{"disk": "ssd"}))
	schedPending(t, cs, "fast", "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "+
		"preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")
	ssd := node("ssd", "4")
	ssd.Labels["disk"] = "ssd"
	start := time.Now()
	schedCreateNodes(t, cs, ssd)
	if got := schedNode(t, cs, "fast"); got != "ssd" {
		t.Fatalf("fast on %s", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v to notice the new node", d)
	}
}
