package kubelet

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"

	"labctl/agent/images"
)

// Static pods (staticpods.go): pods from the manifest folder
// (<data-dir>/agent/pod-manifests), run by the kubelet alone, as the
// upstream kubelet's --pod-manifest-path does. Each file holds one Pod;
// the pod is named <name>-<node>, its UID is a hash of the file, the node
// and the pod, so that an edited file replaces the pod. Each static pod
// shows in the API as a mirror pod (annotation kubernetes.io/config.mirror,
// owned by the Node) that carries its status; deleting the mirror pod
// does not stop the static pod: the kubelet makes the mirror again.

// Annotations of static and mirror pods, upstream's.
const (
	annotationConfigSource = "kubernetes.io/config.source"
	annotationConfigHash   = "kubernetes.io/config.hash"
	annotationConfigSeen   = "kubernetes.io/config.seen"
)

func isMirrorPod(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[corev1.MirrorPodAnnotationKey]
	return ok
}

func isStaticPod(pod *corev1.Pod) bool {
	return pod.Annotations[annotationConfigSource] == "file"
}

// readStaticPods reads the manifest folder and updates the static pods:
// new files start pods, removed or changed ones stop theirs.
func (k *Kubelet) readStaticPods(ctx context.Context) {
	pods := map[types.UID]*corev1.Pod{}
	entries, err := os.ReadDir(k.cfg.StaticPodDir)
	if err != nil && !os.IsNotExist(err) {
		k.log.Warn("reading the static pod folder", "dir", k.cfg.StaticPodDir, "err", err)
		return
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(k.cfg.StaticPodDir, e.Name())
		pod, err := k.staticPod(path)
		if err != nil {
			k.log.Warn("skipping a static pod manifest", "file", path, "err", err)
			continue
		}
		pods[pod.UID] = pod
	}
	var changed []types.UID
	k.mu.Lock()
	for uid := range k.static {
		if pods[uid] == nil {
			changed = append(changed, uid)
		}
	}
	for uid, p := range pods {
		if old, ok := k.static[uid]; ok {
			p.Annotations[annotationConfigSeen] = old.Annotations[annotationConfigSeen]
		} else {
			changed = append(changed, uid)
		}
	}
	k.static = pods
	k.mu.Unlock()
	for _, uid := range changed {
		k.enqueue(uid)
	}
}

// staticPod reads one manifest and makes it a pod for this node.
func (k *Kubelet) staticPod(path string) (*corev1.Pod, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("a static pod manifest holds a Pod, not a %s", gvk.Kind)
	}
	if pod.Name == "" {
		return nil, fmt.Errorf("the pod has no name")
	}
	if pod.Namespace == "" {
		pod.Namespace = metav1.NamespaceDefault
	}
	pod.Name = pod.Name + "-" + strings.ToLower(k.cfg.NodeName)
	pod.Spec.NodeName = k.cfg.NodeName
	defaultStaticPod(pod)

	h := md5.New()
	fmt.Fprintf(h, "host:%s", k.cfg.NodeName)
	fmt.Fprintf(h, "file:%s", path)
	spec, _ := json.Marshal(pod)
	h.Write(spec)
	pod.UID = types.UID(hex.EncodeToString(h.Sum(nil)))
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[annotationConfigHash] = string(pod.UID)
	pod.Annotations[annotationConfigSource] = "file"
	pod.Annotations[annotationConfigSeen] = time.Now().UTC().Format(time.RFC3339Nano)
	pod.Status = corev1.PodStatus{QOSClass: podQOS(pod)}
	return pod, nil
}

// defaultStaticPod applies the defaults the API server would have: a
// static pod never passes through it.
func defaultStaticPod(pod *corev1.Pod) {
	s := &pod.Spec
	if s.RestartPolicy == "" {
		s.RestartPolicy = corev1.RestartPolicyAlways
	}
	if s.DNSPolicy == "" {
		s.DNSPolicy = corev1.DNSClusterFirst
	}
	if s.TerminationGracePeriodSeconds == nil {
		g := int64(30)
		s.TerminationGracePeriodSeconds = &g
	}
	if s.SchedulerName == "" {
		s.SchedulerName = corev1.DefaultSchedulerName
	}
	// Static pods tolerate every NoExecute taint, as upstream's.
	s.Tolerations = append(s.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute})
	for _, cs := range [][]corev1.Container{s.InitContainers, s.Containers} {
		for i := range cs {
			c := &cs[i]
			if c.ImagePullPolicy == "" {
				c.ImagePullPolicy = corev1.PullPolicy(images.DefaultPullPolicy(c.Image))
			}
			if c.TerminationMessagePath == "" {
				c.TerminationMessagePath = corev1.TerminationMessagePathDefault
			}
			if c.TerminationMessagePolicy == "" {
				c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
			}
			for j := range c.Ports {
				if c.Ports[j].Protocol == "" {
					c.Ports[j].Protocol = corev1.ProtocolTCP
				}
			}
		}
	}
}

// ensureMirrorPod makes the static pod's mirror pod exist and match it.
func (k *Kubelet) ensureMirrorPod(ctx context.Context, pod *corev1.Pod) {
	k.mu.Lock()
	mirror := k.mirrors[pod.Namespace+"/"+pod.Name]
	k.mu.Unlock()
	pods := k.cfg.Client.CoreV1().Pods(pod.Namespace)
	if mirror != nil {
		if mirror.Annotations[corev1.MirrorPodAnnotationKey] == string(pod.UID) && mirror.DeletionTimestamp == nil {
			return
		}
		// Stale (the manifest changed) or being deleted: replace it.
		err := pods.Delete(ctx, mirror.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64),
			Preconditions: &metav1.Preconditions{UID: &mirror.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			k.log.Warn("deleting a stale mirror pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			return
		}
		k.mu.Lock()
		delete(k.mirrors, pod.Namespace+"/"+pod.Name)
		k.mu.Unlock()
	}
	node, err := k.cfg.Client.CoreV1().Nodes().Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		k.log.Warn("cannot make a mirror pod: no Node yet", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return
	}
	m := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace,
			Labels:          pod.Labels,
			Annotations:     map[string]string{},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}},
		},
		Spec: *pod.Spec.DeepCopy(),
	}
	for key, v := range pod.Annotations {
		m.Annotations[key] = v
	}
	m.Annotations[corev1.MirrorPodAnnotationKey] = string(pod.UID)
	created, err := pods.Create(ctx, m, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// One from before the kubelet's restart: the informer brings it.
		return
	}
	if err != nil {
		k.log.Warn("cannot make a mirror pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return
	}
	k.mu.Lock()
	k.mirrors[pod.Namespace+"/"+pod.Name] = created
	k.mu.Unlock()
}

// staticPodNames lists the static pods, for tests and logs.
func (k *Kubelet) staticPodNames() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, p := range k.static {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	sort.Strings(out)
	return out
}
