package apiserver_test

import (
	"context"
	"fmt"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// TestProtobufListMatchesDecoded lists kinds in protobuf (answered from the
// stored bytes where it can be) and in JSON (always decoded) and finds the
// same objects, list metadata and pages; kinds served in another version
// than stored (HPA autoscaling/v1, events.k8s.io) and selectors take the
// decoding path and answer the same.
func TestProtobufListMatchesDecoded(t *testing.T) {
	ctx := context.Background()
	cs := clients(t, start(t, memStore(t)))
	js, pb := cs["json"], cs["protobuf"]
	must(t, create(ctx, js.CoreV1().ServiceAccounts("default").Create, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}))
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("o-%d", i)
		labels := map[string]string{"n": fmt.Sprint(i % 2)}
		must(t, create(ctx, js.CoreV1().ConfigMaps("default").Create, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Data: map[string]string{"k": name}}))
		must(t, create(ctx, js.CoreV1().Pods("default").Create, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}))
		must(t, create(ctx, js.AppsV1().Deployments("default").Create, deployment(name)))
		must(t, create(ctx, js.CoreV1().Events("default").Create, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: name, Namespace: "default"}, Reason: "R", Message: "m", Type: "Normal"}))
		must(t, create(ctx, js.AutoscalingV2().HorizontalPodAutoscalers("default").Create, &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 3, MinReplicas: ptr.To[int32](1),
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name}}}))
	}
	lists := map[string]func(kubernetes.Interface, metav1.ListOptions) (runtime.Object, error){
		"configmaps": func(c kubernetes.Interface, o metav1.ListOptions) (runtime.Object, error) {
			return c.CoreV1().ConfigMaps("default").List(ctx, o)
		},
		"pods": func(c kubernetes.Interface, o metav1.ListOptions) (runtime.Object, error) {
			return c.CoreV1().Pods("").List(ctx, o)
		},
		"deployments": func(c kubernetes.Interface, o metav1.ListOptions) (runtime.Object, error) {
			return c.AppsV1().Deployments("default").List(ctx, o)
		},
		"namespaces": func(c kubernetes.Interface, o metav1.ListOptions) (runtime.Object, error) {
			return c.CoreV1().Namespaces().List(ctx, o)
		},
		"events": func(c kubernetes.Interface, o metav1.ListOptions) (runtime.Object, error) {
			return c.CoreV1().Events("default").List(ctx, o)
		},
		"events.k8s.io": func(c kubernetes.Interface, o metav1.ListOptions) (runtime.Object, error) {
			return c.EventsV1().Events("default").List(ctx, o)
		},
		"hpa v1": func(c kubernetes.Interface, o metav1.ListOptions) (runtime.Object, error) {
			return c.AutoscalingV1().HorizontalPodAutoscalers("default").List(ctx, o)
		},
		"hpa v2": func(c kubernetes.Interface, o metav1.ListOptions) (runtime.Object, error) {
			return c.AutoscalingV2().HorizontalPodAutoscalers("default").List(ctx, o)
		},
	}
	for name, list := range lists {
		for _, opts := range []metav1.ListOptions{{}, {LabelSelector: "n=1"}, {Limit: 2}} {
			var pages int
			for {
				fromPB, err := list(pb, opts)
				if err != nil {
					t.Fatalf("%s %+v: protobuf: %v", name, opts, err)
				}
				fromJSON, err := list(js, opts)
				if err != nil {
					t.Fatalf("%s %+v: json: %v", name, opts, err)
				}
				// Protobuf does not carry the items' kind, which JSON does.
				clearItemKinds(t, fromJSON)
				if !equality.Semantic.DeepEqual(fromPB, fromJSON) { // nil and empty lists alike
					t.Fatalf("%s %+v: protobuf list\n%#v\ndiffers from the JSON one\n%#v", name, opts, fromPB, fromJSON)
				}
				lm := fromPB.(metav1.ListInterface)
				if lm.GetResourceVersion() == "" {
					t.Errorf("%s: list without resourceVersion", name)
				}
				pages++
				if opts.Continue = lm.GetContinue(); opts.Continue == "" {
					break
				}
			}
			if opts.Limit == 2 && name != "namespaces" && pages != 3 {
				t.Errorf("%s: %d pages of 2, want 3", name, pages)
			}
		}
	}
}

func clearItemKinds(t *testing.T, list runtime.Object) {
	items, err := meta.ExtractList(list)
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range items {
		item.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	}
}

func create[T any](ctx context.Context, fn func(context.Context, T, metav1.CreateOptions) (T, error), obj T) error {
	_, err := fn(ctx, obj, metav1.CreateOptions{})
	return err
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
