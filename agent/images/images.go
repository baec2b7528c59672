// Package images manages a node's container images in labctl's containerd:
// pulling with upstream kubelet's rules (imagePullPolicy, imagePullSecrets,
// its events, errors and back-off), registries.yaml in k3s's format (see
// Registries), importing tarballs (OCI layout or `docker save`) by hand or
// from a watched folder (Watcher), listing and removing.
//
// It adds one rule of labctl's own for labs that run offline: when a pull
// under policy Always cannot reach any registry (no connection could be
// made) and the image is on the node, the local image is used and a
// Warning event says so. When a registry answers, even with an error,
// upstream's rules hold as they are.
//
// The package knows nothing of the Kubernetes API: the kubelet passes the
// image, the policy and the pull secrets' contents in as data, and turns
// the Events and errors it gets back into API events and container states
// (a *PullError's Reason is the waiting reason, its Message the message).
//
// The agent puts it together like this:
//
//	regs, err := images.LoadRegistries(images.DefaultRegistriesFile)
//	err = regs.WriteHostsDir(ctrdCfg.RegistryConfigDir) // before containerd starts
//	rt, err := containerd.Start(ctx, ctrdCfg)
//	m := images.New(rt.Client(), images.Options{HostsDir: ctrdCfg.RegistryConfigDir, Registries: regs})
//	w := &images.Watcher{Dir: filepath.Join(dataDir, "agent", "images"), Manager: m}
//	err = w.ImportAll(ctx) // before pods start, so that offline images are there
//	go w.Run(ctx)
//	res, err := m.Ensure(ctx, images.EnsureRequest{Image: c.Image, PullPolicy: images.PullPolicy(c.ImagePullPolicy), ...})
package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	cimages "github.com/containerd/containerd/images"
	clog "github.com/containerd/log"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultRegistriesFile is where labctl reads registries.yaml, as k3s
// reads /etc/rancher/k3s/registries.yaml.
const DefaultRegistriesFile = "/etc/labctl/registries.yaml"

// Errors that say why a container's image is not ready, as the kubelet's:
// their text is the container's waiting reason. A *PullError carries one
// of them with the message upstream's kubelet would show.
var (
	ErrImagePullBackOff = errors.New("ImagePullBackOff")
	ErrImageInspect     = errors.New("ImageInspectError")
	ErrImagePull        = errors.New("ErrImagePull")
	ErrImageNeverPull   = errors.New("ErrImageNeverPull")
	ErrInvalidImageName = errors.New("InvalidImageName")
)

// PullError is Ensure's error: Reason is one of the Err* values above (the
// container's waiting reason), Message the waiting message, worded as
// upstream's kubelet words it, and Err the underlying error, if any.
type PullError struct {
	Reason  error
	Message string
	Err     error
}

func (e *PullError) Error() string { return e.Reason.Error() + ": " + e.Message }

// Is makes errors.Is(err, ErrImagePull) and the like work.
func (e *PullError) Is(target error) bool { return target == e.Reason }

func (e *PullError) Unwrap() error { return e.Err }

// Event types and the reasons upstream's kubelet gives image events.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"

	ReasonPulling           = "Pulling"
	ReasonPulled            = "Pulled"
	ReasonFailed            = "Failed"
	ReasonInspectFailed     = "InspectFailed"
	ReasonErrImageNeverPull = "ErrImageNeverPull"
	ReasonBackOff           = "BackOff"
)

// Event is one event for the container's pod, as the kubelet records it.
type Event struct {
	Type    string // EventNormal or EventWarning
	Reason  string
	Message string
}

// Image describes an image in containerd.
type Image struct {
	// Name is the full name (docker.io/library/nginx:latest).
	Name string
	// Digest is the digest of what the name points at (manifest or index).
	Digest string
	// ID is the digest of the image's config: what `crictl images` calls
	// the image ID.
	ID string
	// RepoDigest is the name by digest (docker.io/library/nginx@sha256:...),
	// what a container status's imageID shows.
	RepoDigest string
	// Size is the size in bytes of the image's content for this platform.
	Size int64
	// Created is when the name was created in containerd.
	Created time.Time
}

