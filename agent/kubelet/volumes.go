package kubelet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"labctl/internal/mountinfo"
)

// Pod volumes (volumes.go): the volumes of a pod, made ready on the node
// by SetUp and bind-mounted into its containers by the mounts Mounts
// returns. Each lives where upstream's kubelet keeps it:
//
//	<PodsDir>/<uid>/volumes/
//	├── kubernetes.io~empty-dir/<name>/     a directory, or a tmpfs (medium Memory)
//	├── kubernetes.io~configmap/<name>/     files (below), on the disk
//	├── kubernetes.io~secret/<name>/        files, on a tmpfs
//	├── kubernetes.io~downward-api/<name>/  files, on the disk
//	└── kubernetes.io~projected/<name>/     files, on a tmpfs
//
// hostPath volumes are the node's paths themselves. The files volumes
// (configMap, secret, downwardAPI, projected) are written as upstream's
// AtomicWriter writes them, so that a running container sees an update
// all at once:
//
//	<volume>/..2024_05_01_10_00_00.123456789/  the content, mode 0755
//	<volume>/..data -> ..2024_05_01_10_00_00.123456789
//	<volume>/<key> -> ..data/<key>             what the container lists
//
// An update writes a new timestamped directory, renames a new ..data
// link over the old one and removes the old directory. Containers mount
// the files volumes read-only, as upstream; a subPath of one is the file
// of the moment and does not follow updates (as upstream).
//
// Secret and projected volumes and Memory emptyDirs are tmpfs mounts in
// the pod's directory: TearDown unmounts them, and must run before
// anything removes the pod's directory.

// The volume plugins' directory names.
const (
	pluginEmptyDir    = "kubernetes.io~empty-dir"
	pluginConfigMap   = "kubernetes.io~configmap"
	pluginSecret      = "kubernetes.io~secret"
	pluginDownwardAPI = "kubernetes.io~downward-api"
	pluginProjected   = "kubernetes.io~projected"
)

// defaultFileMode is a projected file's mode when the volume gives none
// (the API's default, 0644).
const defaultFileMode int32 = 0o644

// volumeConfig configures a volumeManager.
type volumeConfig struct {
	// PodsDir holds the pods' directories (the runtime's Root/pods); a
	// pod's volumes are under PodsDir/<uid>/volumes. Required.
	PodsDir string
	// Objects gives the ConfigMaps, Secrets and service account tokens
	// the volumes project. Required for those volumes.
	Objects podObjects
	// NodeName is the node's name, in log messages.
	NodeName string
	// NodeAllocatable, when set, gives the node's allocatable resources,
	// which stand for the limits a container does not set in downward
	// API files (resourceFieldRef). Nil leaves those at 0.
	NodeAllocatable func() corev1.ResourceList
	// Logger receives the volumes' messages (default: discarded).
	Logger *slog.Logger
}

// volumeManager sets up, mounts and tears down pods' volumes.
type volumeManager struct {
	cfg volumeConfig

	mu      sync.Mutex
	locks   map[types.UID]*sync.Mutex       // one per pod: SetUp and TearDown of a pod never overlap
	claimed map[types.UID]map[string]string // a pod's claim volumes: the node's path of each
}

func newVolumeManager(cfg volumeConfig) *volumeManager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &volumeManager{cfg: cfg, locks: map[types.UID]*sync.Mutex{}, claimed: map[types.UID]map[string]string{}}
}

