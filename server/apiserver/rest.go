package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"

	"labctl/server/customresource"
	"labctl/server/storage"
)

// decodeQuery reads query parameters into an options type: the
// meta.k8s.io ones (TableOptions), or those every group has (ListOptions...).
func (c *call) decodeQuery(q url.Values, into runtime.Object) error {
	gv := schema.GroupVersion{Version: "v1"}
	if _, ok := into.(*metav1.TableOptions); ok {
		gv = metav1.SchemeGroupVersion
	}
	if err := c.s.params.DecodeParameters(q, gv, into); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	return nil
}

func (c *call) get(name string) error {
	var opts metav1.GetOptions
	if err := c.decodeQuery(c.r.URL.Query(), &opts); err != nil {
		return err
	}
	obj, err := c.res.store.Get(c.ctx, c.info.Namespace, name, opts.ResourceVersion)
	if err != nil {
		return err
	}
	if c.info.Subresource == "scale" {
		return c.respondScale(obj)
	}
	c.respond(http.StatusOK, obj)
	return nil
}

func (c *call) listOptions() (metav1.ListOptions, storage.ListOptions, error) {
	var opts metav1.ListOptions
	if err := c.decodeQuery(c.r.URL.Query(), &opts); err != nil {
		return opts, storage.ListOptions{}, err
	}
	l, f, err := c.selectors(opts.LabelSelector, opts.FieldSelector)
	if err != nil {
		return opts, storage.ListOptions{}, err
	}
	return opts, storage.ListOptions{
		Namespace:       c.info.Namespace,
		Labels:          l,
		Fields:          f,
		Limit:           opts.Limit,
		Continue:        opts.Continue,
		ResourceVersion: opts.ResourceVersion,
		Match:           opts.ResourceVersionMatch,
	}, nil
}

func (c *call) list() error {
	_, sopts, err := c.listOptions()
	if err != nil {
		return err
	}
	if c.rawListable(sopts) {
		if done, err := c.writeProtobufList(sopts); done || err != nil {
			return err
		}
	}
	list, err := c.res.store.List(c.ctx, sopts)
	if err != nil {
		return err
	}
	c.respond(http.StatusOK, list)
	return nil
}

// defaultWatchTimeout is how long a watch runs when the client names no
// timeout; upstream picks between 30 and 60 minutes.
func defaultWatchTimeout() time.Duration {
	return 30*time.Minute + rand.N(30*time.Minute)
}

func (c *call) watch(name string) error {
	opts, sopts, err := c.listOptions()
	if err != nil {
		return err
	}
	if name != "" && c.nameFromPath() != "" {
		// /watch/.../<name>: the old form of a field selector on the name.
		if _, sopts.Fields, err = c.selectors("", joinSelector(opts.FieldSelector, "metadata.name="+name)); err != nil {
			return err
		}
	}
	wopts := storage.WatchOptions{
		Namespace:       sopts.Namespace,
		Labels:          sopts.Labels,
		Fields:          sopts.Fields,
		ResourceVersion: opts.ResourceVersion,
		Bookmarks:       opts.AllowWatchBookmarks,
		InitialEvents:   opts.ResourceVersion == "" || opts.ResourceVersion == "0",
	}
	if opts.SendInitialEvents != nil {
		if *opts.SendInitialEvents && (opts.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan || !opts.AllowWatchBookmarks) {
			return apierrors.NewInvalid(metav1.SchemeGroupVersion.WithKind("ListOptions").GroupKind(), "", fieldErrors("sendInitialEvents", "sendInitialEvents requires resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true"))
		}
		wopts.InitialEvents = *opts.SendInitialEvents
		wopts.EndBookmark = *opts.SendInitialEvents
	} else if opts.ResourceVersionMatch != "" {
		return apierrors.NewBadRequest("resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")
	}
	timeout := defaultWatchTimeout()
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	w, err := c.res.store.Watch(ctx, wopts)
	if err != nil {
		return err
	}
	defer w.Stop()
	return c.stream(ctx, w)
}

func joinSelector(a, b string) string {
	if a == "" {
		return b
	}
	return a + "," + b
}