// Defaults of Options.
const (
	DefaultDialTimeout      = 10 * time.Second
	DefaultProgressInterval = time.Second
	// Upstream kubelet's image pull back-off: 10 s doubling to 5 min.
	DefaultBackOffInitial = 10 * time.Second
	DefaultBackOffMax     = 300 * time.Second
)

// Options configure a Manager. Zero values mean the defaults.
type Options struct {
	// Snapshotter unpacks images (default "overlayfs").
	Snapshotter string
	// HostsDir is the directory of hosts.toml files
	// (containerd.Config.RegistryConfigDir); empty means every registry's
	// defaults.
	HostsDir string
	// Registries is registries.yaml, for its credentials and rewrites; its
	// mirrors and TLS settings reach pulls through the hosts.toml files
	// that Registries.WriteHostsDir wrote into HostsDir.
	Registries *Registries
	// DialTimeout bounds each connection attempt to a registry (default
	// 10 s), so that an offline pull gives up soon.
	DialTimeout time.Duration
	// ProgressInterval is the least time between two progress reports
	// (default 1 s).
	ProgressInterval time.Duration
	// MaxConcurrentDownloads is the number of layers fetched at once
	// (default 3).
	MaxConcurrentDownloads int
	// BackOffInitial and BackOffMax bound Ensure's back-off between pulls
	// that failed (default 10 s and 5 min, as upstream).
	BackOffInitial, BackOffMax time.Duration
	// Now is the clock of the back-off (default time.Now).
	Now func() time.Time
	// Logger receives the manager's messages (default: discarded).
	Logger *slog.Logger
}

// Manager pulls, imports, lists and removes images on one containerd
// client, in the client's default namespace.
type Manager struct {
	client   *ctrd.Client
	opts     Options
	platform platforms.MatchComparer
	backOff  *backOff

	logEntry *logrus.Entry // containerd's client logs through it

	mu      sync.Mutex
	prevErr map[string]string     // back-off key → the last pull error, for the back-off message
	pulls   map[string]*pullMutex // image name → the lock of the pull under way
}

type pullMutex struct {
	sync.Mutex
	users int
}

// New returns a Manager of the images in client's default namespace.
func New(client *ctrd.Client, opts Options) *Manager {
	if opts.Snapshotter == "" {
		opts.Snapshotter = "overlayfs"
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = DefaultProgressInterval
	}
	if opts.MaxConcurrentDownloads <= 0 {
		opts.MaxConcurrentDownloads = 3
	}
	if opts.BackOffInitial <= 0 {
		opts.BackOffInitial = DefaultBackOffInitial
	}
	if opts.BackOffMax <= 0 {
		opts.BackOffMax = DefaultBackOffMax
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	lg := logrus.New()
	lg.Out = io.Discard
	lg.AddHook(slogHook{opts.Logger})
	return &Manager{
		client:   client,
		opts:     opts,
		platform: platforms.Default(),
		backOff:  newBackOff(opts.BackOffInitial, opts.BackOffMax, opts.Now),
		logEntry: logrus.NewEntry(lg),
		prevErr:  map[string]string{},
		pulls:    map[string]*pullMutex{},
	}
}

// withLog makes containerd's client log to the manager's logger (instead
// of its own to stderr).
func (m *Manager) withLog(ctx context.Context) context.Context {
	return clog.WithLogger(ctx, m.logEntry)
}

// slogHook passes containerd's client logs on: warnings and errors as
// warnings, the rest (such as "trying next host") at debug level.
type slogHook struct{ log *slog.Logger }

func (h slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	attrs := make([]any, 0, 2*len(e.Data))
	for k, v := range e.Data {
		attrs = append(attrs, k, v)
	}
	level := slog.LevelDebug
	if e.Level <= logrus.WarnLevel {
		level = slog.LevelWarn
	}
	h.log.Log(context.Background(), level, "containerd client: "+e.Message, attrs...)
	return nil
}

// lockPull serialises pulls of one image name, so that two pods starting
// together download it once.
func (m *Manager) lockPull(name string) func() {
	m.mu.Lock()
	l := m.pulls[name]
	if l == nil {
		l = &pullMutex{}
		m.pulls[name] = l
	}
	l.users++
	m.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		m.mu.Lock()
		if l.users--; l.users == 0 {
			delete(m.pulls, name)
		}
		m.mu.Unlock()
	}
}