// lock locks the pod's volumes and returns the unlock.
func (v *volumeManager) lock(uid types.UID) func() {
	v.mu.Lock()
	l := v.locks[uid]
	if l == nil {
		l = &sync.Mutex{}
		v.locks[uid] = l
	}
	v.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func checkUID(uid types.UID) error {
	if uid == "" || strings.ContainsAny(string(uid), "/.") {
		return fmt.Errorf("bad pod UID %q", uid)
	}
	return nil
}

// volumesDir is the pod's volumes directory.
func (v *volumeManager) volumesDir(uid types.UID) string {
	return filepath.Join(v.cfg.PodsDir, string(uid), "volumes")
}

func (v *volumeManager) volumeDir(uid types.UID, plugin, name string) string {
	return filepath.Join(v.volumesDir(uid), plugin, name)
}

// SetUp makes every volume of the pod ready under PodsDir/<uid>/volumes.
// It is idempotent and meant to run on every sync of the pod: the files
// volumes are rewritten (atomically) whenever their objects or the pod's
// labels and annotations changed, and a projected token is renewed when
// it is due. It goes on past a failing volume; each failure reads as
// upstream's FailedMount event message (`MountVolume.SetUp failed for
// volume "cfg" : configmap "x" not found`), several joined by
// errors.Join. A failing volume keeps the content it had.
func (v *volumeManager) SetUp(ctx context.Context, pod *corev1.Pod) error {
	if err := checkUID(pod.UID); err != nil {
		return err
	}
	defer v.lock(pod.UID)()
	var errs []error
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		if err := v.setUpVolume(ctx, pod, vol); err != nil {
			errs = append(errs, fmt.Errorf("MountVolume.SetUp failed for volume %q : %w", vol.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (v *volumeManager) setUpVolume(ctx context.Context, pod *corev1.Pod, vol *corev1.Volume) error {
	src := &vol.VolumeSource
	var (
		plugin  string
		onTmpfs bool
		files   map[string]fileProjection
		err     error
	)
	switch {
	case src.EmptyDir != nil:
		return v.setUpEmptyDir(pod, vol.Name, src.EmptyDir)
	case src.HostPath != nil:
		return checkHostPath(src.HostPath)
	case src.PersistentVolumeClaim != nil:
		return v.setUpClaim(ctx, pod, vol.Name, src.PersistentVolumeClaim.ClaimName, false)
	case src.Ephemeral != nil:
		return v.setUpClaim(ctx, pod, vol.Name, pod.Name+"-"+vol.Name, true)
	case src.ConfigMap != nil:
		plugin = pluginConfigMap
		s := src.ConfigMap
		var cm *corev1.ConfigMap
		if cm, err = v.configMap(ctx, pod.Namespace, s.Name, isTrue(s.Optional)); err != nil {
			return err
		}
		files, err = configMapFiles(s.Items, cm, fileMode(s.DefaultMode), isTrue(s.Optional))
	case src.Secret != nil:
		plugin, onTmpfs = pluginSecret, true
		s := src.Secret
		var secret *corev1.Secret
		if secret, err = v.secret(ctx, pod.Namespace, s.SecretName, isTrue(s.Optional)); err != nil {
			return err
		}
		files, err = secretFiles(s.Items, secret, fileMode(s.DefaultMode), isTrue(s.Optional))
	case src.DownwardAPI != nil:
		plugin = pluginDownwardAPI
		files, err = v.downwardAPIFiles(pod, src.DownwardAPI.Items, fileMode(src.DownwardAPI.DefaultMode))
	case src.Projected != nil:
		plugin, onTmpfs = pluginProjected, true
		files, err = v.projectedFiles(ctx, pod, src.Projected)
	default:
		return fmt.Errorf("%s volumes are not supported by labctl (emptyDir, hostPath, configMap, secret, downwardAPI and projected are)", volumeKind(src))
	}
	if err != nil {
		return err
	}

	dir := v.volumeDir(pod.UID, plugin, vol.Name)
	if _, err := makeVolumeDir(dir, onTmpfs, ""); err != nil {
		return err
	}
	var setPerms func() error
	if gid := fsGroup(pod); gid != nil {
		setPerms = func() error { return setOwnership(dir, *gid, true) }
	}
	changed, err := writeAtomic(dir, files, setPerms)
	if err != nil {
		return err
	}
	if changed {
		v.cfg.Logger.Debug("volume content written", "pod", pod.Namespace+"/"+pod.Name, "volume", vol.Name, "node", v.cfg.NodeName)
	}
	return nil
}

// setUpClaim finds the node's path of the volume bound to a pod's claim
// (hostPath and local volumes, which local-path provisions, are
// supported) and checks it as that volume type does.
func (v *volumeManager) setUpClaim(ctx context.Context, pod *corev1.Pod, volName, claim string, ephemeral bool) error {
	pvc, err := v.cfg.Objects.PersistentVolumeClaim(ctx, pod.Namespace, claim)
	if err != nil {
		return err
	}
	if ephemeral && !metav1.IsControlledBy(pvc, pod) {
		return fmt.Errorf("PVC %s/%s was not created for pod %s/%s (pod is not owner)", pod.Namespace, claim, pod.Namespace, pod.Name)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return fmt.Errorf("PVC %s/%s has non-bound phase (%q) or empty pvc.Spec.VolumeName (%q)",
			pvc.Namespace, pvc.Name, pvc.Status.Phase, pvc.Spec.VolumeName)
	}
	pv, err := v.cfg.Objects.PersistentVolume(ctx, pvc.Spec.VolumeName)
	if err != nil {
		return err
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != pvc.UID {
		return fmt.Errorf("expected volume %q to be bound to claim %s/%s (UID %s)", pv.Name, pvc.Namespace, pvc.Name, pvc.UID)
	}
	var path string
	switch src := &pv.Spec.PersistentVolumeSource; {
	case src.HostPath != nil:
		if err := checkHostPath(src.HostPath); err != nil {
			return err
		}
		path = src.HostPath.Path
	case src.Local != nil:
		path = src.Local.Path
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("path %q does not exist", path)
		}
	default:
		return fmt.Errorf("volume %q: %s volumes are not supported by labctl (hostPath and local are)", pv.Name, setField(src))
	}
	v.mu.Lock()
	if v.claimed[pod.UID] == nil {
		v.claimed[pod.UID] = map[string]string{}
	}
	v.claimed[pod.UID][volName] = path
	v.mu.Unlock()
	return nil
}

// volumeKind is the API name of the volume's source ("nfs", "persistentVolumeClaim"...).
func volumeKind(src *corev1.VolumeSource) string { return setField(src) }

// setField is the JSON name of the first non-nil pointer field of the
// struct that ptr points to: which member of a one-of source is set.
func setField(ptr any) string {
	rv := reflect.ValueOf(ptr).Elem()
	for i := 0; i < rv.NumField(); i++ {
		if f := rv.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return "empty"
}

func fsGroup(pod *corev1.Pod) *int64 {
	if sc := pod.Spec.SecurityContext; sc != nil {
		return sc.FSGroup
	}
	return nil
}

func fileMode(m *int32) int32 {
	if m != nil {
		return *m
	}
	return defaultFileMode
}

// configMap and secret return an empty object for a missing optional one.
func (v *volumeManager) configMap(ctx context.Context, ns, name string, optional bool) (*corev1.ConfigMap, error) {
	cm, err := v.cfg.Objects.ConfigMap(ctx, ns, name)
	if err != nil {
		if apierrors.IsNotFound(err) && optional {
			return &corev1.ConfigMap{}, nil
		}
		return nil, err
	}
	return cm, nil
}

func (v *volumeManager) secret(ctx context.Context, ns, name string, optional bool) (*corev1.Secret, error) {
	s, err := v.cfg.Objects.Secret(ctx, ns, name)
	if err != nil {
		if apierrors.IsNotFound(err) && optional {
			return &corev1.Secret{}, nil
		}
		return nil, err
	}
	return s, nil
}

// setUpEmptyDir makes the emptyDir's directory, a tmpfs for medium
// Memory (of sizeLimit's size when set), mode 0777 as upstream, owned by
// the pod's fsGroup when it has one.
func (v *volumeManager) setUpEmptyDir(pod *corev1.Pod, name string, ed *corev1.EmptyDirVolumeSource) error {
	var memory bool
	var opts string
	switch ed.Medium {
	case corev1.StorageMediumDefault:
	case corev1.StorageMediumMemory:
		memory = true
		if ed.SizeLimit != nil && ed.SizeLimit.Value() > 0 {
			opts = "size=" + strconv.FormatInt(ed.SizeLimit.Value(), 10)
		}
	default:
		return fmt.Errorf("emptyDir medium %q is not supported by labctl", ed.Medium)
	}
	dir := v.volumeDir(pod.UID, pluginEmptyDir, name)
	created, err := makeVolumeDir(dir, memory, opts)
	if err != nil {
		return err
	}
	if gid := fsGroup(pod); created && gid != nil {
		return setOwnership(dir, *gid, false)
	}
	return nil
}

// makeVolumeDir makes a volume's directory (mode 0777), with a tmpfs
// mounted on it when onTmpfs (with the mount options opts). It tells
// whether it made the directory or the mount now.
func makeVolumeDir(dir string, onTmpfs bool, opts string) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return false, err
	}
	created := false
	if err := os.Mkdir(dir, 0o777); err == nil {
		created = true
	} else if !errors.Is(err, fs.ErrExist) {
		return false, err
	}
	if onTmpfs {
		mounted, err := isMountPoint(dir)
		if err != nil {
			return false, err
		}
		if !mounted {
			if err := unix.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
				return false, fmt.Errorf("mount a tmpfs on %s: %w", dir, err)
			}
			created = true
		}
	}
	if created {
		// Not what the umask leaves.
		if err := os.Chmod(dir, 0o777); err != nil {
			return false, err
		}
	}
	return created, nil
}

// isMountPoint tells whether dir is the root of a file system other than
// its parent's (the tmpfs volumes).
func isMountPoint(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return false, err
	}
	if err := unix.Lstat(filepath.Dir(dir), &parent); err != nil {
		return false, err
	}
	return st.Dev != parent.Dev, nil
}

// setOwnership gives everything under root to group gid, as upstream's
// SetVolumeOwnership: group read (and write unless readOnly), and the
// setgid bit on directories so that new files get the group too.
func setOwnership(root string, gid int64, readOnly bool) error {
	mask := fs.FileMode(0o660)
	if readOnly {
		mask = 0o440
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		uid := -1
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			uid = int(st.Uid)
		}
		if err := os.Lchown(path, uid, int(gid)); err != nil {
			return err
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			return nil
		}
		m := mask
		if d.IsDir() {
			m |= fs.ModeSetgid | 0o110
		}
		return os.Chmod(path, info.Mode()|m)
	})
}

