package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"labctl/server/volume"
)

// The PersistentVolume controller binds claims to volumes, as
// kube-controller-manager's persistentvolume-binder
// (pkg/controller/volume/persistentvolume) does, and runs the two
// protection controllers beside it.
//
// Binding (one worker, event-driven, every object again each 15 s):
//   - A claim without spec.volumeName gets the smallest Available volume
//     of its class ("" matches only volumes without one) whose access
//     modes, capacity, volume mode and labels fit; a volume pre-bound to
//     it (claimRef naming it) wins. The volume's claimRef is written
//     first, then its phase Bound, then the claim's volumeName with the
//     annotations pv.kubernetes.io/bind-completed and
//     pv.kubernetes.io/bound-by-controller, then the claim's phase Bound
//     with the volume's capacity and access modes. Each write carries
//     the resourceVersion it was computed from: a conflict only means
//     the informers were behind, and the claim is synced again.
//   - A claim of a WaitForFirstConsumer class is left to the scheduler
//     until it pre-binds a volume or names a node
//     (volume.kubernetes.io/selected-node); meanwhile it gets the event
//     WaitForFirstConsumer (WaitForPodScheduled once a pod waits for it).
//   - With no volume, a class with an external provisioner is asked for
//     one (the claim's volume.kubernetes.io/storage-provisioner
//     annotations, event ExternalProvisioning); the provisioner creates a
//     volume whose claimRef names the claim, and the binding completes
//     as above. A claim without a class gets the default class, if there
//     is one now, as upstream's retroactive assignment does.
//   - A volume whose claim is gone (by uid) is Released, then reclaimed
//     by its policy: Retain keeps it; Delete leaves it to the external
//     provisioner that made it, or else fails (labctl has none of
//     upstream's in-tree deleters); Recycle fails likewise.
//
// Protection: a claim being deleted keeps kubernetes.io/pvc-protection
// while a pod that has not finished uses it; a volume being deleted keeps
// kubernetes.io/pv-protection while it is Bound. The API server's
// admission adds both finalizers (server/apiserver/storageadmission.go).
//
// Events repeated on every sync upstream (the waiting and failure ones)
// are sent at most once per resync period for the same object and words.

const (
	pvResync = 15 * time.Second

	// podsByClaimIndex indexes pods by the claims (namespace/name) their
	// volumes use.
	podsByClaimIndex = "labctl-persistentvolumeclaims"
)

type persistentVolumes struct {
	cs       kubernetes.Interface
	claims   corelisters.PersistentVolumeClaimLister
	volumes  corelisters.PersistentVolumeLister
	classes  storagelisters.StorageClassLister
	pods     cache.Indexer
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string] // the binder's: pvcQueueKey or pvQueueKey
	protect  workqueue.TypedRateLimitingInterface[string] // the protection controllers'
	recorder record.EventRecorder
	log      *slog.Logger

	mu   sync.Mutex
	sent map[sentEvent]time.Time // when a repeated event last went out
}

// sentEvent names an event sent about an object.
type sentEvent struct {
	uid             types.UID
	reason, message string
}

// Queue keys: what to sync and its name.
func pvcQueueKey(ns, name string) string { return "claim:" + ns + "/" + name }
func pvQueueKey(name string) string      { return "volume:" + name }

