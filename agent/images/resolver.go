package images

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	cimages "github.com/containerd/containerd/images"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/containerd/remotes/docker/config"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// newResolver returns the resolver for one pull of the image name (a full
// name, see Normalize): the registry hosts come from the hosts.toml files
// in the hosts directory, through containerd's own ConfigureHosts, so that
// labctl and containerd read them alike; registries.yaml adds credentials
// and rewrites. auth, when not nil, is a pull secret's credentials, sent to
// the image's own registry only (never to a mirror). reach learns whether
// any registry could be reached, and progress (when not nil) counts bytes.
func (m *Manager) newResolver(ctx context.Context, name string, auth *Auth, reach *reachability, progress *progressTracker) (remotes.Resolver, error) {
	registry, repo, err := splitName(name)
	if err != nil {
		return nil, err
	}
	creds := func(host string) (string, string, error) {
		if auth != nil && sameRegistry(registry, host) {
			u, p := auth.secret()
			return u, p, nil
		}
		if a, ok := m.opts.Registries.auth(host); ok {
			u, p := a.secret()
			return u, p, nil
		}
		return "", "", nil
	}
	hostOpts := config.HostOptions{Credentials: creds, UpdateClient: reach.updateClient(m.opts.DialTimeout)}
	if m.opts.HostsDir != "" {
		hostOpts.HostDir = config.HostDirFromRoot(m.opts.HostsDir)
	}
	hosts := dedupeHosts(config.ConfigureHosts(ctx, hostOpts))

	var resolver remotes.Resolver = docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
	if newRepo, ok := m.opts.Registries.rewrite(registry, repo); ok && newRepo != repo {
		prefix := registry + "/" + repo
		if strings.HasPrefix(name, prefix) {
			resolver = &rewriteResolver{
				mirrors:   docker.NewResolver(docker.ResolverOptions{Hosts: mirrorHosts(hosts)}),
				fallback:  docker.NewResolver(docker.ResolverOptions{Hosts: defaultHost(hosts)}),
				name:      name,
				rewritten: registry + "/" + newRepo + name[len(prefix):],
			}
		}
	}
	if progress != nil {
		resolver = &progressResolver{Resolver: resolver, progress: progress}
	}
	return resolver, nil
}

// sameRegistry tells whether a request host belongs to the registry of the
// image (Docker Hub's images are served by registry-1.docker.io).
func sameRegistry(registry, host string) bool {
	if host == registry {
		return true
	}
	return registry == "docker.io" && (host == "registry-1.docker.io" || host == "index.docker.io")
}

// dedupeHosts drops a host that repeats an earlier one (a hosts.toml whose
// only [host] table is its server, as containerd 1.6 needs, lists it twice).
func dedupeHosts(hosts docker.RegistryHosts) docker.RegistryHosts {
	return func(host string) ([]docker.RegistryHost, error) {
		list, err := hosts(host)
		if err != nil {
			return nil, err
		}
		var out []docker.RegistryHost
		for _, h := range list {
			dup := false
			for _, o := range out {
				if o.Scheme == h.Scheme && o.Host == h.Host && o.Path == h.Path {
					dup = true
					break
				}
			}
			if !dup {
				out = append(out, h)
			}
		}
		return out, nil
	}
}

// mirrorHosts keeps the mirrors: every host but the last, which is the
// registry's own endpoint.
func mirrorHosts(hosts docker.RegistryHosts) docker.RegistryHosts {
	return func(host string) ([]docker.RegistryHost, error) {
		list, err := hosts(host)
		if err != nil || len(list) < 2 {
			return nil, err
		}
		return list[:len(list)-1], nil
	}
}

// defaultHost keeps the registry's own endpoint only.
func defaultHost(hosts docker.RegistryHosts) docker.RegistryHosts {
	return func(host string) ([]docker.RegistryHost, error) {
		list, err := hosts(host)
		if err != nil || len(list) == 0 {
			return nil, err
		}
		return list[len(list)-1:], nil
	}
}

// rewriteResolver asks the mirrors for the rewritten name and, failing
// that, the registry itself for the name as it is. The image keeps its
// name either way.
type rewriteResolver struct {
	mirrors, fallback remotes.Resolver
	name, rewritten   string

	mu  sync.Mutex
	via remotes.Resolver // the resolver that resolved the name
}