// checkHostPath checks (or makes) a hostPath volume's path by its type,
// with upstream's messages.
func checkHostPath(hp *corev1.HostPathVolumeSource) error {
	path := hp.Path
	if err := noBacksteps(path); err != nil {
		return fmt.Errorf("invalid HostPath `%s`: %v", path, err)
	}
	t := corev1.HostPathUnset
	if hp.Type != nil {
		t = *hp.Type
	}
	exists := func() bool { _, err := os.Stat(path); return err == nil }
	switch t {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if !exists() {
			return os.MkdirAll(path, 0o755)
		}
		return hostPathIs(path, corev1.HostPathDirectory, "directory")
	case corev1.HostPathDirectory:
		return hostPathIs(path, corev1.HostPathDirectory, "directory")
	case corev1.HostPathFileOrCreate:
		if !exists() {
			f, err := os.OpenFile(path, os.O_CREATE, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
		return hostPathIs(path, corev1.HostPathFile, "file")
	case corev1.HostPathFile:
		return hostPathIs(path, corev1.HostPathFile, "file")
	case corev1.HostPathSocket:
		return hostPathIs(path, corev1.HostPathSocket, "socket file")
	case corev1.HostPathCharDev:
		return hostPathIs(path, corev1.HostPathCharDev, "character device")
	case corev1.HostPathBlockDev:
		return hostPathIs(path, corev1.HostPathBlockDev, "block device")
	}
	return fmt.Errorf("%s is an invalid volume type", t)
}

func hostPathIs(path string, want corev1.HostPathType, desc string) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("hostPath %s doesn't exist", path)
	}
	if err != nil {
		return fmt.Errorf("hostPath type check failed, %s is not a %s, unable to determine its type: %w", path, desc, err)
	}
	var got corev1.HostPathType
	switch m := info.Mode(); {
	case m.IsDir():
		got = corev1.HostPathDirectory
	case m.IsRegular():
		got = corev1.HostPathFile
	case m&fs.ModeSocket != 0:
		got = corev1.HostPathSocket
	case m&fs.ModeCharDevice != 0:
		got = corev1.HostPathCharDev
	case m&fs.ModeDevice != 0:
		got = corev1.HostPathBlockDev
	default:
		return fmt.Errorf("hostPath type check failed, %s is not a %s, unable to determine its type: only recognise file, directory, socket, block device and character device", path, desc)
	}
	if got != want {
		return fmt.Errorf("hostPath type check failed: %s is not a %s, it's a %s", path, desc, got)
	}
	return nil
}