func newPersistentVolumes(cs kubernetes.Interface, f informerSet, recorder record.EventRecorder, log *slog.Logger) controller {
	pvcInf, pvInf := f.Core().V1().PersistentVolumeClaims(), f.Core().V1().PersistentVolumes()
	scInf, podInf := f.Storage().V1().StorageClasses(), f.Core().V1().Pods()
	c := &persistentVolumes{
		cs: cs, claims: pvcInf.Lister(), volumes: pvInf.Lister(), classes: scInf.Lister(), pods: podInf.Informer().GetIndexer(),
		synced: []cache.InformerSynced{pvcInf.Informer().HasSynced, pvInf.Informer().HasSynced, scInf.Informer().HasSynced, podInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "persistentvolume-binder"}),
		protect: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "volume-protection"}),
		recorder: recorder, log: log.With("controller", "persistentvolume-binder"),
		sent: map[sentEvent]time.Time{},
	}
	if err := podInf.Informer().AddIndexers(cache.Indexers{podsByClaimIndex: podClaimKeys}); err != nil {
		c.log.Error("cannot index pods by claim", "err", err)
	}
	f.addEventHandler(pvcInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.claimChanged(obj.(*corev1.PersistentVolumeClaim)) },
		UpdateFunc: func(_, obj any) { c.claimChanged(obj.(*corev1.PersistentVolumeClaim)) },
		DeleteFunc: func(obj any) {
			pvc, ok := deletedObject[*corev1.PersistentVolumeClaim](obj)
			if !ok {
				return
			}
			c.forget(pvc.UID)
			// Its volume is Released now, without waiting for the resync.
			if pvc.Spec.VolumeName != "" {
				c.queue.Add(pvQueueKey(pvc.Spec.VolumeName))
			}
		},
	})
	availableChanged := func(pv *corev1.PersistentVolume) {
		c.volumeChanged(pv)
		if pv.Status.Phase == corev1.VolumeAvailable {
			// Upstream's claims find a new volume at the next resync;
			// these look at once.
			c.enqueueUnbound()
		}
	}
	f.addEventHandler(pvInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { availableChanged(obj.(*corev1.PersistentVolume)) },
		UpdateFunc: func(_, obj any) { availableChanged(obj.(*corev1.PersistentVolume)) },
		DeleteFunc: func(obj any) {
			pv, ok := deletedObject[*corev1.PersistentVolume](obj)
			if !ok {
				return
			}
			c.forget(pv.UID)
			// Its claim is Lost now, without waiting for the resync.
			if ref := pv.Spec.ClaimRef; ref != nil {
				c.queue.Add(pvcQueueKey(ref.Namespace, ref.Name))
			}
		},
	})
	// A new default class or a changed binding mode concerns the claims
	// still waiting.
	f.addEventHandler(scInf.Informer(), onAll(func(any) { c.enqueueUnbound() }))
	// A pod that finishes or goes may free a claim being deleted; one
	// that comes changes why a claim waits.
	f.addEventHandler(podInf.Informer(), onAll(func(obj any) {
		keys, _ := podClaimKeys(obj)
		for _, k := range keys {
			ns, name, _ := strings.Cut(k, "/")
			pvc, err := c.claims.PersistentVolumeClaims(ns).Get(name)
			if err != nil {
				continue
			}
			if pvc.DeletionTimestamp != nil {
				c.protect.Add(pvcQueueKey(ns, name))
			}
			if pvc.Spec.VolumeName == "" {
				c.queue.Add(pvcQueueKey(ns, name))
			}
		}
	}))
	return c
}

func (c *persistentVolumes) name() string { return "persistentvolume-binder" }

func (c *persistentVolumes) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { runWorkers(ctx, c.queue, c.synced, 1, c.log, c.sync) })
	wg.Go(func() { runWorkers(ctx, c.protect, c.synced, 1, c.log, c.syncProtection) })
	wg.Go(func() {
		if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
			return
		}
		t := time.NewTicker(pvResync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.resync()
			}
		}
	})
	wg.Wait()
}

func (c *persistentVolumes) claimChanged(pvc *corev1.PersistentVolumeClaim) {
	c.queue.Add(pvcQueueKey(pvc.Namespace, pvc.Name))
	if pvc.DeletionTimestamp != nil {
		c.protect.Add(pvcQueueKey(pvc.Namespace, pvc.Name))
	}
}

func (c *persistentVolumes) volumeChanged(pv *corev1.PersistentVolume) {
	c.queue.Add(pvQueueKey(pv.Name))
	if pv.DeletionTimestamp != nil {
		c.protect.Add(pvQueueKey(pv.Name))
	}
}

// enqueueUnbound queues the claims still looking for a volume.
func (c *persistentVolumes) enqueueUnbound() {
	pvcs, _ := c.claims.List(labels.Everything())
	for _, pvc := range pvcs {
		if pvc.Spec.VolumeName == "" {
			c.queue.Add(pvcQueueKey(pvc.Namespace, pvc.Name))
		}
	}
}

