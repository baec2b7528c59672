package kubelet

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// containerIndex knows which of labctl's containers belong to which pod.
//
// A pod's sync reads its containers several times. Asked with a label
// filter, containerd reads every container it has and filters after
// (its metadata has no index by label), so with 100 pods on the node each
// of those reads went through 100 containers. The index is filled by one
// list the first time a pod's containers are asked for, then kept by the
// runtime's own creations and removals. A container gone behind labctl's
// back stays in the index until someone finds it missing (forget); the
// callers already take a container that is not found as gone.
type containerIndex struct {
	mu     sync.Mutex
	loaded bool
	byPod  map[types.UID]map[string]runtimeContainer // by container ID
	pods   map[string]types.UID                      // container ID to pod
}

func newContainerIndex() *containerIndex {
	return &containerIndex{byPod: map[types.UID]map[string]runtimeContainer{}, pods: map[string]types.UID{}}
}

// pod returns the pod's containers, and whether the index has been
// loaded (if not, it knows only the containers created since it began).
func (x *containerIndex) pod(uid types.UID) ([]runtimeContainer, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []runtimeContainer
	for _, c := range x.byPod[uid] {
		out = append(out, c)
	}
	return out, x.loaded
}

// load adds what a list of every managed container found. Containers
// created or removed while the list ran are not undone: a creation is
// added by add as well, and a removal the list still saw comes back, to
// be forgotten when found missing.
func (x *containerIndex) load(all []runtimeContainer) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, c := range all {
		x.addLocked(c)
	}
	x.loaded = true
}

// add records a container the runtime created.
func (x *containerIndex) add(c runtimeContainer) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.addLocked(c)
}

func (x *containerIndex) addLocked(c runtimeContainer) {
	uid := types.UID(c.Labels[labelPodUID])
	if x.byPod[uid] == nil {
		x.byPod[uid] = map[string]runtimeContainer{}
	}
	x.byPod[uid][c.ID] = c
	x.pods[c.ID] = uid
}

// forget drops a container that was removed or found missing.
func (x *containerIndex) forget(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	uid, ok := x.pods[id]
	if !ok {
		return
	}
	delete(x.pods, id)
	delete(x.byPod[uid], id)
	if len(x.byPod[uid]) == 0 {
		delete(x.byPod, uid)
	}
}
