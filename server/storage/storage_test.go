package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"

	"labctl/datastore"
	"labctl/server/storage"
)

func newStore(t *testing.T) *storage.Store {
	ds := datastore.NewMemory(datastore.Config{WatchProgressInterval: 50 * time.Millisecond})
	t.Cleanup(func() { ds.Close() })
	return storage.New(storage.Config{
		Store:       ds,
		Resource:    corev1.Resource("configmaps"),
		Namespaced:  true,
		Codec:       storage.ProtobufCodec(scheme.Scheme, corev1.SchemeGroupVersion),
		NewFunc:     func() runtime.Object { return &corev1.ConfigMap{} },
		NewListFunc: func() runtime.Object { return &corev1.ConfigMapList{} },
	})
}

func cm(ns, name string, lbl map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbl}, Data: map[string]string{"k": name}}
}

func TestCRUD(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if got := s.Key("default", "a"); got != "/registry/configmaps/default/a" {
		t.Fatalf("key %q", got)
	}
	created, err := s.Create(ctx, cm("default", "a", nil))
	if err != nil {
		t.Fatal(err)
	}
	rv := created.(*corev1.ConfigMap).ResourceVersion
	if rv != "1" {
		t.Fatalf("resourceVersion %q", rv)
	}
	if _, err := s.Create(ctx, cm("default", "a", nil)); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create: %v", err)
	}
	got, err := s.Get(ctx, "default", "a", "")
	if err != nil || got.(*corev1.ConfigMap).Data["k"] != "a" || got.(*corev1.ConfigMap).ResourceVersion != "1" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := s.Get(ctx, "default", "b", ""); !apierrors.IsNotFound(err) {
		t.Fatalf("get missing: %v", err)
	}
	if _, err := s.Get(ctx, "default", "a", "99"); !apierrors.IsTimeout(err) {
		t.Fatalf("get at a future resourceVersion: %v", err)
	}
	// A stale resourceVersion is a conflict.
	_, err = s.Update(ctx, "default", "a", func(cur runtime.Object) (runtime.Object, error) {
		c := cur.(*corev1.ConfigMap)
		c.ResourceVersion = "7"
		return c, nil
	})
	if !apierrors.IsConflict(err) {
		t.Fatalf("stale update: %v", err)
	}
	up, err := s.Update(ctx, "default", "a", func(cur runtime.Object) (runtime.Object, error) {
		c := cur.(*corev1.ConfigMap)
		c.Data["k"] = "changed"
		return c, nil
	})
	if err != nil || up.(*corev1.ConfigMap).ResourceVersion != "2" {
		t.Fatalf("update: %v", err)
	}
	// No change, no write.
	same, err := s.Update(ctx, "default", "a", func(cur runtime.Object) (runtime.Object, error) { return cur, nil })
	if err != nil || same.(*corev1.ConfigMap).ResourceVersion != "2" {
		t.Fatalf("no-op update: %v %v", same, err)
	}
	if _, err := s.Delete(ctx, "default", "a", "1"); !apierrors.IsConflict(err) {
		t.Fatalf("delete with a stale precondition: %v", err)
	}
	del, err := s.Delete(ctx, "default", "a", "")
	if err != nil || del.(*corev1.ConfigMap).ResourceVersion != "3" || del.(*corev1.ConfigMap).Data["k"] != "changed" {
		t.Fatalf("delete: %+v %v", del, err)
	}
}

