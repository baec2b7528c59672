package scheduler

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func withClaim(pod *corev1.Pod, claim string) *corev1.Pod {
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "v-" + claim,
		VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
	return pod
}

func testClaim(name, class string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("claim-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To(class),
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
}

func testClass(name, provisioner string, mode storagev1.VolumeBindingMode) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner, VolumeBindingMode: &mode}
}

// localVolume is a volume reachable only from node.
func localVolume(name, class, size, node string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{StorageClassName: class,
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/mnt/" + name}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
}

func volumeHarness(t *testing.T) *harness {
	h := newHarness(t, testNode("a", "4"), testNode("b", "4"))
	h.objs.claims = map[string]*corev1.PersistentVolumeClaim{}
	h.objs.classes = map[string]*storagev1.StorageClass{
		"local-path": testClass("local-path", "rancher.io/local-path", storagev1.VolumeBindingWaitForFirstConsumer),
		"manual":     testClass("manual", "kubernetes.io/no-provisioner", storagev1.VolumeBindingWaitForFirstConsumer),
		"now":        testClass("now", "rancher.io/local-path", storagev1.VolumeBindingImmediate),
	}
	return h
}

func (h *harness) addClaim(c *corev1.PersistentVolumeClaim) {
	h.objs.claims[c.Namespace+"/"+c.Name] = c
}

func TestVolumePreFilter(t *testing.T) {
	h := volumeHarness(t)
	for _, tc := range []struct {
		claim *corev1.PersistentVolumeClaim
		want  string
	}{
		{nil, `0/2 nodes are available: persistentvolumeclaim "data" not found. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.`},
		{testClaim("data", "now"), `0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.`},
		{testClaim("data", ""), `pod has unbound immediate PersistentVolumeClaims`},
		{testClaim("data", "manual-no-class-object"), `pod has unbound immediate PersistentVolumeClaims`},
	} {
		delete(h.objs.claims, "default/data")
		if tc.claim != nil {
			h.addClaim(tc.claim)
		}
		node, d := h.place(withClaim(testPod("p", "100m"), "data"))
		if node != "" || !strings.Contains(d.msg, tc.want) || d.rejectedBy != plVolumeBinding {
			t.Errorf("placed on %q, message %q, rejected by %b; want %q", node, d.msg, d.rejectedBy, tc.want)
		}
	}
	going := testClaim("data", "local-path")
	going.DeletionTimestamp = &metav1.Time{}
	h.addClaim(going)
	if _, d := h.place(withClaim(testPod("p", "100m"), "data")); !strings.Contains(d.msg, `persistentvolumeclaim "data" is being deleted`) {
		t.Errorf("message %q", d.msg)
	}

	// An ephemeral volume's claim must be the pod's own.
	eph := testPod("e", "100m")
	eph.UID = "pod-e"
	eph.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}}}
	other := testClaim("e-scratch", "local-path")
	h.addClaim(other)
	if node, d := h.place(eph); node != "" || !strings.Contains(d.msg, "PVC default/e-scratch was not created for pod default/e (pod is not owner)") {
		t.Errorf("placed on %q: %s", node, d.msg)
	}
	other.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "e", UID: "pod-e", Controller: ptr.To(true)}}
	if node, d := h.place(eph); node == "" || len(d.volumes) != 1 {
		t.Errorf("the pod's own ephemeral claim: placed on %q with plan %v: %s", node, d.volumes, d.msg)
	}
}

func TestVolumeBoundNodeAffinity(t *testing.T) {
	h := volumeHarness(t)
	pv := localVolume("pv-b", "manual", "1Gi", "b")
	pv.Status.Phase = corev1.VolumeBound
	h.objs.pvs = []*corev1.PersistentVolume{pv}
	c := testClaim("data", "manual")
	c.Spec.VolumeName, c.Status.Phase = "pv-b", corev1.ClaimBound
	h.addClaim(c)
	for i := range 4 {
		p := withClaim(testPod("p", "100m"), "data")
		p.Name = p.Name + string(rune('0'+i))
		if node, d := h.place(p); node != "b" || len(d.volumes) != 0 {
			t.Fatalf("placed on %q with plan %v; want b and nothing to bind", node, d.volumes)
		}
	}
	// Pinned to a node the volume is not on: the volume's conflict.
	p := withClaim(testPod("q", "100m"), "data")
	p.Spec.NodeSelector = map[string]string{corev1.LabelHostname: "a"}
	if node, d := h.place(p); node != "" || !strings.Contains(d.msg, "1 node(s) had volume node affinity conflict") {
		t.Errorf("placed on %q: %s", node, d.msg)
	}
	// A volume without node affinity: any node.
	anywhere := localVolume("pv-any", "manual", "1Gi", "")
	anywhere.Spec.NodeAffinity = nil
	h.objs.pvs = append(h.objs.pvs, anywhere)
	any := testClaim("any", "manual")
	any.Spec.VolumeName, any.Status.Phase = "pv-any", corev1.ClaimBound
	h.addClaim(any)
	if node, d := h.place(withClaim(testPod("s", "100m"), "any")); node == "" {
		t.Errorf("a volume without node affinity: %s", d.msg)
	}
	c.Spec.VolumeName = "gone"
	if node, d := h.place(withClaim(testPod("r", "100m"), "data")); node != "" || !strings.Contains(d.msg, reasonVolumeNotExist) {
		t.Errorf("placed on %q: %s", node, d.msg)
	}
}

func TestVolumeWaitForFirstConsumer(t *testing.T) {
	h := volumeHarness(t)
	// Provisioned: any node, the claim to hand to the provisioner.
	h.addClaim(testClaim("dyn", "local-path"))
	node, d := h.place(withClaim(testPod("p1", "100m"), "dyn"))
	if node == "" || len(d.volumes) != 1 {
		t.Fatalf("placed on %q with plan %v: %s", node, d.volumes, d.msg)
	}
	for c, pv := range d.volumes {
		if c.Name != "dyn" || pv != nil {
			t.Errorf("plan %s -> %v; want dyn to be provisioned", c.Name, pv)
		}
	}
	// Selected already: only that node.
	sel := testClaim("sel", "local-path")
	sel.Annotations = map[string]string{"volume.kubernetes.io/selected-node": "b"}
	h.addClaim(sel)
	for i := range 3 {
		p := withClaim(testPod("p2", "100m"), "sel")
		p.Name += string(rune('0' + i))
		if node, _ := h.place(p); node != "b" {
			t.Fatalf("placed on %q; want b, the selected node", node)
		}
	}
	// Static volumes only: the node that has one, the smallest that fits.
	h.objs.pvs = []*corev1.PersistentVolume{localVolume("small", "manual", "512Mi", "a"),
		localVolume("big", "manual", "10Gi", "b"), localVolume("fit", "manual", "2Gi", "b")}
	h.addClaim(testClaim("static", "manual"))
	node, d = h.place(withClaim(testPod("p3", "100m"), "static"))
	if node != "b" {
		t.Fatalf("placed on %q: %s", node, d.msg)
	}
	for _, pv := range d.volumes {
		if pv == nil || pv.Name != "fit" {
			t.Errorf("plan %v; want the volume fit", pv)
		}
	}
	// Two claims of one pod never take the same volume.
	c2 := testClaim("static2", "manual")
	h.addClaim(c2)
	h.objs.pvs = h.objs.pvs[1:2] // big only
	if node, d := h.place(withClaim(withClaim(testPod("p4", "100m"), "static"), "static2")); node != "" ||
		!strings.Contains(d.msg, reasonVolumeBindConflict) {
		t.Errorf("placed on %q: %s", node, d.msg)
	}
}
