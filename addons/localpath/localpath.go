// Package localpath is the local-path storage add-on: k3s's local-path
// StorageClass and rancher's local-path-provisioner, inside labctl.
//
// The server keeps the StorageClass (EnsureStorageClass, from the add-ons;
// RemoveStorageClass under --disable local-storage): local-path, the
// cluster's default class, provisioner rancher.io/local-path, reclaim
// policy Delete, binding mode WaitForFirstConsumer. A claim of that class
// therefore stays Pending until a pod that uses it is scheduled; the
// scheduler then names the pod's node in the claim's
// volume.kubernetes.io/selected-node annotation, and the PV controller
// names the provisioner in its volume.kubernetes.io/storage-provisioner
// annotation.
//
// Run is the provisioner, and runs on every node, in the node agent, as an
// API client with the node's credentials (where local-path-provisioner is
// one Deployment that starts helper pods on the nodes). It takes the
// claims whose selected node is its own and whose provisioner is
// rancher.io/local-path, and for each:
//
//   - refuses, with a Warning ProvisioningFailed event, what
//     local-path-provisioner refuses on a node path: access modes other
//     than ReadWriteOnce and ReadWriteOncePod, block volumes, a selector;
//   - makes the directory <StorageDir>/pvc-<claim uid>_<namespace>_<name>,
//     mode 0777 in a StorageDir of mode 0700 (k3s's setup script);
//   - creates the PersistentVolume pvc-<claim uid>: a hostPath volume
//     (DirectoryOrCreate) of that directory with node affinity to the node
//     (kubernetes.io/hostname), the claim's size, access modes and class,
//     the class's reclaim policy, bound to the claim by its claimRef, with
//     local-path-provisioner's annotations. Provisioning and
//     ProvisioningSucceeded events say so on the claim.
//
// When a volume it made on its node is Released (its claim deleted) and
// its reclaim policy is Delete, Run removes the directory and deletes the
// PersistentVolume (VolumeFailedDelete on the volume when it cannot);
// Retain keeps both. It only ever removes a directory directly in
// StorageDir whose name starts with the volume's name, whatever the
// volume says its path is.
//
// As local-path-provisioner, a class annotation defaultVolumeType, or a
// claim annotation volumeType, of "local" makes local volumes instead of
// hostPath ones. The provisioner's other settings (its config map's node
// paths, pathPattern, shared file systems, helper pods) are not there:
// one directory per node, StorageDir (k3s's --default-local-storage-path).
// Sizes are not enforced, as upstream's.
package localpath

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	storagehelpers "k8s.io/component-helpers/storage/volume"
	"k8s.io/utils/ptr"
)

// Annotations of local-path-provisioner's own (upstream's are
// component-helpers' storagehelpers.Ann* constants).
const (
	// annNode is local-path-provisioner's record of a volume's node.
	annNode = "local.path.provisioner/selected-node"
	// annDefaultVolumeType (on the class) and annVolumeType (on the claim)
	// choose between hostPath and local volumes.
	annDefaultVolumeType = "defaultVolumeType"
	annVolumeType        = "volumeType"
)

// workers is how many claims and volumes are handled at once.
const workers = 2

// Config is what Run needs.
type Config struct {
	// Client reaches the API with the node's credentials (required).
	Client kubernetes.Interface
	// NodeName is this node's name: Run handles the claims scheduled to it
	// and the volumes it made (required).
	NodeName string
	// StorageDir is where the volumes' directories are, an absolute path
	// (required; the agent's default is <data-dir>/storage, as k3s's
	// /var/lib/rancher/k3s/storage). Run makes it when it first needs it.
	StorageDir string
	// Recorder records the events on claims and volumes (default: one of
	// Run's own, whose source is EventComponent(NodeName)).
	Recorder record.EventRecorder
	// Logger receives the provisioner's logs (default: discarded).
	Logger *slog.Logger
}

// EventComponent is the source component of the provisioner's events:
// the provisioner's name and the node's, as local-path-provisioner's
// events name the provisioner and its pod.
func EventComponent(nodeName string) string {
	return ProvisionerName + "_" + nodeName
}

func (c Config) validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("no API client"))
	}
	if c.NodeName == "" {
		errs = append(errs, errors.New("no node name"))
	}
	if !filepath.IsAbs(c.StorageDir) || filepath.Clean(c.StorageDir) == "/" {
		errs = append(errs, fmt.Errorf("the storage directory %q is not an absolute path below / (--default-local-storage-path)", c.StorageDir))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("local-path provisioner: %w", err)
	}
	return nil
}