// stream writes watch events as upstream does: one metav1.WatchEvent per
// frame (a line of JSON, or a length-prefixed protobuf message), flushed
// after each.
func (c *call) stream(ctx context.Context, w watch.Interface) error {
	info := c.acc.info
	if info.StreamSerializer == nil {
		return apierrors.NewBadRequest(fmt.Sprintf("%s cannot stream a watch", info.MediaType))
	}
	objEnc := c.s.codecs.EncoderForVersion(info.Serializer, c.res.GVK.GroupVersion())
	metaEnc := c.s.codecs.EncoderForVersion(info.Serializer, metav1.SchemeGroupVersion)
	statusEnc := c.s.codecs.EncoderForVersion(info.Serializer, metav1.Unversioned)
	flusher, _ := c.w.(http.Flusher)
	c.writeWarnings()
	mediaType := info.MediaType
	if mediaType != runtime.ContentTypeJSON {
		mediaType += ";stream=watch"
	}
	c.w.Header().Set("Content-Type", mediaType)
	c.w.Header().Set("Transfer-Encoding", "chunked")
	c.w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	frames := streaming.NewEncoder(info.StreamSerializer.Framer.NewFrameWriter(c.w), info.StreamSerializer.Serializer)
	first := true
	for {
		var ev watch.Event
		var ok bool
		select {
		case ev, ok = <-w.ResultChan():
		case <-ctx.Done():
			return nil
		}
		if !ok {
			return nil
		}
		obj, enc := ev.Object, objEnc
		if ev.Type != watch.Error {
			var err error
			if obj, err = c.out(obj); err != nil {
				c.s.cfg.Logger.Error("convert watch event", "err", err)
				return nil
			}
		}
		switch {
		case ev.Type == watch.Error:
			enc = statusEnc
		case c.acc.as == "Table" && ev.Type == watch.Bookmark:
			m, _ := meta.Accessor(obj)
			obj, enc = &metav1.Table{ListMeta: metav1.ListMeta{ResourceVersion: m.GetResourceVersion()}}, metaEnc
		case c.acc.as == "Table":
			t, err := c.table(obj, !first)
			if err != nil {
				return nil // headers are out: end the stream
			}
			obj, enc, first = t, metaEnc, false
		}
		raw, err := runtime.Encode(enc, obj)
		if err != nil {
			c.s.cfg.Logger.Error("encode watch event", "err", err)
			return nil
		}
		if err := frames.Encode(&metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: raw}}); err != nil {
			return nil // the client went away
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// prepareCreate fills the metadata of a new object as upstream does and
// runs the kind's defaults and create-time rules. track records the
// object's fields as the creator's in managedFields (an apply has done so
// already).
func (c *call) prepareCreate(obj runtime.Object, track bool) (metav1.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if c.res.Namespaced {
		if ns := m.GetNamespace(); ns != "" && ns != c.info.Namespace {
			return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		m.SetNamespace(c.info.Namespace)
	} else {
		m.SetNamespace("")
	}
	if m.GetResourceVersion() != "" {
		return nil, apierrors.NewBadRequest("resourceVersion should not be set on objects to be created")
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(generateName(m.GetGenerateName()))
	}
	m.SetUID(types.UID(uuid.NewUUID()))
	m.SetCreationTimestamp(metav1.NewTime(c.s.cfg.Now().Truncate(time.Second)))
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetSelfLink("")
	c.res.strategy.Default(obj)
	if track {
		// Here, as upstream: after the defaults (which upstream's decoding
		// applies) and before what the server adds itself (status reset,
		// admission, allocated addresses), which is nobody's.
		c.trackCreate(obj)
	}
	c.res.strategy.PrepareForCreate(obj)
	c.s.prepareKind(c.res, obj)
	ranges, err := c.s.limitRanges(c.ctx, obj)
	if err != nil {
		return nil, err
	}
	defaultLimits(obj, ranges)
	if err := c.s.admitServiceAccount(c.ctx, obj); err != nil {
		return nil, err
	}
	if err := c.s.admitStorage(c.ctx, obj); err != nil {
		return nil, err
	}
	if svc, ok := obj.(*corev1.Service); ok {
		// As upstream: addresses are allocated before validation, which
		// expects them.
		if err := c.s.allocate(c.ctx, svc, nil); err != nil {
			return nil, err
		}
	}
	errs := validateObjectMeta(c.res, m)
	errs = append(errs, c.res.strategy.Validate(obj)...)
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(c.res.GVK.GroupKind(), m.GetName(), errs)
	}
	if err := checkLimits(c.res.GroupResource(), m.GetName(), obj, ranges); err != nil {
		return nil, err
	}
	return m, nil
}

const nameChars = "bcdfghjklmnpqrstvwxz2456789"

func generateName(base string) string {
	if len(base) > 58 {
		base = base[:58]
	}
	b := []byte(base)
	for i := 0; i < 5; i++ {
		b = append(b, nameChars[rand.N(len(nameChars))])
	}
	return string(b)
}

// writeParams reads a write's query into opts (Create, Update or
// PatchOptions) and interprets its dryRun and fieldValidation; the
// options as a whole must pass upstream's checks (a fieldManager of
// printable characters, at most 128; for a patch of type pt, a
// fieldManager for apply and no force but for apply).
func (c *call) writeParams(opts runtime.Object, dryRun *[]string, fieldValidation *string, pt types.PatchType) (dry, strict, warn bool, err error) {
	if err = c.decodeQuery(c.r.URL.Query(), opts); err != nil {
		return
	}
	if dry, err = c.dryRun(*dryRun); err != nil {
		return
	}
	if strict, warn, err = c.strictFields(*fieldValidation); err != nil {
		return
	}
	var errs field.ErrorList
	var kind string
	switch o := opts.(type) {
	case *metav1.CreateOptions:
		errs, kind = metav1validation.ValidateCreateOptions(o), "CreateOptions"
	case *metav1.UpdateOptions:
		errs, kind = metav1validation.ValidateUpdateOptions(o), "UpdateOptions"
	case *metav1.PatchOptions:
		errs, kind = metav1validation.ValidatePatchOptions(o, pt), "PatchOptions"
	}
	if len(errs) > 0 {
		err = apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: kind}, "", errs)
	}
	return
}