// resync queues every claim and volume again, as upstream's periodic sync.
func (c *persistentVolumes) resync() {
	pvcs, _ := c.claims.List(labels.Everything())
	for _, pvc := range pvcs {
		c.claimChanged(pvc)
	}
	pvs, _ := c.volumes.List(labels.Everything())
	for _, pv := range pvs {
		c.volumeChanged(pv)
	}
	// Forget the events of objects that went meanwhile.
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, at := range c.sent {
		if time.Since(at) > 2*pvResync {
			delete(c.sent, k)
		}
	}
}

// podClaimKeys indexes a pod by the claims its volumes use: its
// persistentVolumeClaim volumes and its ephemeral volumes' claims
// (<pod>-<volume>).
func podClaimKeys(obj any) ([]string, error) {
	pod, ok := deletedObject[*corev1.Pod](obj)
	if !ok {
		return nil, nil
	}
	var keys []string
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil:
			keys = append(keys, pod.Namespace+"/"+v.PersistentVolumeClaim.ClaimName)
		case v.Ephemeral != nil:
			keys = append(keys, pod.Namespace+"/"+pod.Name+"-"+v.Name)
		}
	}
	return keys, nil
}

func (c *persistentVolumes) sync(ctx context.Context, key string) error {
	kind, name, _ := strings.Cut(key, ":")
	if kind == "volume" {
		pv, err := c.volumes.Get(name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return c.syncVolume(ctx, pv)
	}
	ns, name, _ := strings.Cut(name, "/")
	pvc, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !metav1.HasAnnotation(pvc.ObjectMeta, storagehelpers.AnnBindCompleted) {
		return c.syncUnboundClaim(ctx, pvc)
	}
	return c.syncBoundClaim(ctx, pvc)
}

// ---- claims

// syncUnboundClaim handles a claim that has never been bound.
func (c *persistentVolumes) syncUnboundClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if pvc.Spec.VolumeName != "" {
		return c.syncRequestedVolume(ctx, pvc)
	}
	delay, err := storagehelpers.IsDelayBindingMode(pvc, c.classes)
	if err != nil {
		return err
	}
	pv, err := c.findBestMatch(pvc, delay)
	if err != nil {
		return err
	}
	if pv != nil {
		return c.bind(ctx, pv, pvc)
	}
	if !storagehelpers.PersistentVolumeClaimHasClass(pvc) {
		if def := c.defaultClass(); def != "" {
			// Upstream's retroactive default: the claim asked for no
			// class and one is the default now. The update brings the
			// claim back here.
			next := pvc.DeepCopy()
			next.Spec.StorageClassName = &def
			if _, err := c.cs.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
				return err
			}
			c.log.Info("assigned the default storage class to the claim", "claim", pvc.Namespace+"/"+pvc.Name, "storageClass", def)
			return nil
		}
	}
	switch class := storagehelpers.GetPersistentVolumeClaimClass(pvc); {
	case delay && !storagehelpers.IsDelayBindingProvisioning(pvc):
		c.waitingForConsumer(pvc)
	case class != "":
		return c.provision(ctx, pvc, class)
	default:
		c.eventOnce(pvc, corev1.EventTypeNormal, "FailedBinding", "no persistent volumes available for this claim and no storage class is set")
	}
	_, err = c.updateClaimStatus(ctx, pvc, corev1.ClaimPending, nil)
	return err
}

// syncRequestedVolume handles a claim that names its volume.
func (c *persistentVolumes) syncRequestedVolume(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	pv, err := c.volumes.Get(pvc.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		// It may come later.
		_, err = c.updateClaimStatus(ctx, pvc, corev1.ClaimPending, nil)
		return err
	}
	if err != nil {
		return err
	}
	switch {
	case pv.Spec.ClaimRef == nil:
		if why := volumeUnfit(pv, pvc); why != "" {
			c.eventOnce(pvc, corev1.EventTypeWarning, "VolumeMismatch", fmt.Sprintf("Cannot bind to requested volume %q: %s", pv.Name, why))
			_, err = c.updateClaimStatus(ctx, pvc, corev1.ClaimPending, nil)
			return err
		}
		return c.bind(ctx, pv, pvc)
	case storagehelpers.IsVolumeBoundToClaim(pv, pvc):
		return c.bind(ctx, pv, pvc)
	default:
		c.eventOnce(pvc, corev1.EventTypeWarning, "FailedBinding", fmt.Sprintf("volume %q already bound to a different claim.", pv.Name))
		if metav1.HasAnnotation(pvc.ObjectMeta, storagehelpers.AnnBoundByController) {
			// Someone removed bind-completed from a claim this controller
			// bound: upstream refuses to guess.
			return fmt.Errorf("invalid binding of claim %q to volume %q: volume already claimed by %q",
				pvc.Namespace+"/"+pvc.Name, pv.Name, pv.Spec.ClaimRef.Namespace+"/"+pv.Spec.ClaimRef.Name)
		}
		_, err = c.updateClaimStatus(ctx, pvc, corev1.ClaimPending, nil)
		return err
	}
}