func (r *rewriteResolver) Resolve(ctx context.Context, ref string) (string, ocispec.Descriptor, error) {
	if ref != r.name {
		return r.fallback.Resolve(ctx, ref)
	}
	_, desc, mirrorErr := r.mirrors.Resolve(ctx, r.rewritten)
	if mirrorErr == nil {
		r.mu.Lock()
		r.via = r.mirrors
		r.mu.Unlock()
		return ref, desc, nil
	}
	_, desc, err := r.fallback.Resolve(ctx, ref)
	if err != nil {
		if !errdefs.IsNotFound(mirrorErr) {
			return "", ocispec.Descriptor{}, mirrorErr
		}
		return "", ocispec.Descriptor{}, err
	}
	r.mu.Lock()
	r.via = r.fallback
	r.mu.Unlock()
	return ref, desc, nil
}

func (r *rewriteResolver) Fetcher(ctx context.Context, ref string) (remotes.Fetcher, error) {
	r.mu.Lock()
	via := r.via
	r.mu.Unlock()
	if ref == r.name && via == r.mirrors {
		return r.mirrors.Fetcher(ctx, r.rewritten)
	}
	return r.fallback.Fetcher(ctx, ref)
}

func (r *rewriteResolver) Pusher(ctx context.Context, ref string) (remotes.Pusher, error) {
	return r.fallback.Pusher(ctx, ref)
}

// reachability records whether a pull connected to any registry at all:
// when none could be reached, the offline rule may use a local image.
type reachability struct {
	connected atomic.Bool
}

// updateClient makes the registry clients' dialer record connections and
// give up after timeout.
func (r *reachability) updateClient(timeout time.Duration) config.UpdateClientFunc {
	return func(c *http.Client) error {
		tr, ok := c.Transport.(*http.Transport)
		if !ok {
			return nil
		}
		d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, FallbackDelay: 300 * time.Millisecond}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err == nil {
				r.connected.Store(true)
			}
			return conn, err
		}
		return nil
	}
}

// Progress is how far a pull has come, in bytes of the image's config and
// layers for this platform (what is already on the machine counts as done).
type Progress struct {
	// Image is the full image name.
	Image string
	Done  int64
	Total int64
}

// progressTracker counts a pull's bytes and reports them at most once per
// interval, and once at the end.
type progressTracker struct {
	image    string
	report   func(Progress)
	done     atomic.Int64
	total    atomic.Int64
	mu       sync.Mutex
	seen     map[digest.Digest]bool
	last     Progress
	stopOnce sync.Once
	stopCh   chan struct{}
	stopped  chan struct{}
}

func newProgressTracker(image string, report func(Progress), interval time.Duration) *progressTracker {
	p := &progressTracker{image: image, report: report, seen: map[digest.Digest]bool{},
		stopCh: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stopCh:
				return
			case <-t.C:
				p.send(false)
			}
		}
	}()
	return p
}

// countable tells whether a descriptor's bytes count: config and layers,
// not the small index and manifests.
func countable(desc ocispec.Descriptor) bool {
	return !cimages.IsIndexType(desc.MediaType) && !cimages.IsManifestType(desc.MediaType)
}

// handler learns the total from the descriptors the pull walks, and counts
// what is already in the content store as done.
func (p *progressTracker) handler(cs content.Store) cimages.HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if !countable(desc) {
			return nil, nil
		}
		p.mu.Lock()
		seen := p.seen[desc.Digest]
		p.seen[desc.Digest] = true
		p.mu.Unlock()
		if seen {
			return nil, nil
		}
		p.total.Add(desc.Size)
		if _, err := cs.Info(ctx, desc.Digest); err == nil {
			p.done.Add(desc.Size)
		}
		return nil, nil
	}
}

func (p *progressTracker) send(final bool) {
	cur := Progress{Image: p.image, Done: p.done.Load(), Total: p.total.Load()}
	if final {
		cur.Done = cur.Total
	}
	cur.Done = min(cur.Done, cur.Total)
	p.mu.Lock()
	changed := cur != p.last
	p.last = cur
	p.mu.Unlock()
	if changed && cur.Total > 0 {
		p.report(cur)
	}
}

// stop ends the reports; a successful pull reports everything done.
func (p *progressTracker) stop(success bool) {
	p.stopOnce.Do(func() {
		close(p.stopCh)
		<-p.stopped
		p.send(success)
	})
}

// progressResolver counts the bytes its fetchers read.
type progressResolver struct {
	remotes.Resolver
	progress *progressTracker
}

func (r *progressResolver) Fetcher(ctx context.Context, ref string) (remotes.Fetcher, error) {
	f, err := r.Resolver.Fetcher(ctx, ref)
	if err != nil {
		return nil, err
	}
	return remotes.FetcherFunc(func(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
		rc, err := f.Fetch(ctx, desc)
		if err != nil || !countable(desc) {
			return rc, err
		}
		return &countingReader{ReadCloser: rc, n: &r.progress.done}, nil
	}), nil
}

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}
