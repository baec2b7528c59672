package controllers_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"labctl/internal/apitest"
	"labctl/server/controllers"
)

// startAPI serves the API over an in-memory store on a test HTTP server.
func startAPI(t *testing.T) *rest.Config {
	t.Helper()
	cfg := apitest.Start(t)
	defaultServiceAccount(t, cfg)
	return cfg
}

// runControllers runs the manager until the test ends.
func runControllers(t *testing.T, cfg *rest.Config, identity string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := controllers.Run(ctx, controllers.Config{REST: cfg, Identity: identity, RootCA: []byte("the CA"),
			LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond})
		if err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// eventually polls fn until it returns nil or 20 s pass.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = fn(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

func TestDefaultServiceAccountAndRootCA(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	runControllers(t, cfg, "server-a")
	runControllers(t, cfg, "server-b") // a second server on the same store waits for the Lease

	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease", "team"} {
		eventually(t, "default service account in "+ns, func() error {
			_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
			return err
		})
		eventually(t, "kube-root-ca.crt in "+ns, func() error {
			cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
			if err == nil && cm.Data["ca.crt"] != "the CA" {
				t.Fatalf("ca.crt = %q", cm.Data["ca.crt"])
			}
			return err
		})
	}
	// Deleted or changed, they come back.
	if err := cs.CoreV1().ServiceAccounts("team").Delete(ctx, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cm, _ := cs.CoreV1().ConfigMaps("team").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	cm.Data["ca.crt"] = "tampered"
	if _, err := cs.CoreV1().ConfigMaps("team").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the default service account back", func() error {
		_, err := cs.CoreV1().ServiceAccounts("team").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	eventually(t, "kube-root-ca.crt restored", func() error {
		cm, err := cs.CoreV1().ConfigMaps("team").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if err == nil && cm.Data["ca.crt"] != "the CA" {
			return errString("still " + cm.Data["ca.crt"])
		}
		return err
	})
	lease, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, "kube-controller-manager", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil {
		t.Fatalf("lease: %v %v", lease, err)
	}
	if h := *lease.Spec.HolderIdentity; h != "server-a" && h != "server-b" {
		t.Fatalf("lease held by %q", h)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