func noBacksteps(path string) error {
	for _, part := range strings.Split(filepath.ToSlash(path), "/") {
		if part == ".." {
			return errors.New("must not contain '..'")
		}
	}
	return nil
}

// fileProjection is one file of a files volume.
type fileProjection struct {
	data []byte
	mode int32
}

// configMapFiles are a configMap volume's (or projection's) files: every
// key, or the items, with upstream's message for a missing key.
func configMapFiles(items []corev1.KeyToPath, cm *corev1.ConfigMap, defaultMode int32, optional bool) (map[string]fileProjection, error) {
	out := map[string]fileProjection{}
	if len(items) == 0 {
		for k, d := range cm.Data {
			out[k] = fileProjection{[]byte(d), defaultMode}
		}
		for k, d := range cm.BinaryData {
			out[k] = fileProjection{d, defaultMode}
		}
		return out, nil
	}
	for _, it := range items {
		var data []byte
		if d, ok := cm.Data[it.Key]; ok {
			data = []byte(d)
		} else if d, ok := cm.BinaryData[it.Key]; ok {
			data = d
		} else {
			if optional {
				continue
			}
			return nil, fmt.Errorf("configmap references non-existent config key: %s", it.Key)
		}
		out[it.Path] = fileProjection{data, itemMode(it.Mode, defaultMode)}
	}
	return out, nil
}

// secretFiles are a secret volume's (or projection's) files.
func secretFiles(items []corev1.KeyToPath, s *corev1.Secret, defaultMode int32, optional bool) (map[string]fileProjection, error) {
	out := map[string]fileProjection{}
	if len(items) == 0 {
		for k, d := range s.Data {
			out[k] = fileProjection{d, defaultMode}
		}
		return out, nil
	}
	for _, it := range items {
		d, ok := s.Data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("references non-existent secret key: %s", it.Key)
		}
		out[it.Path] = fileProjection{d, itemMode(it.Mode, defaultMode)}
	}
	return out, nil
}

func itemMode(m *int32, defaultMode int32) int32 {
	if m != nil {
		return *m
	}
	return defaultMode
}