// PullOptions are the options of one Pull.
type PullOptions struct {
	// Auth, when set, is sent to the image's registry.
	Auth *Auth
	// Progress, when set, is called as bytes arrive (at most once per
	// Options.ProgressInterval) and once at the end of a successful pull.
	Progress func(Progress)
}

// Pull pulls the image (any form Normalize takes) from its registry or
// mirrors and unpacks it, and returns it. Its errors read as containerd's
// CRI words them: failed to pull and unpack image "<name>": ...
func (m *Manager) Pull(ctx context.Context, image string, opts PullOptions) (Image, error) {
	name, err := Normalize(image)
	if err != nil {
		return Image{}, err
	}
	img, _, err := m.pull(ctx, name, opts.Auth, opts.Progress)
	return img, err
}

// pull pulls the full name; reached tells whether a registry could be
// reached at all.
func (m *Manager) pull(ctx context.Context, name string, auth *Auth, report func(Progress)) (_ Image, reached bool, _ error) {
	ctx = m.withLog(ctx)
	unlock := m.lockPull(name)
	defer unlock()

	reach := &reachability{}
	var progress *progressTracker
	if report != nil {
		progress = newProgressTracker(name, report, m.opts.ProgressInterval)
	}
	resolver, err := m.newResolver(ctx, name, auth, reach, progress)
	if err != nil {
		return Image{}, false, fmt.Errorf("failed to pull and unpack image %q: %w", name, err)
	}
	opts := []ctrd.RemoteOpt{
		ctrd.WithResolver(resolver),
		ctrd.WithPullUnpack,
		ctrd.WithPullSnapshotter(m.opts.Snapshotter),
		ctrd.WithMaxConcurrentDownloads(m.opts.MaxConcurrentDownloads),
		ctrd.WithPlatformMatcher(m.platform),
	}
	if progress != nil {
		opts = append(opts, ctrd.WithImageHandler(progress.handler(m.client.ContentStore())))
	}
	start := time.Now()
	pulled, err := m.client.Pull(ctx, name, opts...)
	if progress != nil {
		progress.stop(err == nil)
	}
	if err != nil {
		return Image{}, reach.connected.Load(), fmt.Errorf("failed to pull and unpack image %q: %w", name, err)
	}
	img, err := m.describe(ctx, pulled.Metadata())
	if err != nil {
		return Image{}, true, err
	}
	m.opts.Logger.Info("pulled image", "image", name, "size", img.Size, "took", time.Since(start).Round(time.Millisecond))
	return img, true, nil
}

// EnsureRequest asks for one container's image.
type EnsureRequest struct {
	// Image is the container's image as the pod spec writes it.
	Image string
	// PullPolicy is the container's imagePullPolicy; empty means
	// DefaultPullPolicy(Image).
	PullPolicy PullPolicy
	// PullSecrets are the contents of the pod's imagePullSecrets.
	PullSecrets []PullSecret
	// BackOffKey identifies the pull for the back-off between failed pulls;
	// upstream uses "<pod UID>_<image>". Empty means no back-off.
	BackOffKey string
	// Events, when set, receives the pod events upstream's kubelet records.
	Events func(Event)
	// Progress, when set, receives the pull's progress.
	Progress func(Progress)
}

// EnsureResult is what Ensure found or pulled.
type EnsureResult struct {
	Image Image
	// Pulled tells whether the image was pulled now.
	Pulled bool
	// Offline tells that no registry could be reached and the image on the
	// node is used (a Warning event said so).
	Offline bool
}

