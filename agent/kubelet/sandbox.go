package kubelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"labctl/networking"
)

// Pod sandboxes (sandbox.go): labctl runs no pause container. A pod's
// sandbox is
//
//   - its network namespace, made and attached by networking (NewNetNS,
//     Setup) under the pod's UID, which the containers join by path;
//   - IPC and UTS namespaces of its own, pinned by bind mounts at
//     <root>/pods/<uid>/ns/{ipc,uts} (the UTS one carries the pod's
//     hostname), which the containers join by path too, so that they
//     share System V IPC and the hostname as upstream's pods do;
//   - the files the kubelet manages for it, <root>/pods/<uid>/etc/{hosts,
//     resolv.conf,hostname}, bind-mounted into every container;
//   - sandbox.json in the same directory, what a restarted agent needs
//     to find all of this again.
//
// hostNetwork pods keep the node's network and UTS namespaces (and
// hostIPC pods its IPC namespace); their /etc/hosts is a copy of the
// node's.

// sandbox is one pod's sandbox, as sandbox.json keeps it.
type sandbox struct {
	UID         string `json:"uid"`
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	HostNetwork bool   `json:"hostNetwork,omitempty"`
	// NetNS, IPC and UTS are the namespaces the containers join ("": the
	// node's).
	NetNS string `json:"netns,omitempty"`
	IPC   string `json:"ipc,omitempty"`
	UTS   string `json:"uts,omitempty"`
	// IP is the pod's address ("" for hostNetwork pods: the node's).
	IP       string `json:"ip,omitempty"`
	Hostname string `json:"hostname"`
	// Dir is <root>/pods/<uid>.
	Dir string `json:"dir"`
}

func (s *sandbox) etcFile(name string) string { return filepath.Join(s.Dir, "etc", name) }

// podDir is the directory of the pod with uid.
func (r *podRuntime) podDir(uid string) string { return filepath.Join(r.cfg.Root, "pods", uid) }

// RunSandbox makes the pod's sandbox (again harmless: what exists is
// kept) and returns it; its IP is the pod's address.
func (r *podRuntime) RunSandbox(ctx context.Context, pod *corev1.Pod) (_ *sandbox, err error) {
	uid := string(pod.UID)
	if uid == "" || strings.ContainsAny(uid, "/.") {
		return nil, fmt.Errorf("pod %s/%s: bad UID %q", pod.Namespace, pod.Name, uid)
	}
	sb := &sandbox{
		UID: uid, Namespace: pod.Namespace, Name: pod.Name,
		HostNetwork: pod.Spec.HostNetwork, Dir: r.podDir(uid),
		Hostname: r.podHostname(pod),
	}
	if err := os.MkdirAll(filepath.Join(sb.Dir, "etc"), 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			r.removeSandbox(context.WithoutCancel(ctx), sb)
		}
	}()

	if !pod.Spec.HostNetwork {
		if r.net == nil {
			return nil, errors.New("no pod network: only hostNetwork pods can run")
		}
		path, err := r.net.NewNetNS(uid)
		if err != nil {
			return nil, err
		}
		sb.NetNS = path
		pn, err := r.net.Setup(ctx, uid, path, hostPorts(pod))
		if err != nil {
			return nil, err
		}
		sb.IP = pn.IPv4.String()
	}
	var kinds []string
	if !pod.Spec.HostIPC {
		kinds = append(kinds, "ipc")
	}
	if !pod.Spec.HostNetwork {
		kinds = append(kinds, "uts")
	}
	if len(kinds) > 0 {
		paths, err := pinNamespaces(filepath.Join(sb.Dir, "ns"), kinds, sb.Hostname)
		if err != nil {
			return nil, err
		}
		sb.IPC, sb.UTS = paths["ipc"], paths["uts"]
	}

	hosts, err := r.hostsFile(pod, sb.IP)
	if err != nil {
		return nil, err
	}
	resolv, err := r.resolvConf(pod)
	if err != nil {
		return nil, err
	}
	for name, data := range map[string][]byte{"hosts": hosts, "resolv.conf": resolv, "hostname": []byte(sb.Hostname + "\n")} {
		if err := writeFileReplace(sb.etcFile(name), data, 0o644); err != nil {
			return nil, err
		}
	}
	data, _ := json.MarshalIndent(sb, "", "  ")
	if err := writeFileReplace(filepath.Join(sb.Dir, "sandbox.json"), data, 0o644); err != nil {
		return nil, err
	}
	return sb, nil
}