// volumeUnfit says why a volume cannot serve a claim that asked for it
// by name ("" if it can), in upstream's words.
func volumeUnfit(pv *corev1.PersistentVolume, pvc *corev1.PersistentVolumeClaim) string {
	want, have := pvc.Spec.Resources.Requests[corev1.ResourceStorage], pv.Spec.Capacity[corev1.ResourceStorage]
	switch {
	case pv.DeletionTimestamp != nil:
		return fmt.Sprintf("the volume is marked for deletion %q", pv.Name)
	case have.Value() < want.Value():
		return "requested PV is too small"
	case storagehelpers.GetPersistentVolumeClass(pv) != storagehelpers.GetPersistentVolumeClaimClass(pvc):
		return "storageClassName does not match"
	case storagehelpers.CheckVolumeModeMismatches(&pvc.Spec, &pv.Spec):
		return "incompatible volumeMode"
	case !storagehelpers.CheckAccessModes(pvc, pv):
		return "incompatible accessMode"
	}
	return ""
}

// syncBoundClaim handles a claim bound before.
func (c *persistentVolumes) syncBoundClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if pvc.Spec.VolumeName == "" {
		return c.claimLost(ctx, pvc, "ClaimLost", "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
	}
	pv, err := c.volumes.Get(pvc.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		// The informer may be behind a volume just made: ask the API.
		pv, err = c.cs.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return c.claimLost(ctx, pvc, "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
		}
	}
	if err != nil {
		return err
	}
	if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID == pvc.UID {
		// Bound, or a binding to finish (or mend: the volume came
		// unbound).
		return c.bind(ctx, pv, pvc)
	}
	return c.claimLost(ctx, pvc, "ClaimMisbound", "Two claims are bound to the same volume, this one is bound incorrectly")
}

// claimLost puts a claim in phase Lost, with a warning when it changes.
func (c *persistentVolumes) claimLost(ctx context.Context, pvc *corev1.PersistentVolumeClaim, reason, message string) error {
	if pvc.Status.Phase == corev1.ClaimLost {
		return nil
	}
	next, err := c.updateClaimStatus(ctx, pvc, corev1.ClaimLost, nil)
	if err != nil {
		return err
	}
	c.log.Warn("claim lost", "claim", pvc.Namespace+"/"+pvc.Name, "reason", reason)
	c.recorder.Event(next, corev1.EventTypeWarning, reason, message)
	return nil
}