// Ensure makes the container's image present as upstream's kubelet does
// (EnsureImageExists): it applies the pull policy, the back-off after
// failed pulls, each matching pull secret in turn, and records the same
// events. Its errors are *PullError values with upstream's reasons and
// messages. labctl's offline rule applies on top (see the package comment).
func (m *Manager) Ensure(ctx context.Context, req EnsureRequest) (EnsureResult, error) {
	requested := req.Image
	event := func(typ, reason, msg string) {
		if req.Events != nil {
			req.Events(Event{Type: typ, Reason: reason, Message: msg})
		}
	}

	image, err := applyDefaultImageTag(requested)
	var name string
	if err == nil {
		name, err = Normalize(image)
	}
	if err != nil {
		msg := fmt.Sprintf("Failed to apply default image tag %q: %v", requested, err)
		event(EventWarning, ReasonInspectFailed, msg)
		return EnsureResult{}, &PullError{Reason: ErrInvalidImageName, Message: msg, Err: err}
	}
	policy := req.PullPolicy
	if policy == "" {
		policy = DefaultPullPolicy(requested)
	}

	if policy != PullAlways {
		img, present, err := m.lookup(ctx, name)
		if err != nil {
			msg := fmt.Sprintf("Failed to inspect image %q: %v", requested, err)
			event(EventWarning, ReasonInspectFailed, msg)
			return EnsureResult{}, &PullError{Reason: ErrImageInspect, Message: msg, Err: err}
		}
		if present {
			event(EventNormal, ReasonPulled, fmt.Sprintf("Container image %q already present on machine", requested))
			return EnsureResult{Image: img}, nil
		}
		if policy == PullNever {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", requested)
			event(EventWarning, ReasonErrImageNeverPull, msg)
			return EnsureResult{}, &PullError{Reason: ErrImageNeverPull, Message: msg}
		}
	}

	keyring, err := newKeyring(req.PullSecrets)
	if err != nil {
		return EnsureResult{}, &PullError{Reason: ErrImagePull, Message: err.Error(), Err: err}
	}

	key := req.BackOffKey
	if key != "" && m.backOff.inBackOff(key) {
		msg := fmt.Sprintf("Back-off pulling image %q", requested)
		event(EventNormal, ReasonBackOff, msg)
		m.mu.Lock()
		if prev, ok := m.prevErr[key]; ok {
			msg += ": " + prev
		}
		m.mu.Unlock()
		return EnsureResult{}, &PullError{Reason: ErrImagePullBackOff, Message: msg}
	}
	if key != "" {
		m.mu.Lock()
		delete(m.prevErr, key)
		m.mu.Unlock()
	}

	event(EventNormal, ReasonPulling, fmt.Sprintf("Pulling image %q", requested))
	start := time.Now()
	img, reached, err := m.pullWithCredentials(ctx, name, keyring.lookup(repoOf(name)), req.Progress)
	if err != nil {
		if policy == PullAlways && !reached && ctx.Err() == nil {
			if local, present, lerr := m.lookup(ctx, name); lerr == nil && present {
				event(EventWarning, ReasonFailed, fmt.Sprintf("Failed to pull image %q: %s; no registry can be reached, using the local image", requested, err))
				m.opts.Logger.Warn("no registry can be reached; using the local image", "image", name, "err", err)
				return EnsureResult{Image: local, Offline: true}, nil
			}
		}
		event(EventWarning, ReasonFailed, fmt.Sprintf("Failed to pull image %q: %s", requested, err))
		msg := err.Error()
		if key != "" {
			m.backOff.next(key)
			m.mu.Lock()
			m.prevErr[key] = ErrImagePull.Error() + ": " + msg
			m.mu.Unlock()
		}
		return EnsureResult{}, &PullError{Reason: ErrImagePull, Message: msg, Err: err}
	}
	took := time.Since(start).Truncate(time.Millisecond)
	event(EventNormal, ReasonPulled, fmt.Sprintf("Successfully pulled image %q in %v (%v including waiting). Image size: %v bytes.",
		requested, took, took, img.Size))
	m.backOff.gc()
	return EnsureResult{Image: img, Pulled: true}, nil
}