// loadSandbox reads the sandbox of the pod with uid, if there is one.
func (r *podRuntime) loadSandbox(uid string) (*sandbox, error) {
	data, err := os.ReadFile(filepath.Join(r.podDir(uid), "sandbox.json"))
	if err != nil {
		return nil, err
	}
	var sb sandbox
	if err := json.Unmarshal(data, &sb); err != nil {
		return nil, err
	}
	return &sb, nil
}

// removeSandbox undoes RunSandbox: the network, the namespaces, the pod
// directory. It goes on past errors and returns them all.
func (r *podRuntime) removeSandbox(ctx context.Context, sb *sandbox) error {
	var errs []error
	if !sb.HostNetwork && r.net != nil {
		path := r.net.NetNSPath(sb.UID)
		if err := r.net.Teardown(ctx, sb.UID, path); err != nil {
			errs = append(errs, err)
		}
		if err := r.net.RemoveNetNS(sb.UID); err != nil {
			errs = append(errs, err)
		}
	}
	nsDir := filepath.Join(sb.Dir, "ns")
	for _, kind := range []string{"ipc", "uts"} {
		p := filepath.Join(nsDir, kind)
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	// The volumes are the volume manager's (some are mounts): it removes
	// them; the pod directory goes once they are gone.
	entries, err := os.ReadDir(sb.Dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		if e.Name() == "volumes" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(sb.Dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(sb.Dir); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// hostPorts are the pod's host ports, for portmap.
func hostPorts(pod *corev1.Pod) []networking.PortMapping {
	var out []networking.PortMapping
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, p := range c.Ports {
			if p.HostPort > 0 {
				out = append(out, networking.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort,
					Protocol: string(p.Protocol), HostIP: p.HostIP})
			}
		}
	}
	return out
}

// podHostname is the pod's hostname as upstream gives it: spec.hostname or
// the pod's name, cut to 63 characters; the node's name with hostNetwork.
func (r *podRuntime) podHostname(pod *corev1.Pod) string {
	if pod.Spec.HostNetwork {
		if h, err := os.Hostname(); err == nil {
			return h
		}
	}
	h := pod.Name
	if pod.Spec.Hostname != "" {
		h = pod.Spec.Hostname
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

// pinNamespaces makes new namespaces of the given kinds ("ipc", "uts") and
// bind-mounts each at dir/<kind>, setting hostname in the UTS one. The
// work runs on an OS thread of its own that is thrown away afterwards, so
// no other goroutine ever runs in the new namespaces.
func pinNamespaces(dir string, kinds []string, hostname string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	paths := map[string]string{}
	var flags int
	for _, k := range kinds {
		p := filepath.Join(dir, k)
		paths[k] = p
		if isNSMount(p) {
			continue // already there
		}
		switch k {
		case "ipc":
			flags |= unix.CLONE_NEWIPC
		case "uts":
			flags |= unix.CLONE_NEWUTS
		default:
			return nil, fmt.Errorf("namespace kind %q", k)
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_RDONLY, 0o444)
		if err != nil {
			return nil, err
		}
		f.Close()
	}
	if flags == 0 {
		return paths, nil
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine.
		runtime.LockOSThread()
		errc <- func() error {
			if err := unix.Unshare(flags); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			if flags&unix.CLONE_NEWUTS != 0 {
				if err := unix.Sethostname([]byte(hostname)); err != nil {
					return fmt.Errorf("sethostname: %w", err)
				}
			}
			tid := unix.Gettid()
			for _, k := range kinds {
				src := fmt.Sprintf("/proc/self/task/%d/ns/%s", tid, k)
				if isNSMount(paths[k]) {
					continue
				}
				if err := unix.Mount(src, paths[k], "", unix.MS_BIND, ""); err != nil {
					return fmt.Errorf("bind-mount %s namespace at %s: %w", k, paths[k], err)
				}
			}
			return nil
		}()
	}()
	if err := <-errc; err != nil {
		for _, k := range kinds {
			unix.Unmount(paths[k], unix.MNT_DETACH)
		}
		return nil, err
	}
	return paths, nil
}

// isNSMount tells whether path is a bind-mounted namespace (nsfs).
func isNSMount(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// writeFileReplace writes data to path through a temporary file and a
// rename. The bind mounts of these files in running containers keep the
// old inode, so a file a container already mounts is rewritten in place
// instead.
func writeFileReplace(path string, data []byte, mode os.FileMode) error {
	if _, err := os.Stat(path); err == nil {
		return os.WriteFile(path, data, mode)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