// Run provisions and deletes the node's local-path volumes until ctx
// ends, then returns nil; it returns an error at once when cfg is
// invalid. Failures to provision or delete are events, logs and retries.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	cfg.StorageDir = filepath.Clean(cfg.StorageDir)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Recorder == nil {
		broadcaster := record.NewBroadcaster(record.WithContext(ctx))
		defer broadcaster.Shutdown()
		broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cfg.Client.CoreV1().Events("")})
		cfg.Recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: EventComponent(cfg.NodeName)})
	}

	factory := informers.NewSharedInformerFactory(cfg.Client, 0)
	claims := factory.Core().V1().PersistentVolumeClaims()
	volumes := factory.Core().V1().PersistentVolumes()
	classes := factory.Storage().V1().StorageClasses()
	p := &provisioner{
		cfg: cfg, log: cfg.Logger,
		claims: claims.Lister(), volumes: volumes.Lister(), classes: classes.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[item](),
			workqueue.TypedRateLimitingQueueConfig[item]{Name: "local-path"}),
	}
	if _, err := claims.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: p.claimChanged, UpdateFunc: func(_, obj any) { p.claimChanged(obj) },
	}); err != nil {
		return fmt.Errorf("local-path provisioner: %w", err)
	}
	if _, err := volumes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: p.volumeChanged, UpdateFunc: func(_, obj any) { p.volumeChanged(obj) },
	}); err != nil {
		return fmt.Errorf("local-path provisioner: %w", err)
	}
	classes.Informer() // register it before Start
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	p.log.Info("local-path provisioner started", "provisioner", ProvisionerName, "node", cfg.NodeName, "dir", cfg.StorageDir)
	p.run(ctx, claims.Informer().HasSynced, volumes.Informer().HasSynced, classes.Informer().HasSynced)
	return nil
}

// item is a key in the queue: a volume's name, or a claim's
// namespace/name.
type item struct {
	volume bool
	key    string
}

// provisioner is one Run's state.
type provisioner struct {
	cfg     Config
	log     *slog.Logger
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	classes storagelisters.StorageClassLister
	queue   workqueue.TypedRateLimitingInterface[item]
}

// claimChanged queues a claim that waits for a volume on this node.
func (p *provisioner) claimChanged(obj any) {
	claim, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok || claim.Spec.VolumeName != "" || claim.Annotations[storagehelpers.AnnSelectedNode] != p.cfg.NodeName {
		return
	}
	p.queue.Add(item{key: claim.Namespace + "/" + claim.Name})
}

// volumeChanged queues a volume the provisioner made on this node.
func (p *provisioner) volumeChanged(obj any) {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok || !p.ours(pv) {
		return
	}
	p.queue.Add(item{volume: true, key: pv.Name})
}

// run waits for the caches, then handles the queue with workers
// goroutines, retrying failures with the queue's backoff, until ctx ends.
func (p *provisioner) run(ctx context.Context, synced ...cache.InformerSynced) {
	defer p.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	context.AfterFunc(ctx, p.queue.ShutDown)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				it, quit := p.queue.Get()
				if quit {
					return
				}
				var err error
				if it.volume {
					err = p.syncVolume(ctx, it.key)
				} else {
					err = p.syncClaim(ctx, it.key)
				}
				switch {
				case err == nil:
					p.queue.Forget(it)
				case ctx.Err() != nil:
				default:
					p.log.Warn("retrying", "volume", it.volume, "key", it.key, "err", err)
					p.queue.AddRateLimited(it)
				}
				p.queue.Done(it)
			}
		})
	}
	wg.Wait()
}