func (c *call) create() error {
	var opts metav1.CreateOptions
	dry, strict, warn, err := c.writeParams(&opts, &opts.DryRun, &opts.FieldValidation, "")
	if err != nil {
		return err
	}
	data, err := readBody(c.r)
	if err != nil {
		return err
	}
	obj, warnings, err := c.s.decodeBody(c.r, c.res, data, strict)
	if err != nil {
		return err
	}
	if warn {
		c.warnings = append(c.warnings, warnings...)
	}
	if obj, err = c.in(obj); err != nil {
		return err
	}
	return c.createNew(obj, dry, true)
}

// createNew creates obj (of the hub's type) in the request's namespace, or
// checks that it could on a dry run, and answers 201 with it. track is
// prepareCreate's.
func (c *call) createNew(obj runtime.Object, dry, track bool) error {
	if c.res.Namespaced {
		if err := c.s.checkNamespace(c.ctx, c.info.Namespace); err != nil {
			return err
		}
	}
	return c.s.withServiceAllocation(c.res, func() error {
		m, err := c.prepareCreate(obj, track)
		if err != nil {
			return err
		}
		if err := c.s.chargeQuota(c.ctx, c.res.GroupResource(), m.GetName(), obj, dry); err != nil {
			return err
		}
		if dry {
			// As a real create would: refuse a name that is taken.
			if _, err := c.res.store.Get(c.ctx, m.GetNamespace(), m.GetName(), ""); err == nil {
				return apierrors.NewAlreadyExists(c.res.GroupResource(), m.GetName())
			} else if !apierrors.IsNotFound(err) {
				return err
			}
			c.respond(http.StatusCreated, obj)
			return nil
		}
		for attempt := 0; ; attempt++ {
			stored, err := c.res.store.Create(c.ctx, obj)
			if apierrors.IsAlreadyExists(err) && m.GetGenerateName() != "" && attempt < 8 {
				m.SetName(generateName(m.GetGenerateName()))
				continue
			}
			if err != nil {
				return err
			}
			c.respond(http.StatusCreated, stored)
			return nil
		}
	})
}

