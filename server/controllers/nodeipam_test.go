package controllers_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"labctl/server/controllers"
)

func createNode(t *testing.T, cs kubernetes.Interface, name, podCIDR string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if podCIDR != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = podCIDR, []string{podCIDR}
	}
	if _, err := cs.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// podCIDR waits until node has a pod CIDR and returns it.
func podCIDR(t *testing.T, cs kubernetes.Interface, node string) string {
	t.Helper()
	var cidr string
	eventually(t, "a pod CIDR for "+node, func() error {
		n, err := cs.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if n.Spec.PodCIDR == "" {
			return fmt.Errorf("no pod CIDR yet")
		}
		if len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != n.Spec.PodCIDR {
			t.Fatalf("podCIDR %q, podCIDRs %q", n.Spec.PodCIDR, n.Spec.PodCIDRs)
		}
		cidr = n.Spec.PodCIDR
		return nil
	})
	return cidr
}

func TestNodeIPAM(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	cluster := netip.MustParsePrefix("10.99.0.0/22") // four /24s

	// A node that has a range already, from before this server started.
	createNode(t, cs, "old", "10.99.1.0/24")
	runTunedControllers(t, cfg, controllers.Config{ClusterCIDR: cluster})

	got := map[string]string{"10.99.1.0/24": "old"}
	for _, name := range []string{"n1", "n2", "n3"} {
		createNode(t, cs, name, "")
		cidr := podCIDR(t, cs, name)
		p := netip.MustParsePrefix(cidr)
		if p.Bits() != 24 || !cluster.Contains(p.Addr()) || p != p.Masked() {
			t.Errorf("%s got %s, not a /24 of %s", name, cidr, cluster)
		}
		if other, ok := got[cidr]; ok {
			t.Errorf("%s got %s, which %s has", name, cidr, other)
		}
		got[cidr] = name
	}

	// No /24 is left: the fifth node waits, with an event.
	createNode(t, cs, "n4", "")
	hasEvent(t, cs, "default", "n4", "CIDRAssignmentFailed",
		"Failed to allocate a pod CIDR to node n4: the cluster CIDR 10.99.0.0/22 has no /24 left")
	if n, _ := cs.CoreV1().Nodes().Get(ctx, "n4", metav1.GetOptions{}); n.Spec.PodCIDR != "" {
		t.Fatalf("n4 got %s from a full cluster CIDR", n.Spec.PodCIDR)
	}

	// A deleted node's range goes to the node that waits.
	freed := podCIDR(t, cs, "n2")
	if err := cs.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if cidr := podCIDR(t, cs, "n4"); cidr != freed {
		t.Errorf("n4 got %s, want the freed %s", cidr, freed)
	}
}

// The default cluster CIDR is 10.42.0.0/16, and a restarted controller
// manager does not give a range twice.
func TestNodeIPAMDefaultAndRestart(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	cluster := netip.MustParsePrefix("10.42.0.0/16")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		controllers.Run(ctx, controllers.Config{REST: cfg, Identity: "first", LeaseDuration: 2 * time.Second,
			RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond})
	}()
	seen := map[string]string{}
	for _, name := range []string{"a", "b"} {
		createNode(t, cs, name, "")
		cidr := podCIDR(t, cs, name)
		if p := netip.MustParsePrefix(cidr); p.Bits() != 24 || !cluster.Contains(p.Addr()) {
			t.Errorf("%s got %s", name, cidr)
		}
		seen[cidr] = name
	}
	cancel()
	<-done
	runControllers(t, cfg, "second")
	for _, name := range []string{"c", "d"} {
		createNode(t, cs, name, "")
		cidr := podCIDR(t, cs, name)
		if other, ok := seen[cidr]; ok {
			t.Errorf("%s got %s, which %s has", name, cidr, other)
		}
		seen[cidr] = name
	}
}