// syncClaim provisions the claim's volume when the claim is this
// provisioner's to serve on this node and has none yet.
func (p *provisioner) syncClaim(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	claim, err := p.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if claim.Spec.VolumeName != "" || claim.DeletionTimestamp != nil || claim.Annotations[storagehelpers.AnnSelectedNode] != p.cfg.NodeName {
		return nil
	}
	if prov, ok := claimProvisioner(claim); ok && prov != ProvisionerName {
		return nil
	}
	className := storagehelpers.GetPersistentVolumeClaimClass(claim)
	if className == "" {
		return nil // no class, no dynamic provisioning
	}
	class, err := p.classes.Get(className)
	if apierrors.IsNotFound(err) {
		// It may come (again): retry.
		return fmt.Errorf("claim %q: storageclass %q not found", key, className)
	}
	if err != nil {
		return err
	}
	if class.Provisioner != ProvisionerName {
		return nil
	}
	pvName := volumeName(claim)
	if _, err := p.volumes.Get(pvName); err == nil {
		return nil // provisioned already
	}
	if msg := refusal(claim, class); msg != "" {
		p.log.Warn("not provisioning a volume for the claim", "claim", key, "reason", msg)
		p.cfg.Recorder.Event(claim, corev1.EventTypeWarning, "ProvisioningFailed", msg)
		return nil // the claim cannot change so that it would do
	}

	p.cfg.Recorder.Event(claim, corev1.EventTypeNormal, "Provisioning",
		fmt.Sprintf("External provisioner is provisioning volume for claim %q", key))
	pv, err := p.provision(ctx, claim, class, pvName)
	if err == nil {
		_, err = p.cfg.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			p.cfg.Recorder.Event(claim, corev1.EventTypeWarning, "ProvisioningFailed",
				fmt.Sprintf("failed to provision volume with StorageClass %q: %v", className, err))
		}
		return err
	}
	p.log.Info("provisioned a volume", "claim", key, "volume", pvName, "path", volumePath(pv))
	p.cfg.Recorder.Event(claim, corev1.EventTypeNormal, "ProvisioningSucceeded", "Successfully provisioned volume "+pvName)
	return nil
}

// claimProvisioner is the provisioner the PV controller named for the
// claim, if it named one.
func claimProvisioner(claim *corev1.PersistentVolumeClaim) (string, bool) {
	if p, ok := claim.Annotations[storagehelpers.AnnStorageProvisioner]; ok {
		return p, true
	}
	p, ok := claim.Annotations[storagehelpers.AnnBetaStorageProvisioner]
	return p, ok
}

// volumeName is the name of the claim's volume, as upstream's
// provisioners name it.
func volumeName(claim *corev1.PersistentVolumeClaim) string {
	return "pvc-" + string(claim.UID)
}

// refusal says why a volume cannot be made for the claim on a node path,
// in local-path-provisioner's words, or "" when it can.
func refusal(claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass) string {
	if claim.Spec.VolumeMode != nil && *claim.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		return ProvisionerName + " does not support block volume provisioning"
	}
	var why string
	if claim.Spec.Selector != nil {
		why = "claim.Spec.Selector is not supported"
	}
	for _, m := range claim.Spec.AccessModes {
		if why == "" && m != corev1.ReadWriteOnce && m != corev1.ReadWriteOncePod {
			why = "NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes"
		}
	}
	if _, err := volumeSource(volumeType(claim, class), "/"); why == "" && err != nil {
		why = err.Error()
	}
	if why == "" {
		return ""
	}
	return fmt.Sprintf("failed to provision volume with StorageClass %q: %s", class.Name, why)
}

// volumeType is "hostPath" unless the class or the claim asks for
// another, as local-path-provisioner chooses.
func volumeType(claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass) string {
	t := "hostPath"
	if v, ok := class.Annotations[annDefaultVolumeType]; ok {
		t = v
	}
	if v, ok := claim.Annotations[annVolumeType]; ok {
		t = v
	}
	return t
}

// volumeSource is a volume of type at path.
func volumeSource(volumeType, path string) (corev1.PersistentVolumeSource, error) {
	switch strings.ToLower(volumeType) {
	case "hostpath":
		return corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
			Path: path, Type: ptr.To(corev1.HostPathDirectoryOrCreate),
		}}, nil
	case "local":
		return corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: path}}, nil
	}
	return corev1.PersistentVolumeSource{}, fmt.Errorf("failed to create persistent volume source: %q is not a recognised volume type", volumeType)
}

// provision makes the claim's directory and returns its volume.
func (p *provisioner) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, pvName string) (*corev1.PersistentVolume, error) {
	dir := filepath.Join(p.cfg.StorageDir, strings.Join([]string{pvName, claim.Namespace, claim.Name}, "_"))
	if err := p.makeDir(dir); err != nil {
		return nil, err
	}
	src, err := volumeSource(volumeType(claim, class), dir)
	if err != nil {
		return nil, err
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        pvName,
			Annotations: map[string]string{annNode: p.cfg.NodeName, storagehelpers.AnnDynamicallyProvisioned: ProvisionerName},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage]},
			PersistentVolumeSource:        src,
			AccessModes:                   claim.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			VolumeMode:                    ptr.To(corev1.PersistentVolumeFilesystem),
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID, ResourceVersion: claim.ResourceVersion,
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{p.hostnameLabel(ctx)},
				}}}},
			}},
		},
	}, nil
}

