package networking

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A pod sandbox's network namespace is a file under <RunDir>/netns that a
// bind mount of the namespace keeps alive (as `ip netns add` does under
// /run/netns), so that it outlives the process that made it, runc can join
// it by path, and labctl finds it again after a restart.

// checkID refuses IDs that are not one plain file name.
func checkID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("networking: %q is not a valid pod sandbox ID", id)
	}
	return nil
}

// NetNSPath is where the network namespace of pod sandbox id is (or
// would be) mounted: <RunDir>/netns/<id>.
func (n *Network) NetNSPath(id string) string {
	return filepath.Join(n.netnsDir(), id)
}

func (n *Network) netnsDir() string { return filepath.Join(n.cfg.RunDir, "netns") }

// NewNetNS creates the network namespace of pod sandbox id, mounted at
// NetNSPath(id), and returns that path. The namespace has only its
// loopback device, up (what the CNI loopback plugin would do, without a
// process of its own for every pod), until Setup. When it already exists
// it is kept and its path returned, so a caller may retry.
func (n *Network) NewNetNS(id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	path := n.NetNSPath(id)
	if err := os.MkdirAll(n.netnsDir(), 0o755); err != nil {
		return "", fmt.Errorf("networking: %w", err)
	}
	if IsNetNS(path) {
		return path, nil
	}
	if err := createNetNS(path); err != nil {
		return "", fmt.Errorf("networking: creating the network namespace %s: %w", path, err)
	}
	return path, nil
}

// RemoveNetNS unmounts and removes the network namespace of pod sandbox
// id. The namespace itself goes when nothing else holds it (its
// processes are gone). Removing one that is not there is not an error.
func (n *Network) RemoveNetNS(id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	return RemoveNetNS(n.NetNSPath(id))
}

// createNetNS makes a new network namespace with its loopback device up
// and bind-mounts it at path, which must not exist yet (or be an empty
// file left by a failed attempt).
func createNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	errc := make(chan error, 1)
	// The namespace is made on a thread of its own, which moves back to
	// the original namespace afterwards; if it cannot, the goroutine ends
	// with the thread still locked, and Go discards the thread.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		setUpErr := setUpNetNS(path)
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(setUpErr, fmt.Errorf("returning to the original network namespace: %w", err))
			return // the thread stays locked and is thrown away
		}
		runtime.UnlockOSThread()
		errc <- setUpErr
	}()
	if err := <-errc; err != nil {
		_ = RemoveNetNS(path)
		return err
	}
	return nil
}

// setUpNetNS sets lo up in the calling thread's (new) network namespace
// and bind-mounts the namespace at path.
func setUpNetNS(path string) error {
	if err := loopbackUp(); err != nil {
		return err
	}
	src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount: %w", err)
	}
	return nil
}

// loopbackUp sets lo up in the network namespace of the calling thread.
func loopbackUp() error {
	h, err := netlink.NewHandle() // a socket in the thread's namespace
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("the loopback device: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("setting lo up: %w", err)
	}
	return nil
}

// RemoveNetNS unmounts the network namespace mounted at path and removes
// the file; a path that is not there is not an error.
func RemoveNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("networking: unmounting %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("networking: %w", err)
	}
	return nil
}

// IsNetNS tells whether path is a network namespace (a mounted one, or a
// /proc/<pid>/ns/net link).
func IsNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil || st.Type != unix.NSFS_MAGIC {
		return false
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		return false
	}
	defer h.Close()
	// nsfs also holds the other kinds of namespace: ask which this is.
	t, err := unix.IoctlRetInt(int(h), unix.NS_GET_NSTYPE)
	return err != nil || t == unix.CLONE_NEWNET
}

// OpenNetNS opens the network namespace at path; the caller closes the
// handle. netns.Set(handle) on a locked OS thread enters it; InNetNS does
// that for a function.
func OpenNetNS(path string) (netns.NsHandle, error) {
	if !IsNetNS(path) {
		return netns.None(), fmt.Errorf("networking: %s is not a network namespace", path)
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		return netns.None(), fmt.Errorf("networking: %w", err)
	}
	return h, nil
}

// InNetNS runs fn on an OS thread that is in the network namespace at
// path, and waits for it. Sockets fn opens belong to that namespace and
// may be used from any goroutine afterwards; goroutines fn starts run
// elsewhere.
func InNetNS(path string, fn func() error) error {
	target, err := OpenNetNS(path)
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("networking: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("networking: entering %s: %w", path, err)
			return
		}
		fnErr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(fnErr, fmt.Errorf("networking: leaving %s: %w", path, err))
			return // the thread stays locked and is thrown away
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}