// findBestMatch finds the volume for a claim as upstream's index does: of
// the volumes whose access modes include the claim's, those with the
// fewest modes are searched first; among them a volume pre-bound to the
// claim wins, else the smallest that fits. With delay (the class waits for
// a consumer) only a pre-bound volume is taken.
func (c *persistentVolumes) findBestMatch(pvc *corev1.PersistentVolumeClaim, delay bool) (*corev1.PersistentVolume, error) {
	pvs, err := c.volumes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	groups := map[string][]*corev1.PersistentVolume{}
	for _, pv := range pvs {
		if storagehelpers.CheckAccessModes(pvc, pv) {
			k := accessModesKey(pv.Spec.AccessModes)
			groups[k] = append(groups[k], pv)
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ni, nj := strings.Count(keys[i], ",")+1, strings.Count(keys[j], ",")+1
		if ni != nj {
			return ni < nj
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		pv, err := storagehelpers.FindMatchingVolume(pvc, groups[k], nil, nil, delay, true)
		if err != nil || pv != nil {
			return pv, err
		}
	}
	return nil, nil
}

// accessModesKey is a set of access modes as one sorted string.
func accessModesKey(modes []corev1.PersistentVolumeAccessMode) string {
	s := make([]string, 0, len(modes))
	for _, m := range modes {
		if !slices.Contains(s, string(m)) {
			s = append(s, string(m))
		}
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

// defaultClass names the default StorageClass ("" for none).
func (c *persistentVolumes) defaultClass() string {
	classes, _ := c.classes.List(labels.Everything())
	return volume.DefaultClass(classes)
}

// waitingForConsumer tells why a claim of a WaitForFirstConsumer class
// waits: for a pod, or for the scheduler to place the pods that use it.
func (c *persistentVolumes) waitingForConsumer(pvc *corev1.PersistentVolumeClaim) {
	reason, message := "WaitForFirstConsumer", "waiting for first consumer to be created before binding"
	var waiting []string
	for _, pod := range c.podsUsing(pvc) {
		if pod.Spec.NodeName == "" {
			waiting = append(waiting, pod.Name)
		}
	}
	sort.Strings(waiting)
	switch len(waiting) {
	case 0:
	case 1:
		reason, message = "WaitForPodScheduled", fmt.Sprintf("waiting for pod %s to be scheduled", waiting[0])
	default:
		reason, message = "WaitForPodScheduled", fmt.Sprintf("waiting for pods %s to be scheduled", strings.Join(waiting, ","))
	}
	c.eventOnce(pvc, corev1.EventTypeNormal, reason, message)
}

// provision asks the class's provisioner for a volume: an external one
// through the claim's annotations. labctl has none of upstream's in-tree
// provisioners (kubernetes.io/...), kubernetes.io/no-provisioner among
// them.
func (c *persistentVolumes) provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim, className string) error {
	class, err := c.classes.Get(className)
	if err != nil {
		if apierrors.IsNotFound(err) {
			c.eventOnce(pvc, corev1.EventTypeWarning, "ProvisioningFailed", err.Error())
			return nil
		}
		return err
	}
	provisioner := class.Provisioner
	if strings.HasPrefix(provisioner, "kubernetes.io/") {
		c.eventOnce(pvc, corev1.EventTypeWarning, "ProvisioningFailed", "no volume plugin matched name: "+provisioner)
		return nil
	}
	if pvc.Annotations[storagehelpers.AnnStorageProvisioner] != provisioner || pvc.Annotations[storagehelpers.AnnBetaStorageProvisioner] != provisioner {
		next := pvc.DeepCopy()
		metav1.SetMetaDataAnnotation(&next.ObjectMeta, storagehelpers.AnnStorageProvisioner, provisioner)
		metav1.SetMetaDataAnnotation(&next.ObjectMeta, storagehelpers.AnnBetaStorageProvisioner, provisioner)
		if pvc, err = c.cs.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
			return err
		}
		c.log.Info("claim handed to its provisioner", "claim", pvc.Namespace+"/"+pvc.Name, "provisioner", provisioner)
	}
	c.eventOnce(pvc, corev1.EventTypeNormal, "ExternalProvisioning", fmt.Sprintf("Waiting for a volume to be created either by the external provisioner '%s' "+
		"or manually by the system administrator. If volume creation is delayed, please verify that "+
		"the provisioner is running and correctly registered.", provisioner))
	return nil
}

// bind binds a volume and a claim, or finishes binding them: the volume's
// claimRef, its phase, the claim's volumeName and annotations, the claim's
// phase, in that order, each written only if it is not so already.
func (c *persistentVolumes) bind(ctx context.Context, pv *corev1.PersistentVolume, pvc *corev1.PersistentVolumeClaim) error {
	changed := false
	next, dirty, err := storagehelpers.GetBindVolumeToClaim(pv, pvc)
	if err != nil {
		return err
	}
	if dirty {
		if pv, err = c.cs.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{}); err != nil {
			return err
		}
		changed = true
	}
	if pv, err = c.updateVolumePhase(ctx, pv, corev1.VolumeBound, ""); err != nil {
		return err
	}
	if pvc.Spec.VolumeName != pv.Name || !metav1.HasAnnotation(pvc.ObjectMeta, storagehelpers.AnnBindCompleted) {
		next := pvc.DeepCopy()
		if next.Spec.VolumeName != pv.Name {
			next.Spec.VolumeName = pv.Name
			if !metav1.HasAnnotation(next.ObjectMeta, storagehelpers.AnnBoundByController) {
				metav1.SetMetaDataAnnotation(&next.ObjectMeta, storagehelpers.AnnBoundByController, "yes")
			}
		}
		metav1.SetMetaDataAnnotation(&next.ObjectMeta, storagehelpers.AnnBindCompleted, "yes")
		if pvc, err = c.cs.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
			return err
		}
		changed = true
	}
	if _, err := c.updateClaimStatus(ctx, pvc, corev1.ClaimBound, pv); err != nil {
		return err
	}
	if changed {
		c.log.Info("bound the claim to the volume", "claim", pvc.Namespace+"/"+pvc.Name, "volume", pv.Name)
	}
	return nil
}

