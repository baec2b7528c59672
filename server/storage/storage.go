// Package storage keeps Kubernetes objects in the datastore: one Store per
// resource turns objects into bytes under upstream's keys
// (/registry/<resource>/<namespace>/<name>), revisions into
// resourceVersions, and store events into watch events filtered by label
// and field selectors. It knows the object's metadata but nothing of a
// kind's rules: defaulting, validation and the request's semantics are the
// API server's (server/apiserver), which calls in here to persist.
//
// Errors come back as Kubernetes API errors (k8s.io/apimachinery's
// api/errors): this is the one place that translates datastore errors.
package storage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"labctl/datastore"
)

// AttrFunc returns the labels and the field-selector fields of an object.
type AttrFunc func(obj runtime.Object) (labels.Set, fields.Set, error)

// Config describes one resource's storage.
type Config struct {
	// Store is the datastore; required.
	Store datastore.Interface
	// Resource names the resource: its group and plural give the key prefix.
	Resource schema.GroupResource
	// Namespaced resources are keyed by namespace and name, others by name.
	Namespaced bool
	// Codec encodes objects for storage and decodes them back; required.
	Codec runtime.Codec
	// NewFunc returns an empty object of the kind; required.
	NewFunc func() runtime.Object
	// NewListFunc returns an empty list of the kind; required.
	NewListFunc func() runtime.Object
	// Attrs gives labels and fields for selectors; nil means labels plus
	// metadata.name and metadata.namespace.
	Attrs AttrFunc
}

// Store persists one resource.
type Store struct {
	cfg    Config
	prefix string
}

// New returns the store for cfg.
func New(cfg Config) *Store {
	if cfg.Attrs == nil {
		cfg.Attrs = DefaultAttrs
	}
	return &Store{cfg: cfg, prefix: KeyPrefix(cfg.Resource)}
}

// KeyPrefix is where a resource's objects live: /registry/<resource>/ for
// the core group and the built-in groups as upstream keeps them, and
// /registry/<group>/<resource>/ for every other group (custom resources).
func KeyPrefix(gr schema.GroupResource) string {
	if gr.Group == "" || builtinGroup(gr.Group) {
		return "/registry/" + gr.Resource + "/"
	}
	return "/registry/" + gr.Group + "/" + gr.Resource + "/"
}

func builtinGroup(g string) bool {
	return !strings.Contains(g, ".") || strings.HasSuffix(g, ".k8s.io")
}

// DefaultAttrs gives an object's labels and its metadata.name and
// metadata.namespace fields.
func DefaultAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, err
	}
	f := fields.Set{"metadata.name": m.GetName()}
	if m.GetNamespace() != "" {
		f["metadata.namespace"] = m.GetNamespace()
	}
	return m.GetLabels(), f, nil
}

// Key is the datastore key of the object namespace/name.
func (s *Store) Key(namespace, name string) string {
	if s.cfg.Namespaced {
		return s.prefix + namespace + "/" + name
	}
	return s.prefix + name
}

// listPrefix is the prefix of every object in namespace ("" for all).
func (s *Store) listPrefix(namespace string) string {
	if s.cfg.Namespaced && namespace != "" {
		return s.prefix + namespace + "/"
	}
	return s.prefix
}

// Get reads one object. resourceVersion follows upstream: "" and "0" read
// the latest; a number reads the latest if the store has reached it.
func (s *Store) Get(ctx context.Context, namespace, name, resourceVersion string) (runtime.Object, error) {
	rv, err := parseRV(resourceVersion)
	if err != nil {
		return nil, err
	}
	kv, at, err := s.cfg.Store.Get(ctx, s.Key(namespace, name), 0)
	if err != nil {
		return nil, s.translate(err, name)
	}
	if rv > at {
		return nil, tooLargeRV(rv, at)
	}
	return s.decode(kv.Value, kv.ModRevision)
}

// ListOptions select and page a List.
type ListOptions struct {
	Namespace       string
	Labels          labels.Selector // nil: everything
	Fields          fields.Selector // nil: everything
	Limit           int64
	Continue        string
	ResourceVersion string
	// Match is the resourceVersionMatch parameter: "", "Exact" or "NotOlderThan".
	Match metav1.ResourceVersionMatch
}

// continueToken is what the continue parameter carries, base64 JSON in
// the shape upstream uses: the revision of the first page and the key to
// start after, relative to the resource prefix.
type continueToken struct {
	APIVersion      string `json:"v"`
	ResourceVersion int64  `json:"rv"`
	StartKey        string `json:"start"`
}

