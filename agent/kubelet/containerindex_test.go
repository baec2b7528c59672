package kubelet

import (
	"sort"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func indexed(uid types.UID, id, name string) runtimeContainer {
	return newRuntimeContainer(id, map[string]string{labelPodUID: string(uid), labelContainerName: name, labelRestartCount: "0"})
}

func ids(cs []runtimeContainer) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	sort.Strings(out)
	return out
}

func TestContainerIndex(t *testing.T) {
	x := newContainerIndex()
	// Created before the first load: known, but the index is not loaded.
	x.add(indexed("p1", "c-new", "web"))
	if cs, loaded := x.pod("p1"); loaded || len(cs) != 1 {
		t.Fatalf("before load: %v, loaded %v", ids(cs), loaded)
	}
	// The load adds the rest, and keeps what add recorded meanwhile.
	x.load([]runtimeContainer{indexed("p1", "c-old", "web"), indexed("p2", "d", "db")})
	cs, loaded := x.pod("p1")
	if !loaded || len(cs) != 2 || ids(cs)[0] != "c-new" || ids(cs)[1] != "c-old" {
		t.Fatalf("after load: %v, loaded %v", ids(cs), loaded)
	}
	x.forget("c-old")
	x.forget("unknown")
	if cs, _ := x.pod("p1"); len(cs) != 1 || cs[0].ID != "c-new" || cs[0].Name != "web" {
		t.Errorf("after forget: %v", ids(cs))
	}
	x.forget("d")
	if cs, _ := x.pod("p2"); len(cs) != 0 {
		t.Errorf("p2 after forget: %v", ids(cs))
	}
	if len(x.byPod) != 1 || len(x.pods) != 1 {
		t.Errorf("left behind: %v %v", x.byPod, x.pods)
	}
}