// updateClaimStatus writes a claim's phase, with the access modes and
// (when it becomes Bound) the capacity of its volume, or none without one.
func (c *persistentVolumes) updateClaimStatus(ctx context.Context, pvc *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase,
	pv *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	next := pvc.DeepCopy()
	next.Status.Phase = phase
	if pv == nil {
		next.Status.AccessModes, next.Status.Capacity = nil, nil
	} else {
		next.Status.AccessModes = pv.Spec.AccessModes
		// Only on becoming Bound: a capacity that differs later may be a
		// resize in progress.
		if pvc.Status.Phase != phase {
			want := pv.Spec.Capacity[corev1.ResourceStorage]
			if have, ok := pvc.Status.Capacity[corev1.ResourceStorage]; !ok || have.Cmp(want) != 0 {
				next.Status.Capacity = pv.Spec.Capacity
			}
		}
	}
	if equality.Semantic.DeepEqual(next.Status, pvc.Status) {
		return pvc, nil
	}
	out, err := c.cs.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	if phase != pvc.Status.Phase {
		c.log.Info("claim entered phase", "claim", pvc.Namespace+"/"+pvc.Name, "phase", phase)
	}
	return out, nil
}

// ---- volumes

// syncVolume handles a volume: its phase, its claim, its reclaiming.
func (c *persistentVolumes) syncVolume(ctx context.Context, pv *corev1.PersistentVolume) error {
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.UID == "" {
		// Unused, or reserved for a claim that has not taken it yet.
		_, err := c.updateVolumePhase(ctx, pv, corev1.VolumeAvailable, "")
		return err
	}
	pvc, err := c.claimOf(ctx, pv)
	if err != nil {
		return err
	}
	switch {
	case pvc == nil:
		// The claim is gone: release the volume, then reclaim it. A
		// Failed volume stays Failed, for the user to see.
		if pv.Status.Phase != corev1.VolumeReleased && pv.Status.Phase != corev1.VolumeFailed {
			if pv, err = c.updateVolumePhase(ctx, pv, corev1.VolumeReleased, ""); err != nil {
				return err
			}
		}
		return c.reclaim(ctx, pv)
	case pvc.Spec.VolumeName == "":
		if storagehelpers.CheckVolumeModeMismatches(&pvc.Spec, &pv.Spec) {
			c.eventOnce(pv, corev1.EventTypeWarning, "VolumeMismatch",
				fmt.Sprintf("Cannot bind PersistentVolume to requested PersistentVolumeClaim %q due to incompatible volumeMode.", pvc.Name))
			c.eventOnce(pvc, corev1.EventTypeWarning, "VolumeMismatch",
				fmt.Sprintf("Cannot bind PersistentVolume %q to requested PersistentVolumeClaim due to incompatible volumeMode.", pv.Name))
			return nil
		}
		// Pre-bound (by a user, the scheduler or a provisioner): the
		// claim's sync finishes the binding.
		c.queue.Add(pvcQueueKey(pvc.Namespace, pvc.Name))
		return nil
	case pvc.Spec.VolumeName == pv.Name:
		_, err := c.updateVolumePhase(ctx, pv, corev1.VolumeBound, "")
		return err
	case metav1.HasAnnotation(pv.ObjectMeta, storagehelpers.AnnDynamicallyProvisioned) && pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete:
		// Provisioned for a claim that got another volume: not needed.
		if pv.Status.Phase != corev1.VolumeReleased && pv.Status.Phase != corev1.VolumeFailed {
			if pv, err = c.updateVolumePhase(ctx, pv, corev1.VolumeReleased, ""); err != nil {
				return err
			}
		}
		return c.reclaim(ctx, pv)
	default:
		// Bound to a claim that is bound elsewhere: undo this side.
		return c.unbind(ctx, pv)
	}
}

