package apiserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"

	"labctl/datastore"
	"labctl/server/storage"
)

// storedList encodes objs as the store keeps them, with revisions 10, 11, ...
func storedList(t *testing.T, objs ...runtime.Object) *storage.RawList {
	t.Helper()
	codec := storage.ProtobufCodec(clientgoscheme.Scheme, objs[0].GetObjectKind().GroupVersionKind().GroupVersion())
	l := &storage.RawList{ResourceVersion: "99", Continue: "next"}
	for i, obj := range objs {
		data, err := runtime.Encode(codec, obj)
		if err != nil {
			t.Fatal(err)
		}
		l.Items = append(l.Items, &datastore.KeyValue{Value: data, ModRevision: int64(10 + i)})
	}
	return l
}

// TestProtobufListFromStoredBytes decodes the spliced list with client-go's
// protobuf decoder and finds each item as stored, with its resourceVersion.
func TestProtobufListFromStoredBytes(t *testing.T) {
	pods := []runtime.Object{
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", UID: "u1", Labels: map[string]string{"app": "a"},
				Finalizers: []string{"f"}, OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "u0"}}},
			Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.5"},
		},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns"}},
	}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns", Generation: 3},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)}}
	for _, tc := range []struct {
		objs []runtime.Object
		list runtime.Object
	}{
		{pods, &corev1.PodList{}},
		{[]runtime.Object{deploy}, &appsv1.DeploymentList{}},
	} {
		for _, o := range tc.objs {
			gvks, _, err := clientgoscheme.Scheme.ObjectKinds(o)
			if err != nil {
				t.Fatal(err)
			}
			o.GetObjectKind().SetGroupVersionKind(gvks[0])
		}
		gvk := tc.objs[0].GetObjectKind().GroupVersionKind()
		body, ok := protobufList(storedList(t, tc.objs...), gvk)
		if !ok {
			t.Fatalf("%v: not spliced", gvk)
		}
		pb := protobuf.NewSerializer(clientgoscheme.Scheme, clientgoscheme.Scheme)
		got, _, err := pb.Decode(body, nil, tc.list)
		if err != nil {
			t.Fatalf("%v: %v", gvk, err)
		}
		items, err := metaItems(got)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != len(tc.objs) {
			t.Fatalf("%v: %d items, want %d", gvk, len(items), len(tc.objs))
		}
		for i, item := range items {
			want := tc.objs[i].DeepCopyObject()
			want.GetObjectKind().SetGroupVersionKind(got.GetObjectKind().GroupVersionKind()) // lists' items carry no kind
			setRV(t, want, strconv.Itoa(10+i))
			item.GetObjectKind().SetGroupVersionKind(want.GetObjectKind().GroupVersionKind())
			if !reflect.DeepEqual(item, want) {
				t.Errorf("%v item %d:\n got %#v\nwant %#v", gvk, i, item, want)
			}
		}
		lm := got.(metav1.ListInterface)
		if lm.GetResourceVersion() != "99" || lm.GetContinue() != "next" {
			t.Errorf("%v: list metadata %q %q", gvk, lm.GetResourceVersion(), lm.GetContinue())
		}
	}
}

// TestProtobufListRefusesOtherBytes: an item stored as another kind, as
// JSON, or damaged sends the list down the decoding path.
func TestProtobufListRefusesOtherBytes(t *testing.T) {
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "c"}}
	good := storedList(t, cm)
	if _, ok := protobufList(good, corev1.SchemeGroupVersion.WithKind("ConfigMap")); !ok {
		t.Fatal("a ConfigMap list was not spliced")
	}
	if _, ok := protobufList(good, corev1.SchemeGroupVersion.WithKind("Secret")); ok {
		t.Error("ConfigMaps spliced into a SecretList")
	}
	if _, ok := protobufList(good, appsv1.SchemeGroupVersion.WithKind("ConfigMap")); ok {
		t.Error("v1 ConfigMaps spliced as apps/v1")
	}
	stored := good.Items[0].Value
	for name, v := range map[string][]byte{
		"json":      []byte(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"}}`),
		"truncated": stored[:len(stored)-3],
		"magic":     stored[:4],
		"no type":   append([]byte("k8s\x00"), 0x12, 0x00),
		"bad tag":   append([]byte("k8s\x00"), 0xff, 0xff, 0xff),
	} {
		l := &storage.RawList{Items: []*datastore.KeyValue{{Value: v, ModRevision: 1}}}
		if _, ok := protobufList(l, corev1.SchemeGroupVersion.WithKind("ConfigMap")); ok {
			t.Errorf("%s: spliced", name)
		}
	}
}

func metaItems(list runtime.Object) ([]runtime.Object, error) {
	return meta.ExtractList(list)
}

func setRV(t *testing.T, obj runtime.Object, rv string) {
	m, err := meta.Accessor(obj)
	if err != nil {
		t.Fatal(err)
	}
	m.SetResourceVersion(rv)
}

// TestProtobufListAnsweredFromStore checks that the server takes the
// spliced path for a protobuf list, and the decoding path for JSON: only
// the spliced answer ends with the last item's lone resourceVersion field.
func TestProtobufListAnsweredFromStore(t *testing.T) {
	s := newServer(t)
	req := httptest.NewRequest(http.MethodPost, "/api/v1/namespaces/default/configmaps",
		strings.NewReader(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"v"}}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var created corev1.ConfigMap
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	suffix := appendVersionField(nil, created.ResourceVersion)
	for accept, spliced := range map[string]bool{"application/vnd.kubernetes.protobuf": true, "application/json": false} {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/default/configmaps", nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: list: %d %s", accept, rec.Code, rec.Body)
		}
		if got := bytes.HasSuffix(rec.Body.Bytes(), suffix); got != spliced {
			t.Errorf("%s: answered from the stored bytes: %v, want %v", accept, got, spliced)
		}
	}
}