// pullWithCredentials tries the credentials in turn (none when there are
// none), as upstream's kubelet does, and returns the first success or all
// the errors, each worded as a CRI error. reached tells whether any
// attempt reached a registry.
func (m *Manager) pullWithCredentials(ctx context.Context, name string, creds []Auth, progress func(Progress)) (Image, bool, error) {
	if len(creds) == 0 {
		img, reached, err := m.pull(ctx, name, nil, progress)
		return img, reached, criError(err)
	}
	var errs []error
	anyReached := false
	for i := range creds {
		img, reached, err := m.pull(ctx, name, &creds[i], progress)
		anyReached = anyReached || reached
		if err == nil {
			return img, true, nil
		}
		errs = append(errs, criError(err))
	}
	if len(errs) == 1 {
		return Image{}, anyReached, errs[0]
	}
	return Image{}, anyReached, aggregate(errs)
}

// criError words err as it reaches upstream's kubelet from containerd's
// CRI: "rpc error: code = NotFound desc = failed to pull and unpack image ...".
func criError(err error) error {
	if err == nil {
		return nil
	}
	g := errdefs.ToGRPC(err)
	if _, ok := status.FromError(g); !ok {
		g = status.Error(codes.Unknown, err.Error())
	}
	return &wrapped{msg: g.Error(), err: err}
}

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// aggregate joins errors as Kubernetes' utilerrors.NewAggregate does.
func aggregate(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return &wrapped{msg: "[" + strings.Join(msgs, ", ") + "]", err: errors.Join(errs...)}
}

// Get returns the image by name (any form Normalize takes) when it is
// present and complete; it unpacks an image whose layers are not unpacked
// yet.
func (m *Manager) Get(ctx context.Context, image string) (Image, bool, error) {
	name, err := Normalize(image)
	if err != nil {
		return Image{}, false, err
	}
	return m.lookup(ctx, name)
}

// lookup finds the full name. A name by digest also matches an image of
// the same repository pulled by tag with that digest, and gets a record of
// its own. An image whose content is incomplete is not present.
func (m *Manager) lookup(ctx context.Context, name string) (Image, bool, error) {
	ctx = m.withLog(ctx)
	is := m.client.ImageService()
	img, err := is.Get(ctx, name)
	if errdefs.IsNotFound(err) {
		d := digestOf(name)
		if d == "" {
			return Image{}, false, nil
		}
		list, lerr := is.List(ctx, fmt.Sprintf("target.digest==%q", d.String()))
		if lerr != nil {
			return Image{}, false, lerr
		}
		found := false
		for _, other := range list {
			if repoOf(other.Name) == repoOf(name) {
				img = cimages.Image{Name: name, Target: other.Target}
				found = true
				break
			}
		}
		if !found {
			return Image{}, false, nil
		}
		if img, err = is.Create(ctx, img); err != nil && !errdefs.IsAlreadyExists(err) {
			return Image{}, false, err
		}
	} else if err != nil {
		return Image{}, false, err
	}

	cs := m.client.ContentStore()
	available, _, _, missing, err := cimages.Check(ctx, cs, img.Target, m.platform)
	if err != nil || !available || len(missing) > 0 {
		return Image{}, false, nil // a pull brings what is missing
	}
	ci := ctrd.NewImageWithPlatform(m.client, img, m.platform)
	unpacked, err := ci.IsUnpacked(ctx, m.opts.Snapshotter)
	if err != nil {
		return Image{}, false, err
	}
	if !unpacked {
		if err := ci.Unpack(ctx, m.opts.Snapshotter); err != nil {
			return Image{}, false, fmt.Errorf("unpack %s: %w", name, err)
		}
	}
	desc, err := m.describe(ctx, img)
	return desc, err == nil, err
}

// digestOf returns the digest of a name by digest, or "".
func digestOf(name string) digest.Digest {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return ""
	}
	if d, ok := named.(reference.Digested); ok {
		return d.Digest()
	}
	return ""
}