func encodeContinue(rv int64, lastKeyRel string) string {
	b, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", ResourceVersion: rv, StartKey: lastKeyRel + "\x00"})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	var t continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return t, fmt.Errorf("continue key is not valid: %w", err)
	}
	if err := json.Unmarshal(b, &t); err != nil || t.APIVersion != "meta.k8s.io/v1" || t.ResourceVersion <= 0 || !strings.HasSuffix(t.StartKey, "\x00") {
		return t, errors.New("continue key is not valid")
	}
	if strings.Contains(t.StartKey, "..") || strings.HasPrefix(t.StartKey, "/") {
		return t, errors.New("continue key is not valid: bad start key")
	}
	return t, nil
}

// List reads the objects that match opts, in key order.
func (s *Store) List(ctx context.Context, opts ListOptions) (runtime.Object, error) {
	list := s.cfg.NewListFunc()
	sel := newPredicate(opts.Labels, opts.Fields, s.cfg.Attrs)
	var items []runtime.Object
	pg, err := s.page(ctx, opts, !sel.empty(), func(kv *datastore.KeyValue) (bool, error) {
		obj, err := s.decode(kv.Value, kv.ModRevision)
		if err != nil {
			return false, err
		}
		ok, err := sel.matches(obj)
		if ok {
			items = append(items, obj)
		}
		return ok, err
	})
	if err != nil {
		return nil, err
	}
	if err := meta.SetList(list, items); err != nil {
		return nil, err
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return nil, err
	}
	lm.SetResourceVersion(pg.ResourceVersion)
	lm.SetContinue(pg.Continue)
	return list, nil
}

// RawList is a list read as the stored bytes of its objects, for a
// response written without decoding them (the API server's protobuf
// lists). Each item's stored bytes carry no resourceVersion: it is the
// item's ModRevision.
type RawList struct {
	Items []*datastore.KeyValue
	// ResourceVersion and Continue are the list's metadata.
	ResourceVersion string
	Continue        string
}

// ListRaw reads the objects that opts names, as List does, without
// decoding them; opts can have no label or field selector, which would
// need the objects decoded.
func (s *Store) ListRaw(ctx context.Context, opts ListOptions) (*RawList, error) {
	if !newPredicate(opts.Labels, opts.Fields, s.cfg.Attrs).empty() {
		return nil, errors.New("storage: a raw list cannot apply selectors")
	}
	var items []*datastore.KeyValue
	pg, err := s.page(ctx, opts, false, func(kv *datastore.KeyValue) (bool, error) {
		items = append(items, kv)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return &RawList{Items: items, ResourceVersion: pg.ResourceVersion, Continue: pg.Continue}, nil
}

// listPage is what a list's metadata says of the page read.
type listPage struct {
	ResourceVersion string
	Continue        string
}

// page reads the keys that opts names at one revision, in key order, and
// hands each to keep, which tells whether the list takes it, until the
// list has opts.Limit items or the keys run out. filtering says that keep
// drops items (selectors), so that each read asks for more keys.
func (s *Store) page(ctx context.Context, opts ListOptions, filtering bool, keep func(kv *datastore.KeyValue) (bool, error)) (listPage, error) {
	prefix := s.listPrefix(opts.Namespace)
	rv, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return listPage{}, err
	}
	var readAt int64
	after := ""
	switch {
	case opts.Continue != "":
		tok, err := decodeContinue(opts.Continue)
		if err != nil {
			return listPage{}, apierrors.NewBadRequest(err.Error())
		}
		if opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
			return listPage{}, apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
		}
		readAt = tok.ResourceVersion
		// The token's start key is the last key plus a NUL: continue
		// after the last key itself.
		after = s.prefix + strings.TrimSuffix(tok.StartKey, "\x00")
	case opts.Match == metav1.ResourceVersionMatchExact:
		if rv == 0 {
			return listPage{}, apierrors.NewBadRequest("resourceVersionMatch=Exact requires a non-zero resourceVersion")
		}
		readAt = rv
	}
	var taken int64
	var lastKey string
	more := false
	pageLimit := opts.Limit
	if pageLimit > 0 && filtering {
		// Selectors drop items after reading: read more per round.
		pageLimit = max(pageLimit, 100)
	}
	for {
		res, err := s.cfg.Store.List(ctx, prefix, datastore.ListOptions{Revision: readAt, Limit: pageLimit, Continue: after})
		if err != nil {
			if errors.Is(err, datastore.ErrCompacted) && opts.Continue != "" {
				return listPage{}, apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
			}
			return listPage{}, s.translate(err, "")
		}
		readAt = res.Revision
		if rv > readAt {
			return listPage{}, tooLargeRV(rv, readAt)
		}
		for _, kv := range res.KVs {
			ok, err := keep(kv)
			if err != nil {
				return listPage{}, err
			}
			lastKey = kv.Key
			if !ok {
				continue
			}
			taken++
			if opts.Limit > 0 && taken == opts.Limit {
				break
			}
		}
		after = lastKey
		if opts.Limit > 0 && taken == opts.Limit {
			// More only if keys remain after the last one used.
			more = lastKey != res.KVs[len(res.KVs)-1].Key || res.More
			break
		}
		if !res.More {
			break
		}
	}
	pg := listPage{ResourceVersion: strconv.FormatInt(readAt, 10)}
	if more {
		pg.Continue = encodeContinue(readAt, strings.TrimPrefix(lastKey, s.prefix))
	}
	return pg, nil
}