func TestListSelectorsAndPages(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for i := 0; i < 25; i++ {
		tier := "web"
		if i%2 == 1 {
			tier = "db"
		}
		ns := "a"
		if i >= 20 {
			ns = "b"
		}
		if _, err := s.Create(ctx, cm(ns, fmt.Sprintf("cm-%02d", i), map[string]string{"tier": tier})); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.List(ctx, storage.ListOptions{})
	if err != nil || len(all.(*corev1.ConfigMapList).Items) != 25 || all.(*corev1.ConfigMapList).ResourceVersion != "25" {
		t.Fatalf("list all: %v", err)
	}
	inA, _ := s.List(ctx, storage.ListOptions{Namespace: "a"})
	if n := len(inA.(*corev1.ConfigMapList).Items); n != 20 {
		t.Fatalf("namespace a: %d items", n)
	}
	db := labels.SelectorFromSet(labels.Set{"tier": "db"})
	var names []string
	opts := storage.ListOptions{Namespace: "a", Labels: db, Limit: 3}
	for pages := 0; ; pages++ {
		l, err := s.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		list := l.(*corev1.ConfigMapList)
		if len(list.Items) > 3 || pages > 10 {
			t.Fatalf("page of %d", len(list.Items))
		}
		for _, it := range list.Items {
			names = append(names, it.Name)
		}
		if list.Continue == "" {
			break
		}
		// Writes between pages do not show: the pages read at the first one's revision.
		s.Create(ctx, cm("a", fmt.Sprintf("late-%d", pages), map[string]string{"tier": "db"}))
		opts.Continue = list.Continue
	}
	if fmt.Sprint(names) != "[cm-01 cm-03 cm-05 cm-07 cm-09 cm-11 cm-13 cm-15 cm-17 cm-19]" {
		t.Fatalf("paged selector list: %v", names)
	}
	byName, _ := s.List(ctx, storage.ListOptions{Fields: fields.OneTermEqualSelector("metadata.name", "cm-22")})
	if items := byName.(*corev1.ConfigMapList).Items; len(items) != 1 || items[0].Namespace != "b" {
		t.Fatalf("field selector: %v", items)
	}
	if _, err := s.List(ctx, storage.ListOptions{Continue: "garbage"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("bad continue: %v", err)
	}
	old, err := s.List(ctx, storage.ListOptions{ResourceVersion: "5", Match: metav1.ResourceVersionMatchExact})
	if err != nil || len(old.(*corev1.ConfigMapList).Items) != 5 {
		t.Fatalf("exact list at 5: %v", err)
	}
}

func next(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}
	return watch.Event{}
}

func TestWatchSelectorTransitions(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	s.Create(ctx, cm("default", "pre", map[string]string{"app": "x"}))
	w, err := s.Watch(ctx, storage.WatchOptions{Namespace: "default", Labels: labels.SelectorFromSet(labels.Set{"app": "x"}), InitialEvents: true, EndBookmark: true, Bookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if ev := next(t, w); ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Name != "pre" {
		t.Fatalf("initial event %v", ev.Type)
	}
	if ev := next(t, w); ev.Type != watch.Bookmark || ev.Object.(*corev1.ConfigMap).Annotations[metav1.InitialEventsAnnotationKey] != "true" {
		t.Fatalf("end bookmark: %v", ev.Type)
	}
	relabel := func(v string) {
		if _, err := s.Update(ctx, "default", "pre", func(cur runtime.Object) (runtime.Object, error) {
			cur.(*corev1.ConfigMap).Labels["app"] = v
			return cur, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	relabel("y") // leaves the selector: DELETED
	if ev := next(t, w); ev.Type != watch.Deleted {
		t.Fatalf("leaving the selector: %v", ev.Type)
	}
	relabel("x") // comes back: ADDED
	if ev := next(t, w); ev.Type != watch.Added {
		t.Fatalf("entering the selector: %v", ev.Type)
	}
	s.Create(ctx, cm("other", "elsewhere", map[string]string{"app": "x"}))
	// Only a bookmark follows: the create was in another namespace.
	if ev := next(t, w); ev.Type != watch.Bookmark || ev.Object.(*corev1.ConfigMap).ResourceVersion != "4" {
		t.Fatalf("expected a bookmark at 4, got %v %v", ev.Type, ev.Object)
	}
	s.Delete(ctx, "default", "pre", "")
	if ev := next(t, w); ev.Type != watch.Deleted || ev.Object.(*corev1.ConfigMap).ResourceVersion != "5" {
		t.Fatalf("delete: %v", ev.Type)
	}
}