// prepareUpdate turns next (what the client sent, or the patched object)
// into what is stored over old: identity and lifecycle metadata stay the
// server's, and the kind's update rules run. track records what the write
// changes in managedFields (an apply or a scale has done so already).
func (c *call) prepareUpdate(next, old runtime.Object, track bool) error {
	nm, err := meta.Accessor(next)
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	om, _ := meta.Accessor(old)
	if nm.GetName() != om.GetName() {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", nm.GetName(), om.GetName()))
	}
	if c.res.Namespaced && nm.GetNamespace() != "" && nm.GetNamespace() != om.GetNamespace() {
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if uid := nm.GetUID(); uid != "" && uid != om.GetUID() {
		return apierrors.NewConflict(c.res.GroupResource(), om.GetName(), fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, om.GetUID()))
	}
	nm.SetNamespace(om.GetNamespace())
	nm.SetUID(om.GetUID())
	nm.SetCreationTimestamp(om.GetCreationTimestamp())
	nm.SetDeletionTimestamp(om.GetDeletionTimestamp())
	nm.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
	nm.SetSelfLink("")
	if nm.GetResourceVersion() == "" {
		// An update without a resourceVersion is unconditional, as
		// upstream allows it (Helm updates its release Secrets so): it
		// goes over whatever is stored.
		nm.SetResourceVersion(om.GetResourceVersion())
	}
	if nm.GetGeneration() == 0 {
		nm.SetGeneration(om.GetGeneration())
	}
	if om.GetDeletionTimestamp() != nil && len(nm.GetFinalizers()) > len(om.GetFinalizers()) {
		return apierrors.NewForbidden(c.res.GroupResource(), om.GetName(), errors.New("no new finalizers can be added if the object is being deleted"))
	}
	c.res.strategy.Default(next)
	switch c.info.Subresource {
	case "status":
		c.res.strategy.PrepareForStatusUpdate(next, old)
		if track {
			// After the strategy put back what /status may not change:
			// only what the write did change is the writer's.
			c.trackUpdate(next, old)
		}
		if fe := c.res.strategy.ValidateStatusUpdate(next, old); len(fe) > 0 {
			return apierrors.NewInvalid(c.res.GVK.GroupKind(), nm.GetName(), fe)
		}
	default:
		c.res.strategy.PrepareForUpdate(next, old)
		if track {
			// After the strategy kept the status and before the server
			// allocates addresses, which are nobody's (as upstream).
			c.trackUpdate(next, old)
		}
		if svc, ok := next.(*corev1.Service); ok {
			if err := c.s.allocate(c.ctx, svc, old.(*corev1.Service)); err != nil {
				return err
			}
		}
		fe := validateObjectMeta(c.res, nm)
		fe = append(fe, c.res.strategy.ValidateUpdate(next, old)...)
		if len(fe) > 0 {
			return apierrors.NewInvalid(c.res.GVK.GroupKind(), nm.GetName(), fe)
		}
	}
	return nil
}

func (c *call) update(name string) error {
	var opts metav1.UpdateOptions
	dry, strict, warn, err := c.writeParams(&opts, &opts.DryRun, &opts.FieldValidation, "")
	if err != nil {
		return err
	}
	data, err := readBody(c.r)
	if err != nil {
		return err
	}
	if c.info.Subresource == "scale" {
		return c.updateScale(name, data, dry)
	}
	sent, warnings, err := c.s.decodeBody(c.r, c.res, data, strict)
	if err == nil {
		sent, err = c.in(sent)
	}
	if err != nil {
		return err
	}
	if warn {
		c.warnings = append(c.warnings, warnings...)
	}
	if m, err := meta.Accessor(sent); err == nil && m.GetName() != "" && m.GetName() != name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), name))
	}
	return c.write(name, dry, func(cur runtime.Object) (runtime.Object, error) {
		next := sent.DeepCopyObject()
		if err := c.prepareUpdate(next, cur, true); err != nil {
			return nil, err
		}
		return next, nil
	})
}

// write runs an update through storage, or computes it without storing
// on a dry run, then finishes a deletion the update made possible and
// answers with the result.
func (c *call) write(name string, dry bool, fn storage.UpdateFunc) error {
	return c.s.withServiceAllocation(c.res, func() error { return c.writeLocked(name, dry, fn) })
}

func (c *call) writeLocked(name string, dry bool, update storage.UpdateFunc) error {
	fn := update
	var out runtime.Object
	var err error
	if dry {
		cur, gerr := c.res.store.Get(c.ctx, c.info.Namespace, name, "")
		if gerr != nil {
			return gerr
		}
		out, err = fn(cur)
	} else {
		out, err = c.res.store.Update(c.ctx, c.info.Namespace, name, fn)
	}
	if err != nil {
		return err
	}
	if !dry {
		if done, err := c.finishDeletion(out); err != nil {
			return err
		} else if done != nil {
			out = done
		}
	}
	if c.info.Subresource == "scale" {
		return c.respondScale(out)
	}
	c.respond(http.StatusOK, out)
	return nil
}