// downwardAPIFiles are a downwardAPI volume's (or projection's) files:
// the pod's metadata, the containers' resources.
func (v *volumeManager) downwardAPIFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defaultMode int32) (map[string]fileProjection, error) {
	out := map[string]fileProjection{}
	var errs aggregate
	var limited *corev1.Pod
	for _, it := range items {
		var val string
		var err error
		switch {
		case it.FieldRef != nil:
			val, err = podFieldValue(pod, it.FieldRef, nil, nil)
		case it.ResourceFieldRef != nil:
			if limited == nil {
				var alloc corev1.ResourceList
				if v.cfg.NodeAllocatable != nil {
					alloc = v.cfg.NodeAllocatable()
				}
				limited = withDefaultLimits(pod, alloc)
			}
			val, err = containerResourceValue(it.ResourceFieldRef, limited, nil)
		}
		if err != nil {
			errs = append(errs, err)
		}
		out[filepath.Clean(it.Path)] = fileProjection{[]byte(val), itemMode(it.Mode, defaultMode)}
	}
	return out, errs.err()
}

// projectedFiles are a projected volume's files, its sources' in order.
func (v *volumeManager) projectedFiles(ctx context.Context, pod *corev1.Pod, src *corev1.ProjectedVolumeSource) (map[string]fileProjection, error) {
	defaultMode := fileMode(src.DefaultMode)
	out := map[string]fileProjection{}
	var errs aggregate
	add := func(files map[string]fileProjection, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		for p, f := range files {
			out[p] = f
		}
	}
	for _, s := range src.Sources {
		switch {
		case s.ConfigMap != nil:
			optional := isTrue(s.ConfigMap.Optional)
			cm, err := v.configMap(ctx, pod.Namespace, s.ConfigMap.Name, optional)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			add(configMapFiles(s.ConfigMap.Items, cm, defaultMode, optional))
		case s.Secret != nil:
			optional := isTrue(s.Secret.Optional)
			secret, err := v.secret(ctx, pod.Namespace, s.Secret.Name, optional)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			add(secretFiles(s.Secret.Items, secret, defaultMode, optional))
		case s.DownwardAPI != nil:
			add(v.downwardAPIFiles(pod, s.DownwardAPI.Items, defaultMode))
		case s.ServiceAccountToken != nil:
			token, err := v.cfg.Objects.ServiceAccountToken(ctx, pod, s.ServiceAccountToken)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			mode := defaultMode
			if fsGroup(pod) != nil {
				mode = 0o600 // setOwnership makes it 0640, as upstream
			}
			out[s.ServiceAccountToken.Path] = fileProjection{[]byte(token), mode}
		case s.ClusterTrustBundle != nil:
			errs = append(errs, errors.New("clusterTrustBundle projections are not supported by labctl"))
		case s.PodCertificate != nil:
			errs = append(errs, errors.New("podCertificate projections are not supported by labctl"))
		}
	}
	return out, errs.err()
}

// aggregate is several errors as upstream's utilerrors aggregate shows
// them: one alone, or "[a, b]".
type aggregate []error

func (a aggregate) err() error {
	if len(a) == 0 {
		return nil
	}
	return a
}