// makeDir makes a volume's directory, mode 0777, in StorageDir, mode 0700,
// as k3s's setup script does; one that exists already is fine.
func (p *provisioner) makeDir(dir string) error {
	if err := os.MkdirAll(p.cfg.StorageDir, 0o700); err != nil {
		return fmt.Errorf("make the storage directory: %w", err)
	}
	if err := os.Chmod(p.cfg.StorageDir, 0o700); err != nil {
		return fmt.Errorf("make the storage directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("make the volume's directory: %w", err)
	}
	if fi, err := os.Lstat(dir); err != nil {
		return fmt.Errorf("make the volume's directory: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("make the volume's directory: %s exists and is not a directory", dir)
	}
	// Past the umask.
	if err := os.Chmod(dir, 0o777); err != nil {
		return fmt.Errorf("make the volume's directory: %w", err)
	}
	return nil
}

// hostnameLabel is this node's kubernetes.io/hostname label, which the
// volume's node affinity names, or the node's name when it has none (as
// local-path-provisioner).
func (p *provisioner) hostnameLabel(ctx context.Context) string {
	node, err := p.cfg.Client.CoreV1().Nodes().Get(ctx, p.cfg.NodeName, metav1.GetOptions{})
	if err == nil {
		if v, ok := node.Labels[corev1.LabelHostname]; ok && v != "" {
			return v
		}
	}
	return p.cfg.NodeName
}

// ours reports whether the volume is one this provisioner made on this
// node.
func (p *provisioner) ours(pv *corev1.PersistentVolume) bool {
	return pv.Annotations[storagehelpers.AnnDynamicallyProvisioned] == ProvisionerName && volumeNode(pv) == p.cfg.NodeName
}

// volumeNode is the node of a local-path volume: its annotation, or else
// the value of its node affinity's kubernetes.io/hostname (In, one value).
func volumeNode(pv *corev1.PersistentVolume) string {
	if n, ok := pv.Annotations[annNode]; ok {
		return n
	}
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			if e.Key == corev1.LabelHostname && e.Operator == corev1.NodeSelectorOpIn && len(e.Values) == 1 {
				return e.Values[0]
			}
		}
	}
	return ""
}

// volumePath is the path of a hostPath or local volume ("" for others).
func volumePath(pv *corev1.PersistentVolume) string {
	switch s := pv.Spec.PersistentVolumeSource; {
	case s.HostPath != nil:
		return s.HostPath.Path
	case s.Local != nil:
		return s.Local.Path
	}
	return ""
}

// syncVolume removes the directory of a Released volume whose reclaim
// policy is Delete, then deletes the volume.
func (p *provisioner) syncVolume(ctx context.Context, name string) error {
	pv, err := p.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !p.ours(pv) || pv.DeletionTimestamp != nil || pv.Status.Phase != corev1.VolumeReleased {
		return nil
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		p.log.Debug("retained volume", "volume", pv.Name)
		return nil
	}
	path := volumePath(pv)
	if err := p.checkVolumePath(pv, path); err != nil {
		// Not to be retried: the path stays what it is.
		p.log.Warn("not deleting the volume", "volume", pv.Name, "err", err)
		p.cfg.Recorder.Event(pv, corev1.EventTypeWarning, "VolumeFailedDelete", fmt.Sprintf("failed to delete volume %s: %v", pv.Name, err))
		return nil
	}
	p.log.Info("deleting volume", "volume", pv.Name, "path", path)
	if err := os.RemoveAll(path); err != nil {
		p.cfg.Recorder.Event(pv, corev1.EventTypeWarning, "VolumeFailedDelete", fmt.Sprintf("failed to delete volume %s: %v", pv.Name, err))
		return err
	}
	err = p.cfg.Client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pv.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete persistentvolume %q: %w", pv.Name, err)
	}
	return nil
}

// checkVolumePath refuses to remove anything but a directory this
// provisioner made for the volume: one directly in StorageDir, named
// after the volume. A volume's path is only what the volume says, which
// anyone who may write volumes may say.
func (p *provisioner) checkVolumePath(pv *corev1.PersistentVolume, path string) error {
	rel, err := filepath.Rel(p.cfg.StorageDir, filepath.Clean(path))
	if path == "" || !filepath.IsAbs(path) || err != nil || rel != filepath.Base(rel) ||
		(rel != pv.Name && !strings.HasPrefix(rel, pv.Name+"_")) {
		return fmt.Errorf("its path %q is not a volume directory of %s in %s: not removing it", path, ProvisionerName, p.cfg.StorageDir)
	}
	return nil
}