// finishDeletion deletes an object that is being deleted and has no
// finalizers left; it returns the deleted object, or nil.
func (c *call) finishDeletion(obj runtime.Object) (runtime.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil || m.GetDeletionTimestamp() == nil || finalizersPending(obj) {
		return nil, err
	}
	if pod, ok := obj.(*corev1.Pod); ok && m.GetDeletionGracePeriodSeconds() != nil && *m.GetDeletionGracePeriodSeconds() > 0 && pod.Spec.NodeName != "" {
		return nil, nil // the kubelet finishes a graceful pod deletion
	}
	deleted, err := c.res.store.Delete(c.ctx, m.GetNamespace(), m.GetName(), m.GetResourceVersion())
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil, nil
	}
	return deleted, err
}

func (c *call) deleteOptions() (metav1.DeleteOptions, error) {
	var opts metav1.DeleteOptions
	data, err := readBody(c.r)
	if err != nil {
		return opts, err
	}
	if len(data) > 0 {
		gvk := schema.GroupVersion{Version: "v1"}.WithKind("DeleteOptions")
		if _, _, err := c.s.codecs.UniversalDeserializer().Decode(data, &gvk, &opts); err != nil {
			return opts, apierrors.NewBadRequest(fmt.Sprintf("the body of the request could not be decoded as DeleteOptions: %v", err))
		}
	}
	var q metav1.DeleteOptions
	if err := c.decodeQuery(c.r.URL.Query(), &q); err != nil {
		return opts, err
	}
	if q.GracePeriodSeconds != nil {
		opts.GracePeriodSeconds = q.GracePeriodSeconds
	}
	if q.PropagationPolicy != nil {
		opts.PropagationPolicy = q.PropagationPolicy
	}
	if q.OrphanDependents != nil {
		opts.OrphanDependents = q.OrphanDependents
	}
	if len(q.DryRun) > 0 {
		opts.DryRun = q.DryRun
	}
	if opts.PropagationPolicy != nil {
		switch *opts.PropagationPolicy {
		case metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan:
		default:
			return opts, apierrors.NewBadRequest(fmt.Sprintf("propagationPolicy %q is not one of Background, Foreground, Orphan", *opts.PropagationPolicy))
		}
	}
	return opts, nil
}

func (c *call) delete(name string) error {
	opts, err := c.deleteOptions()
	if err != nil {
		return err
	}
	dry, err := c.dryRun(opts.DryRun)
	if err != nil {
		return err
	}
	obj, code, err := c.deleteOne(name, opts, dry)
	if err != nil {
		return err
	}
	c.respond(code, obj)
	return nil
}