func (a aggregate) Error() string {
	if len(a) == 1 {
		return a[0].Error()
	}
	seen := map[string]bool{}
	var msgs []string
	for _, e := range a {
		if m := e.Error(); !seen[m] {
			seen[m] = true
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 1 {
		return msgs[0]
	}
	return "[" + strings.Join(msgs, ", ") + "]"
}

func (a aggregate) Unwrap() []error { return a }

// The files volumes' reserved names.
const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
)

// writeAtomic writes payload into dir as upstream's AtomicWriter does
// (see the top of this file), unless dir shows that content already. It
// calls setPerms, when not nil, once the new files are written and
// before they show. It tells whether it wrote.
func writeAtomic(dir string, payload map[string]fileProjection, setPerms func() error) (bool, error) {
	clean := make(map[string]fileProjection, len(payload))
	for p, f := range payload {
		if err := validatePayloadPath(p); err != nil {
			return false, err
		}
		clean[filepath.Clean(p)] = f
	}

	dataDir := filepath.Join(dir, dataDirName)
	oldTs, err := os.Readlink(dataDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read the data link: %w", err)
	}
	var remove []string
	if oldTs != "" {
		oldPath := filepath.Join(dir, oldTs)
		if remove, err = pathsToRemove(clean, oldPath); err != nil {
			return false, err
		}
		same, err := sameContent(clean, oldPath)
		if err != nil {
			return false, err
		}
		if same && len(remove) == 0 {
			return false, nil
		}
	}

	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	tsName := filepath.Base(tsDir)
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tsDir)
		}
	}()
	// 0755 lets the group and others walk the tree, whatever the umask.
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return false, err
	}
	for _, p := range sortedKeys(clean) {
		f := clean[p]
		full := filepath.Join(tsDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return false, err
		}
		mode := fs.FileMode(f.mode) & fs.ModePerm
		if err := os.WriteFile(full, f.data, mode); err != nil {
			return false, err
		}
		if err := os.Chmod(full, mode); err != nil {
			return false, err
		}
	}
	if setPerms != nil {
		if err := setPerms(); err != nil {
			return false, err
		}
	}
	for _, p := range sortedKeys(clean) {
		top, _, _ := strings.Cut(p, "/")
		visible := filepath.Join(dir, top)
		if _, err := os.Lstat(visible); errors.Is(err, fs.ErrNotExist) {
			if err := os.Symlink(filepath.Join(dataDirName, top), visible); err != nil {
				return false, err
			}
		}
	}
	tmpLink := filepath.Join(dir, newDataDirName)
	os.Remove(tmpLink) // left by a write that failed half-way
	if err := os.Symlink(tsName, tmpLink); err != nil {
		return false, err
	}
	if err := os.Rename(tmpLink, dataDir); err != nil {
		os.Remove(tmpLink)
		return false, err
	}
	ok = true

	var errs []error
	for _, p := range remove {
		if !strings.Contains(p, "/") {
			if err := os.Remove(filepath.Join(dir, p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	// The old timestamped directory, and any a failed write left.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true, err
	}
	for _, e := range entries {
		if n := e.Name(); n != tsName && isTimestampDir(n) {
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return true, errors.Join(errs...)
}

// isTimestampDir tells whether name is a timestamped data directory's.
func isTimestampDir(name string) bool {
	return len(name) > 3 && strings.HasPrefix(name, "..") && name[2] >= '0' && name[2] <= '9'
}

// validatePayloadPath is upstream's check of a file's path in a files
// volume: relative, no "..", not starting with "..", within the limits.
func validatePayloadPath(p string) error {
	if p == "" {
		return fmt.Errorf("invalid path: must not be empty: %q", p)
	}
	if filepath.IsAbs(p) {
		return fmt.Errorf("invalid path: must be relative path: %s", p)
	}
	if len(p) > 4096 {
		return fmt.Errorf("invalid path: must be less than or equal to %d characters", 4096)
	}
	items := strings.Split(p, "/")
	for _, it := range items {
		if it == ".." {
			return fmt.Errorf("invalid path: must not contain '..': %s", p)
		}
		if len(it) > 255 {
			return fmt.Errorf("invalid path: filenames must be less than or equal to %d characters", 255)
		}
	}
	if strings.HasPrefix(items[0], "..") && len(items[0]) > 2 {
		return fmt.Errorf("invalid path: must not start with '..': %s", p)
	}
	return nil
}

// pathsToRemove are the paths of the old content that the new one does
// not have (neither as a file nor as a directory of one).
func pathsToRemove(payload map[string]fileProjection, oldDir string) ([]string, error) {
	keep := map[string]bool{}
	for p := range payload {
		for q := p; q != "." && q != "/" && q != ""; q = filepath.Dir(q) {
			keep[q] = true
		}
	}
	var out []string
	err := filepath.WalkDir(oldDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(oldDir, path)
		if rel != "." && !keep[rel] {
			out = append(out, rel)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return out, err
}

// sameContent tells whether oldDir holds the payload's data already.
func sameContent(payload map[string]fileProjection, oldDir string) (bool, error) {
	for p, f := range payload {
		data, err := os.ReadFile(filepath.Join(oldDir, p))
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !bytes.Equal(data, f.data) {
			return false, nil
		}
	}
	return true, nil
}

// Mounts are the OCI mounts of the container's volumeMounts, for
// startOptions.Mounts: bind mounts (rbind) of the volumes' directories
// (SetUp made them) and of hostPath paths, read-only for readOnly mounts
// and always for the files volumes, with the mount's propagation
// (rprivate, rslave for HostToContainer, rshared for Bidirectional). A
// subPath is made when missing, with the volume's mode, and must stay in
// the volume. A hostPath missing at this point is made a directory, as
// containerd's CRI does. The mounts come sorted by the depth of their
// destination, as CRI orders them.
//
// A subPathExpr is expanded against the container's variables that need
// no API object (plain values and fieldRefs, the pod's IPs from its
// status); MountsWithEnv expands it against the resolved environment.
func (v *volumeManager) Mounts(pod *corev1.Pod, c *corev1.Container) ([]specs.Mount, error) {
	return v.MountsWithEnv(pod, c, specEnvironment(pod, c))
}

// MountsWithEnv is Mounts with subPathExpr expanded against env, the
// container's NAME=value entries (containerEnvironment's, startOptions.Env).
func (v *volumeManager) MountsWithEnv(pod *corev1.Pod, c *corev1.Container, env []string) ([]specs.Mount, error) {
	vols := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		vols[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	var out []specs.Mount
	for _, vm := range c.VolumeMounts {
		vol := vols[vm.Name]
		if vol == nil {
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", vm.Name, c.Name)
		}
		src, filesVolume, err := v.volumeSource(pod.UID, vol)
		if err != nil {
			return nil, fmt.Errorf("volume %q of container %q: %w", vm.Name, c.Name, err)
		}
		if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
			if vol.HostPath == nil {
				return nil, fmt.Errorf("volume %q of container %q is not set up", vm.Name, c.Name)
			}
			if err := os.MkdirAll(src, 0o755); err != nil {
				return nil, fmt.Errorf("failed to mkdir %q: %w", src, err)
			}
		} else if err != nil {
			return nil, err
		}

		subPath := vm.SubPath
		if vm.SubPathExpr != "" {
			if subPath, err = expandSubPathExpr(vm.SubPathExpr, env); err != nil {
				return nil, err
			}
		}
		if subPath != "" {
			if err := noBacksteps(subPath); err != nil {
				return nil, fmt.Errorf("unable to provision SubPath `%s`: %v", subPath, err)
			}
			if src, err = subPathSource(src, subPath, vm.Name, c.Name); err != nil {
				return nil, err
			}
		}

		prop, err := propagationOption(vm.MountPropagation)
		if err != nil {
			return nil, err
		}
		rw := "rw"
		if vm.ReadOnly || filesVolume {
			rw = "ro"
		}
		out = append(out, specs.Mount{Destination: vm.MountPath, Type: "bind", Source: src,
			Options: []string{"rbind", prop, rw}})
	}
	sort.SliceStable(out, func(i, j int) bool { return mountDepth(out[i].Destination) < mountDepth(out[j].Destination) })
	return out, nil
}

func mountDepth(dest string) int {
	return strings.Count(filepath.Clean(dest), "/")
}

// specEnvironment is the container's variables that need no API object:
// plain values (expanded) and fieldRefs, with the pod's and the node's
// IPs from the pod's status.
func specEnvironment(pod *corev1.Pod, c *corev1.Container) []string {
	var podIPs, hostIPs []string
	for _, ip := range pod.Status.PodIPs {
		podIPs = append(podIPs, ip.IP)
	}
	if len(podIPs) == 0 && pod.Status.PodIP != "" {
		podIPs = []string{pod.Status.PodIP}
	}
	for _, ip := range pod.Status.HostIPs {
		hostIPs = append(hostIPs, ip.IP)
	}
	if len(hostIPs) == 0 && pod.Status.HostIP != "" {
		hostIPs = []string{pod.Status.HostIP}
	}
	env := &envList{vals: map[string]string{}}
	for _, ev := range c.Env {
		switch {
		case ev.Value != "":
			env.set(ev.Name, expand(ev.Value, env.vals))
		case ev.ValueFrom == nil:
			env.set(ev.Name, "")
		case ev.ValueFrom.FieldRef != nil:
			if val, err := podFieldValue(pod, ev.ValueFrom.FieldRef, podIPs, hostIPs); err == nil {
				env.set(ev.Name, val)
			}
		}
	}
	return env.entries()
}

// volumeSource is the node's path of a volume, and whether it is mounted
// read-only whatever the container asks (files volumes, read-only claims).
func (v *volumeManager) volumeSource(uid types.UID, vol *corev1.Volume) (string, bool, error) {
	src := &vol.VolumeSource
	switch {
	case src.EmptyDir != nil:
		return v.volumeDir(uid, pluginEmptyDir, vol.Name), false, nil
	case src.HostPath != nil:
		return src.HostPath.Path, false, nil
	case src.PersistentVolumeClaim != nil, src.Ephemeral != nil:
		v.mu.Lock()
		path, ok := v.claimed[uid][vol.Name]
		v.mu.Unlock()
		if !ok {
			return "", false, errors.New("its claim's volume is not set up")
		}
		return path, src.PersistentVolumeClaim != nil && src.PersistentVolumeClaim.ReadOnly, nil
	case src.ConfigMap != nil:
		return v.volumeDir(uid, pluginConfigMap, vol.Name), true, nil
	case src.Secret != nil:
		return v.volumeDir(uid, pluginSecret, vol.Name), true, nil
	case src.DownwardAPI != nil:
		return v.volumeDir(uid, pluginDownwardAPI, vol.Name), true, nil
	case src.Projected != nil:
		return v.volumeDir(uid, pluginProjected, vol.Name), true, nil
	}
	return "", false, fmt.Errorf("%s volumes are not supported by labctl", volumeKind(src))
}

// propagationOption is the OCI mount option of a mount propagation, as
// containerd's CRI translates it.
func propagationOption(m *corev1.MountPropagationMode) (string, error) {
	if m == nil {
		return "rprivate", nil
	}
	switch *m {
	case corev1.MountPropagationNone:
		return "rprivate", nil
	case corev1.MountPropagationHostToContainer:
		return "rslave", nil
	case corev1.MountPropagationBidirectional:
		return "rshared", nil
	}
	return "", fmt.Errorf("invalid MountPropagation mode: %q", *m)
}

// expandSubPathExpr expands a subPathExpr's $(VAR) references against
// env (NAME=value entries), as upstream: each must have a value.
func expandSubPathExpr(expr string, env []string) (string, error) {
	vals := map[string]string{}
	for _, kv := range env {
		k, val, _ := strings.Cut(kv, "=")
		vals[k] = val
	}
	missing := map[string]bool{}
	for i := 0; i+1 < len(expr); i++ {
		if expr[i] != '$' {
			continue
		}
		switch expr[i+1] {
		case '$':
			i++
		case '(':
			end := strings.IndexByte(expr[i+2:], ')')
			if end < 0 {
				i = len(expr)
				break
			}
			if name := expr[i+2 : i+2+end]; vals[name] == "" {
				missing[name] = true
			}
			i += 2 + end
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("missing value for %s", strings.Join(sortedKeys(missing), ", "))
	}
	return expand(expr, vals), nil
}

// subPathSource is the resolved path of subPath in the volume at root,
// made (directories, with root's mode) when missing. Neither it nor any
// directory on the way may lead out of the volume through a symlink.
func subPathSource(root, subPath, volume, container string) (string, error) {
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	info, err := os.Stat(root)
	if err != nil {
		return "", err
	}
	full := filepath.Join(root, subPath)
	if _, err := os.Lstat(full); errors.Is(err, fs.ErrNotExist) {
		if err := makeSubPath(root, subPath, info.Mode().Perm()); err != nil {
			return "", fmt.Errorf("failed to create subPath directory for volumeMount %q of container %q", volume, container)
		}
	}
	resolved, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", err
	}
	if !within(root, resolved) {
		return "", fmt.Errorf("subpath %q not within volume path %q", full, root)
	}
	return resolved, nil
}

// makeSubPath makes the directories of rel under root, each existing one
// checked to be in root once its symlinks are resolved.
func makeSubPath(root, rel string, perm fs.FileMode) error {
	cur := root
	for _, part := range strings.Split(filepath.Clean(rel), "/") {
		if part == "" || part == "." {
			continue
		}
		next := filepath.Join(cur, part)
		if _, err := os.Lstat(next); err == nil {
			resolved, err := filepath.EvalSymlinks(next)
			if err != nil {
				return err
			}
			if !within(root, resolved) {
				return fmt.Errorf("%s leads out of the volume", next)
			}
			cur = resolved
			continue
		}
		if err := os.Mkdir(next, perm); err != nil {
			return err
		}
		if err := os.Chmod(next, perm); err != nil {
			return err
		}
		cur = next
	}
	return nil
}

// within tells whether path is root or below it.
func within(root, path string) bool {
	return path == root || strings.HasPrefix(path, strings.TrimSuffix(root, "/")+"/")
}

// TearDown unmounts the pod's tmpfs volumes and removes its volumes
// directory. Again is harmless. It must run before anything removes the
// pod's directory (a RemoveAll would empty the tmpfs and then fail), and
// after the pod's containers are gone.
func (v *volumeManager) TearDown(uid types.UID) error {
	if err := checkUID(uid); err != nil {
		return err
	}
	unlock := v.lock(uid)
	defer func() {
		v.mu.Lock()
		delete(v.locks, uid)
		delete(v.claimed, uid)
		v.mu.Unlock()
		unlock()
	}()
	dir := v.volumesDir(uid)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	mounts, err := mountPointsUnder(real)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if err := unix.Unmount(m, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("tear down the volumes of pod %s: %w", uid, errors.Join(errs...))
	}
	// RemoveAll must never go into a mount.
	if left, err := mountPointsUnder(real); err != nil || len(left) > 0 {
		return fmt.Errorf("tear down the volumes of pod %s: still mounted: %v %v", uid, left, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("tear down the volumes of pod %s: %w", uid, err)
	}
	return nil
}

// PodsWithVolumes lists the pods that have a volumes directory, for the
// cleanup of pods the agent no longer runs (after a restart).
func (v *volumeManager) PodsWithVolumes() ([]types.UID, error) {
	entries, err := os.ReadDir(v.cfg.PodsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []types.UID
	for _, e := range entries {
		if _, err := os.Stat(v.volumesDir(types.UID(e.Name()))); err == nil {
			out = append(out, types.UID(e.Name()))
		}
	}
	return out, nil
}

// mountPointsUnder lists the mount points at or below dir in this
// process's mount namespace, deepest first.
func mountPointsUnder(dir string) ([]string, error) {
	mounts, err := mountinfo.Read()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range mounts {
		if within(dir, m.Point) {
			out = append(out, m.Point)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}