// claimOf returns the claim a volume is bound to, nil if it is gone
// (another of the same name is not it). The informer may be behind, so
// before a volume is released the API has the last word.
func (c *persistentVolumes) claimOf(ctx context.Context, pv *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	ref := pv.Spec.ClaimRef
	pvc, err := c.claims.PersistentVolumeClaims(ref.Namespace).Get(ref.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	if err == nil && pvc.UID == ref.UID {
		return pvc, nil
	}
	if err != nil && (pv.Status.Phase == corev1.VolumeReleased || pv.Status.Phase == corev1.VolumeFailed) {
		return nil, nil // released already
	}
	pvc, err = c.cs.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	case pvc.UID != ref.UID:
		return nil, nil
	}
	return pvc, nil
}

// unbind undoes a volume's side of a binding the claim did not take: the
// controller's binding entirely, a user's pre-binding down to the name.
func (c *persistentVolumes) unbind(ctx context.Context, pv *corev1.PersistentVolume) error {
	next := pv.DeepCopy()
	if metav1.HasAnnotation(pv.ObjectMeta, storagehelpers.AnnBoundByController) {
		next.Spec.ClaimRef = nil
		delete(next.Annotations, storagehelpers.AnnBoundByController)
		if len(next.Annotations) == 0 {
			next.Annotations = nil
		}
	} else {
		next.Spec.ClaimRef.UID = ""
	}
	pv, err := c.cs.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	c.log.Info("unbound the volume: its claim is bound to another", "volume", pv.Name)
	_, err = c.updateVolumePhase(ctx, pv, corev1.VolumeAvailable, "")
	return err
}

// hostPathDeletable is what upstream's hostPath deleter would remove.
var hostPathDeletable = regexp.MustCompile("/tmp/.+")

// reclaim applies a released volume's reclaim policy.
func (c *persistentVolumes) reclaim(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Annotations[storagehelpers.AnnMigratedTo] != "" {
		return nil // a CSI driver's
	}
	fail := func(reason, message string) error {
		if pv.Status.Phase == corev1.VolumeFailed {
			return nil
		}
		next, err := c.updateVolumePhase(ctx, pv, corev1.VolumeFailed, message)
		if err != nil {
			return err
		}
		c.recorder.Event(next, corev1.EventTypeWarning, reason, message)
		return nil
	}
	switch pv.Spec.PersistentVolumeReclaimPolicy {
	case corev1.PersistentVolumeReclaimRetain:
		return nil
	case corev1.PersistentVolumeReclaimRecycle:
		// Deprecated upstream; labctl runs no recycler pods.
		return fail("VolumeFailedRecycle", "No recycler plugin found for the volume!")
	case corev1.PersistentVolumeReclaimDelete:
		if by := pv.Annotations[storagehelpers.AnnDynamicallyProvisioned]; by != "" {
			if strings.HasPrefix(by, "kubernetes.io/") {
				return fail("VolumeFailedDelete", "no volume plugin matched name: "+by)
			}
			return nil // its external provisioner deletes it
		}
		if pv.Spec.CSI != nil {
			return nil // its CSI driver's external provisioner deletes it
		}
		if hp := pv.Spec.HostPath; hp != nil && !hostPathDeletable.MatchString(hp.Path) {
			return fail("VolumeFailedDelete", "host_path deleter only supports /tmp/.+ but received provided "+hp.Path)
		}
		return fail("VolumeFailedDelete", fmt.Sprintf("error getting deleter volume plugin for volume %q: no deletable volume plugin matched", pv.Name))
	default:
		return fail("VolumeUnknownReclaimPolicy", "Volume has unrecognized PersistentVolumeReclaimPolicy")
	}
}