func (m *Manager) describe(ctx context.Context, img cimages.Image) (Image, error) {
	ci := ctrd.NewImageWithPlatform(m.client, img, m.platform)
	out := Image{
		Name:       img.Name,
		Digest:     img.Target.Digest.String(),
		RepoDigest: repoOf(img.Name) + "@" + img.Target.Digest.String(),
		Created:    img.CreatedAt,
	}
	cfg, err := ci.Config(ctx)
	if err != nil {
		return out, fmt.Errorf("image %s: %w", img.Name, err)
	}
	out.ID = cfg.Digest.String()
	if out.Size, err = ci.Size(ctx); err != nil {
		return out, fmt.Errorf("image %s: %w", img.Name, err)
	}
	return out, nil
}

// List returns the images, sorted by name. An image whose content is
// incomplete is listed with what can be told about it.
func (m *Manager) List(ctx context.Context) ([]Image, error) {
	list, err := m.client.ImageService().List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(list))
	for _, img := range list {
		d, _ := m.describe(ctx, img)
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove removes an image by name (any form Normalize takes) or by ID
// (the config digest, or a unique prefix of its hex of at least 4
// characters: every name of that image goes). It returns the names
// removed; content no image uses any more is removed at once. An unknown
// image is an error that wraps errdefs.ErrNotFound.
func (m *Manager) Remove(ctx context.Context, ref string) ([]string, error) {
	is := m.client.ImageService()
	if name, err := Normalize(ref); err == nil {
		if _, err := is.Get(ctx, name); err == nil {
			if err := is.Delete(ctx, name, cimages.SynchronousDelete()); err != nil {
				return nil, err
			}
			return []string{name}, nil
		} else if !errdefs.IsNotFound(err) {
			return nil, err
		}
	}
	prefix := strings.TrimPrefix(ref, "sha256:")
	if len(prefix) < 4 || strings.Trim(prefix, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	}
	all, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	ids := map[string]bool{}
	for _, img := range all {
		if strings.HasPrefix(strings.TrimPrefix(img.ID, "sha256:"), prefix) {
			names = append(names, img.Name)
			ids[img.ID] = true
		}
	}
	switch {
	case len(ids) == 0:
		return nil, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	case len(ids) > 1:
		return nil, fmt.Errorf("image ID %q is ambiguous: it starts %d images' IDs", ref, len(ids))
	}
	for i, name := range names {
		var opts []cimages.DeleteOpt
		if i == len(names)-1 {
			opts = append(opts, cimages.SynchronousDelete())
		}
		if err := is.Delete(ctx, name, opts...); err != nil && !errdefs.IsNotFound(err) {
			return names[:i], err
		}
	}
	return names, nil
}

// backOff is upstream's flowcontrol.Backoff as the kubelet uses it for
// image pulls: each failure doubles the wait (from initial up to max); an
// entry not updated for twice max starts over.
type backOff struct {
	mu           sync.Mutex
	initial, max time.Duration
	now          func() time.Time
	entries      map[string]*backOffEntry
}

type backOffEntry struct {
	wait time.Duration
	last time.Time
}

func newBackOff(initial, max time.Duration, now func() time.Time) *backOff {
	return &backOff{initial: initial, max: max, now: now, entries: map[string]*backOffEntry{}}
}

func (b *backOff) expired(e *backOffEntry, now time.Time) bool {
	return now.Sub(e.last) > 2*b.max
}

// next records a failure.
func (b *backOff) next(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	e := b.entries[key]
	if e == nil || b.expired(e, now) {
		e = &backOffEntry{wait: b.initial}
		b.entries[key] = e
	} else {
		e.wait = min(2*e.wait, b.max)
	}
	e.last = now
}

// inBackOff tells whether the wait since the last failure is not over.
func (b *backOff) inBackOff(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	e := b.entries[key]
	if e == nil || b.expired(e, now) {
		return false
	}
	return now.Sub(e.last) < e.wait
}

// gc forgets entries that expired.
func (b *backOff) gc() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for k, e := range b.entries {
		if b.expired(e, now) {
			delete(b.entries, k)
		}
	}
}