// deleteOne deletes one object as upstream does: immediately, or, when it
// has finalizers (or a propagation policy adds one) or is a running pod
// with a grace period, by setting its deletionTimestamp and leaving the
// rest to the finalizers' owners and the kubelet.
func (c *call) deleteOne(name string, opts metav1.DeleteOptions, dry bool) (runtime.Object, int, error) {
	cur, err := c.res.store.Get(c.ctx, c.info.Namespace, name, "")
	if err != nil {
		return nil, 0, err
	}
	m, _ := meta.Accessor(cur)
	if p := opts.Preconditions; p != nil {
		if p.UID != nil && *p.UID != m.GetUID() {
			return nil, 0, apierrors.NewConflict(c.res.GroupResource(), name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.GetUID()))
		}
		if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
			return nil, 0, apierrors.NewConflict(c.res.GroupResource(), name, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.GetResourceVersion()))
		}
	}
	finalizers := m.GetFinalizers()
	policy := metav1.DeletePropagationBackground
	if opts.PropagationPolicy != nil {
		policy = *opts.PropagationPolicy
	} else if opts.OrphanDependents != nil && *opts.OrphanDependents {
		policy = metav1.DeletePropagationOrphan
	}
	switch policy {
	case metav1.DeletePropagationOrphan:
		finalizers = addString(finalizers, metav1.FinalizerOrphanDependents)
	case metav1.DeletePropagationForeground:
		finalizers = addString(finalizers, metav1.FinalizerDeleteDependents)
	}
	if c.res.GVK == crdGVK {
		finalizers = addString(finalizers, customresource.CleanupFinalizer) // crd.go deletes its objects first
	}
	grace := c.gracePeriod(cur, opts)
	if len(finalizers) == 0 && grace == 0 && !finalizersPending(cur) {
		if dry {
			return c.deletedStatus(cur), http.StatusOK, nil
		}
		deleted, err := c.res.store.Delete(c.ctx, c.info.Namespace, name, m.GetResourceVersion())
		if apierrors.IsConflict(err) {
			return c.deleteOne(name, opts, dry) // changed since read: again, from a fresh read
		}
		if err != nil {
			return nil, 0, err
		}
		if c.res.GVK.Kind == "Pod" {
			return deleted, http.StatusOK, nil
		}
		return c.deletedStatus(deleted), http.StatusOK, nil
	}
	// Graceful: mark, and let finalizers and the kubelet finish.
	fn := func(obj runtime.Object) (runtime.Object, error) {
		om, _ := meta.Accessor(obj)
		om.SetFinalizers(mergeFinalizers(om.GetFinalizers(), finalizers))
		now := metav1.NewTime(c.s.cfg.Now())
		if om.GetDeletionTimestamp() == nil {
			at := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
			om.SetDeletionTimestamp(&at)
			om.SetDeletionGracePeriodSeconds(&grace)
		} else if g := om.GetDeletionGracePeriodSeconds(); g != nil && grace < *g {
			// A shorter grace period may replace a longer one.
			at := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
			om.SetDeletionTimestamp(&at)
			om.SetDeletionGracePeriodSeconds(&grace)
		}
		if c.res.GVK.Kind == "Namespace" {
			obj.(*corev1.Namespace).Status.Phase = corev1.NamespaceTerminating
		}
		markCRDDeleting(obj)
		return obj, nil
	}
	if dry {
		out, err := fn(cur)
		return out, http.StatusAccepted, err
	}
	out, err := c.res.store.Update(c.ctx, c.info.Namespace, name, fn)
	if err != nil {
		return nil, 0, err
	}
	if done, err := c.finishDeletion(out); err != nil {
		return nil, 0, err
	} else if done != nil {
		return c.deletedStatus(done), http.StatusOK, nil
	}
	if c.res.GVK.Kind == "Namespace" {
		c.s.namespaceTerminating(name)
	}
	if policy != metav1.DeletePropagationBackground {
		c.s.propagate(c.res, c.info.Namespace, name)
	}
	return out, http.StatusAccepted, nil
}

// gracePeriod is the grace a deletion gets: pods on a node that have not
// finished get their termination grace period (or the one asked for); a
// pod not yet on a node, and everything else, goes at once.
func (c *call) gracePeriod(obj runtime.Object, opts metav1.DeleteOptions) int64 {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return 0
	}
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if opts.GracePeriodSeconds != nil {
		grace = *opts.GracePeriodSeconds
	}
	if grace < 0 {
		grace = 0
	}
	return grace
}

// deletedStatus is the Status upstream answers an immediate deletion with.
func (c *call) deletedStatus(obj runtime.Object) runtime.Object {
	m, _ := meta.Accessor(obj)
	return &metav1.Status{
		Status: metav1.StatusSuccess,
		Details: &metav1.StatusDetails{
			Name:  m.GetName(),
			Group: c.res.GVK.Group,
			Kind:  c.res.Plural,
			UID:   m.GetUID(),
		},
	}
}

func (c *call) deleteCollection() error {
	opts, err := c.deleteOptions()
	if err != nil {
		return err
	}
	dry, err := c.dryRun(opts.DryRun)
	if err != nil {
		return err
	}
	_, sopts, err := c.listOptions()
	if err != nil {
		return err
	}
	if c.rawListable(sopts) {
		if done, err := c.writeProtobufList(sopts); done || err != nil {
			return err
		}
	}
	list, err := c.res.store.List(c.ctx, sopts)
	if err != nil {
		return err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return err
	}
	ns := c.info.Namespace
	for _, item := range items {
		m, _ := meta.Accessor(item)
		c.info.Namespace = m.GetNamespace()
		if _, _, err := c.deleteOne(m.GetName(), opts, dry); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	c.info.Namespace = ns
	c.respond(http.StatusOK, &metav1.Status{Status: metav1.StatusSuccess})
	return nil
}

// finalizersPending reports whether something must still happen before
// obj can go: metadata finalizers, or a namespace's spec finalizers.
func finalizersPending(obj runtime.Object) bool {
	if ns, ok := obj.(*corev1.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
		return true
	}
	m, err := meta.Accessor(obj)
	return err == nil && len(m.GetFinalizers()) > 0
}

func addString(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(append([]string(nil), list...), s)
}

func mergeFinalizers(have, add []string) []string {
	out := have
	for _, f := range add {
		out = addString(out, f)
	}
	return out
}