// updateVolumePhase writes a volume's phase and message if it changes.
func (c *persistentVolumes) updateVolumePhase(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase, message string) (*corev1.PersistentVolume, error) {
	if pv.Status.Phase == phase {
		return pv, nil
	}
	next := pv.DeepCopy()
	next.Status.Phase, next.Status.Message = phase, message
	out, err := c.cs.CoreV1().PersistentVolumes().UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	c.log.Info("volume entered phase", "volume", pv.Name, "phase", phase)
	return out, nil
}

// ---- events

// eventOnce sends an event that upstream repeats on every sync at most
// once per resync period for the same object, reason and message.
func (c *persistentVolumes) eventOnce(obj pvEventObject, eventType, reason, message string) {
	k := sentEvent{obj.GetUID(), reason, message}
	c.mu.Lock()
	at, ok := c.sent[k]
	send := !ok || time.Since(at) >= pvResync*9/10
	if send {
		c.sent[k] = time.Now()
	}
	c.mu.Unlock()
	if send {
		c.recorder.Event(obj, eventType, reason, message)
	}
}

// pvEventObject is a claim or a volume, as events name them.
type pvEventObject interface {
	runtime.Object
	metav1.Object
}

// forget drops what was sent about an object that went.
func (c *persistentVolumes) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.sent {
		if k.uid == uid {
			delete(c.sent, k)
		}
	}
}

// ---- protection

// syncProtection removes the protection finalizer of a claim or volume
// being deleted once nothing uses it.
func (c *persistentVolumes) syncProtection(ctx context.Context, key string) error {
	kind, name, _ := strings.Cut(key, ":")
	if kind == "volume" {
		pv, err := c.volumes.Get(name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if pv.DeletionTimestamp == nil || !slices.Contains(pv.Finalizers, volume.PVProtectionFinalizer) || pv.Status.Phase == corev1.VolumeBound {
			return nil
		}
		next := pv.DeepCopy()
		next.Finalizers = slices.DeleteFunc(next.Finalizers, func(f string) bool { return f == volume.PVProtectionFinalizer })
		if _, err := c.cs.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		c.log.Info("removed the protection finalizer: the volume is not bound", "volume", name)
		return nil
	}
	ns, name, _ := strings.Cut(name, "/")
	pvc, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pvc.DeletionTimestamp == nil || !slices.Contains(pvc.Finalizers, volume.PVCProtectionFinalizer) {
		return nil
	}
	if len(c.podsUsing(pvc)) > 0 {
		return nil // a pod event brings it back
	}
	// The pod informer may be behind a pod just created: ask the API too.
	pods, err := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range pods.Items {
		if podUsesClaim(&pods.Items[i], pvc) {
			return nil
		}
	}
	next := pvc.DeepCopy()
	next.Finalizers = slices.DeleteFunc(next.Finalizers, func(f string) bool { return f == volume.PVCProtectionFinalizer })
	if _, err := c.cs.CoreV1().PersistentVolumeClaims(ns).Update(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	c.log.Info("removed the protection finalizer: no pod uses the claim", "claim", ns+"/"+name)
	return nil
}

// podsUsing lists the pods that have not finished and use a claim, from
// the informer.
func (c *persistentVolumes) podsUsing(pvc *corev1.PersistentVolumeClaim) []*corev1.Pod {
	objs, _ := c.pods.ByIndex(podsByClaimIndex, pvc.Namespace+"/"+pvc.Name)
	var out []*corev1.Pod
	for _, obj := range objs {
		if pod, ok := obj.(*corev1.Pod); ok && podUsesClaim(pod, pvc) {
			out = append(out, pod)
		}
	}
	return out
}

// podUsesClaim reports whether a pod that has not finished (Succeeded or
// Failed) uses a claim: as a persistentVolumeClaim volume, or as the claim
// of an ephemeral volume that it owns.
func podUsesClaim(pod *corev1.Pod, pvc *corev1.PersistentVolumeClaim) bool {
	if pod.Namespace != pvc.Namespace || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name:
			return true
		case v.Ephemeral != nil && pod.Name+"-"+v.Name == pvc.Name:
			if ref := metav1.GetControllerOfNoCopy(pvc); ref != nil && ref.UID == pod.UID {
				return true
			}
		}
	}
	return false
}