// Create stores a new object, whose metadata the caller has filled. It
// returns the object as stored, with its resourceVersion.
func (s *Store) Create(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	m.SetResourceVersion("")
	data, err := runtime.Encode(s.cfg.Codec, obj)
	if err != nil {
		return nil, err
	}
	rev, err := s.cfg.Store.Create(ctx, s.Key(m.GetNamespace(), m.GetName()), data, 0)
	if err != nil {
		return nil, s.translate(err, m.GetName())
	}
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	return obj, nil
}

// UpdateFunc computes the new object from the current one (a fresh copy
// the function may change). Returning an error stops the update.
type UpdateFunc func(current runtime.Object) (runtime.Object, error)

// Update reads the object, lets fn compute its new state and writes it if
// nobody wrote in between, retrying from a fresh read on a conflict. When
// the new object carries a resourceVersion, it must still be the stored
// one (optimistic concurrency, 409 Conflict otherwise). A new object equal
// to the current one is not written.
func (s *Store) Update(ctx context.Context, namespace, name string, fn UpdateFunc) (runtime.Object, error) {
	key := s.Key(namespace, name)
	kv, _, err := s.cfg.Store.Get(ctx, key, 0)
	if err != nil {
		return nil, s.translate(err, name)
	}
	for attempt := 0; ; attempt++ {
		cur, err := s.decode(kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		next, err := fn(cur.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		m, err := meta.Accessor(next)
		if err != nil {
			return nil, err
		}
		if want := m.GetResourceVersion(); want != "" && want != strconv.FormatInt(kv.ModRevision, 10) {
			return nil, s.conflict(name)
		}
		m.SetResourceVersion("")
		data, err := runtime.Encode(s.cfg.Codec, next)
		if err != nil {
			return nil, err
		}
		if string(data) == string(kv.Value) {
			m.SetResourceVersion(strconv.FormatInt(kv.ModRevision, 10))
			return next, nil
		}
		rev, current, err := s.cfg.Store.Update(ctx, key, data, kv.ModRevision, 0)
		switch {
		case err == nil:
			m.SetResourceVersion(strconv.FormatInt(rev, 10))
			return next, nil
		case errors.Is(err, datastore.ErrConflict) && current != nil && attempt < 100:
			kv = current
			continue
		default:
			return nil, s.translate(err, name)
		}
	}
}

// Delete removes the object if its resourceVersion is still rv (when rv is
// not empty) and returns it as it was, with the resourceVersion of the
// deletion.
func (s *Store) Delete(ctx context.Context, namespace, name, rv string) (runtime.Object, error) {
	want, err := parseRV(rv)
	if err != nil {
		return nil, err
	}
	delRev, prev, err := s.cfg.Store.Delete(ctx, s.Key(namespace, name), want)
	if err != nil {
		return nil, s.translate(err, name)
	}
	return s.decode(prev.Value, delRev)
}

// decode turns stored bytes into an object with resourceVersion rev.
func (s *Store) decode(data []byte, rev int64) (runtime.Object, error) {
	obj, _, err := s.cfg.Codec.Decode(data, nil, s.cfg.NewFunc())
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("stored %s cannot be decoded: %w", s.cfg.Resource, err))
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	return obj, nil
}

func (s *Store) conflict(name string) error {
	return apierrors.NewConflict(s.cfg.Resource, name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
}

// translate turns a datastore error into the Kubernetes API error.
func (s *Store) translate(err error, name string) error {
	switch {
	case errors.Is(err, datastore.ErrNotFound):
		return apierrors.NewNotFound(s.cfg.Resource, name)
	case errors.Is(err, datastore.ErrKeyExists):
		return apierrors.NewAlreadyExists(s.cfg.Resource, name)
	case errors.Is(err, datastore.ErrConflict):
		return s.conflict(name)
	case errors.Is(err, datastore.ErrCompacted):
		return apierrors.NewResourceExpired("resourceVersion is too old: " + err.Error())
	case errors.Is(err, datastore.ErrFutureRevision):
		return apierrors.NewTimeoutError("Too large resource version", 1)
	case errors.Is(err, datastore.ErrValueTooLarge):
		return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("%s %q is too large to store: %v", s.cfg.Resource, name, err))
	case errors.Is(err, datastore.ErrInvalidKey):
		return apierrors.NewBadRequest(err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apierrors.NewTimeoutError(err.Error(), 1)
	}
	return apierrors.NewInternalError(err)
}

func parseRV(rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q: must be a non-negative integer", rv))
	}
	return n, nil
}

func tooLargeRV(asked, have int64) error {
	err := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", asked, have), 1)
	err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}}
	return err
}
