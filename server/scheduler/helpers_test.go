package scheduler

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
)

// fakeObjects is objects held in memory.
type fakeObjects struct {
	nsLabels    map[string]labels.Set
	svcs        []*corev1.Service
	controllers map[types.UID]labels.Selector
	budgets     []*policyv1.PodDisruptionBudget
	claims      map[string]*corev1.PersistentVolumeClaim // by namespace/name
	pvs         []*corev1.PersistentVolume
	classes     map[string]*storagev1.StorageClass
}

func (f *fakeObjects) namespaceLabels(ns string) labels.Set { return f.nsLabels[ns] }
func (f *fakeObjects) services(ns string) []*corev1.Service {
	var out []*corev1.Service
	for _, s := range f.svcs {
		if s.Namespace == ns {
			out = append(out, s)
		}
	}
	return out
}
func (f *fakeObjects) controller(ns string, ref *metav1.OwnerReference) labels.Selector {
	return f.controllers[ref.UID]
}
func (f *fakeObjects) pdbs() []*policyv1.PodDisruptionBudget { return f.budgets }
func (f *fakeObjects) claim(ns, name string) (*corev1.PersistentVolumeClaim, error) {
	if c := f.claims[ns+"/"+name]; c != nil {
		return c, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("persistentvolumeclaims"), name)
}
func (f *fakeObjects) persistentVolume(name string) *corev1.PersistentVolume {
	for _, pv := range f.pvs {
		if pv.Name == name {
			return pv
		}
	}
	return nil
}
func (f *fakeObjects) persistentVolumes() []*corev1.PersistentVolume    { return f.pvs }
func (f *fakeObjects) storageClass(name string) *storagev1.StorageClass { return f.classes[name] }

// harness drives the scheduler's decisions without an API server: pods
// chosen a node are assumed there, as the scheduler does before binding.
type harness struct {
	t    testing.TB
	s    *Scheduler
	objs *fakeObjects
	uid  int
}

func newHarness(t testing.TB, nodes ...*corev1.Node) *harness {
	objs := &fakeObjects{nsLabels: map[string]labels.Set{"default": {"kubernetes.io/metadata.name": "default"}}, controllers: map[types.UID]labels.Selector{}}
	s := newScheduler(nil, objs, record.NewFakeRecorder(100), nil, testingclock.NewFakeClock(time.Now()))
	s.algo.rnd = rand.New(rand.NewSource(1))
	h := &harness{t: t, s: s, objs: objs}
	for _, n := range nodes {
		s.nodeChanged(nil, n)
	}
	return h
}

// place runs one attempt for pod: the node it went to, or "" and why not.
func (h *harness) place(pod *corev1.Pod) (string, decision) {
	h.t.Helper()
	if pod.UID == "" {
		h.uid++
		pod.UID = types.UID(fmt.Sprintf("uid-%d", h.uid))
	}
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	d, skip := h.s.decide(newPodInfo(pod))
	if skip {
		h.t.Fatalf("%s skipped", pod.Name)
	}
	return d.node, d
}

// mustPlace places pod and returns its node.
func (h *harness) mustPlace(pod *corev1.Pod) string {
	h.t.Helper()
	node, d := h.place(pod)
	if node == "" {
		h.t.Fatalf("%s fits nowhere: %s", pod.Name, d.msg)
	}
	return node
}

// bound adds a pod already bound to node.
func (h *harness) bound(pod *corev1.Pod, node string) {
	if pod.UID == "" {
		h.uid++
		pod.UID = types.UID(fmt.Sprintf("uid-%d", h.uid))
	}
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	pod.Spec.NodeName = node
	h.s.podAdded(pod)
}

func testNode(name, cpu string, lbls ...string) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")}},
	}
	for i := 0; i+1 < len(lbls); i += 2 {
		n.Labels[lbls[i]] = lbls[i+1]
	}
	return n
}

func testPod(name, cpu string, lbls ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{}, CreationTimestamp: metav1.Now()},
		Spec: corev1.PodSpec{SchedulerName: Name, Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}},
	}
	for i := 0; i+1 < len(lbls); i += 2 {
		p.Labels[lbls[i]] = lbls[i+1]
	}
	return p
}

func term(key, topology string, values ...string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{TopologyKey: topology, LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: key, Operator: metav1.LabelSelectorOpIn, Values: values}}}}
}

func antiAffinity(terms ...corev1.PodAffinityTerm) *corev1.Affinity {
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}}
}

func affinity(terms ...corev1.PodAffinityTerm) *corev1.Affinity {
	return &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}}
}

func spreadBy(key string, maxSkew int32, action corev1.UnsatisfiableConstraintAction, app string) corev1.TopologySpreadConstraint {
	return corev1.TopologySpreadConstraint{MaxSkew: maxSkew, TopologyKey: key, WhenUnsatisfiable: action,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}
}
