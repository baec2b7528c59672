package storage

import (
	"context"
	"errors"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"labctl/datastore"
)

// predicate is a label and a field selector over one kind.
type predicate struct {
	labels labels.Selector
	fields fields.Selector
	attrs  AttrFunc
}

func newPredicate(l labels.Selector, f fields.Selector, attrs AttrFunc) predicate {
	return predicate{labels: l, fields: f, attrs: attrs}
}

func (p predicate) empty() bool {
	return (p.labels == nil || p.labels.Empty()) && (p.fields == nil || p.fields.Empty())
}

func (p predicate) matches(obj runtime.Object) (bool, error) {
	if p.empty() {
		return true, nil
	}
	l, f, err := p.attrs(obj)
	if err != nil {
		return false, err
	}
	if p.labels != nil && !p.labels.Matches(l) {
		return false, nil
	}
	return p.fields == nil || p.fields.Matches(f), nil
}

// WatchOptions select what a Watch delivers.
type WatchOptions struct {
	Namespace       string
	Labels          labels.Selector
	Fields          fields.Selector
	ResourceVersion string
	// InitialEvents sends an ADDED event for every matching object first,
	// as upstream does for a watch without a resourceVersion (or "0") and
	// for sendInitialEvents=true.
	InitialEvents bool
	// Bookmarks sends BOOKMARK events when the watch is idle.
	Bookmarks bool
	// EndBookmark sends, after the initial events, the BOOKMARK with the
	// k8s.io/initial-events-end annotation that WatchList clients wait for.
	EndBookmark bool
}

// Watch delivers changes to matching objects after opts.ResourceVersion.
// An object that stops matching the selectors is delivered as DELETED and
// one that starts matching as ADDED, as upstream does.
func (s *Store) Watch(ctx context.Context, opts WatchOptions) (watch.Interface, error) {
	rv, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	sel := newPredicate(opts.Labels, opts.Fields, s.cfg.Attrs)
	var initial []runtime.Object
	if opts.InitialEvents {
		list, err := s.List(ctx, ListOptions{Namespace: opts.Namespace, Labels: opts.Labels, Fields: opts.Fields, ResourceVersion: opts.ResourceVersion})
		if err != nil {
			return nil, err
		}
		if initial, err = meta.ExtractList(list); err != nil {
			return nil, err
		}
		lm, _ := meta.ListAccessor(list)
		rv, _ = strconv.ParseInt(lm.GetResourceVersion(), 10, 64)
	} else if rv == 0 {
		cur, _, err := s.cfg.Store.Revisions(ctx)
		if err != nil {
			return nil, s.translate(err, "")
		}
		rv = cur
	}
	ctx, cancel := context.WithCancel(ctx)
	ch, err := s.cfg.Store.Watch(ctx, s.listPrefix(opts.Namespace), rv)
	if err != nil {
		cancel()
		if errors.Is(err, datastore.ErrCompacted) {
			return nil, apierrors.NewResourceExpired("too old resource version: " + err.Error())
		}
		return nil, s.translate(err, "")
	}
	w := &watcher{cancel: cancel, out: make(chan watch.Event)}
	go w.run(ctx, s, sel, ch, initial, rv, opts)
	return w, nil
}

type watcher struct {
	cancel context.CancelFunc
	out    chan watch.Event
	once   sync.Once
}

func (w *watcher) Stop() {
	w.once.Do(func() { w.cancel() })
}

func (w *watcher) ResultChan() <-chan watch.Event { return w.out }

func (w *watcher) run(ctx context.Context, s *Store, sel predicate, ch <-chan datastore.WatchResponse, initial []runtime.Object, rv int64, opts WatchOptions) {
	defer close(w.out)
	defer w.cancel()
	send := func(ev watch.Event) bool {
		select {
		case w.out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for _, obj := range initial {
		if !send(watch.Event{Type: watch.Added, Object: obj}) {
			return
		}
	}
	if opts.EndBookmark {
		bm := s.bookmark(rv)
		m, _ := meta.Accessor(bm)
		m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
		if !send(watch.Event{Type: watch.Bookmark, Object: bm}) {
			return
		}
	}
	for resp := range ch {
		if resp.Err != nil {
			status := apierrors.NewResourceExpired("too old resource version: " + resp.Err.Error()).ErrStatus
			send(watch.Event{Type: watch.Error, Object: &status})
			return
		}
		if len(resp.Events) == 0 {
			if opts.Bookmarks && resp.Revision > 0 && !send(watch.Event{Type: watch.Bookmark, Object: s.bookmark(resp.Revision)}) {
				return
			}
			continue
		}
		for _, ev := range resp.Events {
			out, ok, err := s.translateEvent(ev, sel)
			if err != nil {
				status := apierrors.NewInternalError(err).ErrStatus
				send(watch.Event{Type: watch.Error, Object: &status})
				return
			}
			if ok && !send(out) {
				return
			}
		}
	}
}

// bookmark is an empty object of the kind carrying only rev.
func (s *Store) bookmark(rev int64) runtime.Object {
	obj := s.cfg.NewFunc()
	if m, err := meta.Accessor(obj); err == nil {
		m.SetResourceVersion(strconv.FormatInt(rev, 10))
	}
	return obj
}

// translateEvent turns a store event into the watch event this watcher
// should see, if any.
func (s *Store) translateEvent(ev *datastore.Event, sel predicate) (watch.Event, bool, error) {
	cur, err := s.decode(ev.KV.Value, ev.KV.ModRevision)
	if err != nil {
		return watch.Event{}, false, err
	}
	curOK, err := sel.matches(cur)
	if err != nil {
		return watch.Event{}, false, err
	}
	switch ev.Type {
	case datastore.EventCreate:
		return watch.Event{Type: watch.Added, Object: cur}, curOK, nil
	case datastore.EventDelete:
		return watch.Event{Type: watch.Deleted, Object: cur}, curOK, nil
	}
	prevOK := true
	if !sel.empty() && ev.Prev != nil {
		prev, err := s.decode(ev.Prev.Value, ev.KV.ModRevision)
		if err != nil {
			return watch.Event{}, false, err
		}
		if prevOK, err = sel.matches(prev); err != nil {
			return watch.Event{}, false, err
		}
		if !curOK && prevOK {
			return watch.Event{Type: watch.Deleted, Object: prev}, true, nil
		}
	}
	switch {
	case curOK && prevOK:
		return watch.Event{Type: watch.Modified, Object: cur}, true, nil
	case curOK:
		return watch.Event{Type: watch.Added, Object: cur}, true, nil
	}
	return watch.Event{}, false, nil
}
