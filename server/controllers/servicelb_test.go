package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// lbNode creates a node with an InternalIP, Ready or not.
func lbNode(t *testing.T, cs kubernetes.Interface, name, ip string, ready bool) {
	t.Helper()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	now := metav1.Now()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	n, err := cs.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, LastHeartbeatTime: now, LastTransitionTime: now}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func setNodeReady(t *testing.T, cs kubernetes.Interface, name string, ready bool) {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Conditions[0].Status = corev1.ConditionFalse
	if ready {
		n.Status.Conditions[0].Status = corev1.ConditionTrue
	}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func lbService(t *testing.T, cs kubernetes.Interface, name string, class *string) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: class,
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	if _, err := cs.CoreV1().Services("default").Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// ingressIs waits until the Service's ingress is ips, each with ipMode VIP.
func ingressIs(t *testing.T, cs kubernetes.Interface, name string, ips ...string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s's ingress %v", name, ips), func() error {
		svc, err := cs.CoreV1().Services("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var got []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IPMode == nil || *in.IPMode != corev1.LoadBalancerIPModeVIP {
				return fmt.Errorf("ingress %s has ipMode %v", in.IP, in.IPMode)
			}
			got = append(got, in.IP)
		}
		if strings.Join(got, ",") != strings.Join(ips, ",") {
			return fmt.Errorf("ingress %v", got)
		}
		return nil
	})
}

func TestServiceLB(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	lbNode(t, cs, "n1", "10.0.0.2", true)
	lbNode(t, cs, "n2", "10.0.0.1", true)
	lbNode(t, cs, "n3", "10.0.0.3", false)
	lbService(t, cs, "other-class", ptr.To("example.com/lb"))
	lbService(t, cs, "web", nil)
	runControllers(t, cfg, "server-a")

	// The Ready nodes' addresses, sorted, with an event.
	ingressIs(t, cs, "web", "10.0.0.1", "10.0.0.2")
	hasEvent(t, cs, "default", "web", "UpdatedIngressIP", "LoadBalancer Ingress IP addresses updated: 10.0.0.1, 10.0.0.2")
	// A Service of another load balancer class is not this controller's.
	ingressIs(t, cs, "other-class")

	// The nodes change.
	setNodeReady(t, cs, "n3", true)
	ingressIs(t, cs, "web", "10.0.0.1", "10.0.0.2", "10.0.0.3")
	setNodeReady(t, cs, "n2", false)
	ingressIs(t, cs, "web", "10.0.0.2", "10.0.0.3")
	n1, err := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n1.Labels = map[string]string{corev1.LabelNodeExcludeBalancers: ""}
	if _, err := cs.CoreV1().Nodes().Update(ctx, n1, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ingressIs(t, cs, "web", "10.0.0.3")
	if err := cs.CoreV1().Nodes().Delete(ctx, "n3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ingressIs(t, cs, "web")
	setNodeReady(t, cs, "n2", true)
	ingressIs(t, cs, "web", "10.0.0.1")

	// No longer a LoadBalancer: the ingress goes (the API server clears
	// it with the type change already; the controller would otherwise).
	eventually(t, "web made a ClusterIP service", func() error {
		svc, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		svc.Spec.Type = corev1.ServiceTypeClusterIP
		svc.Spec.ExternalTrafficPolicy = ""
		svc.Spec.AllocateLoadBalancerNodePorts = nil
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].NodePort = 0
		}
		_, err = cs.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{})
		return err
	})
	ingressIs(t, cs, "web")
	// A LoadBalancer again: addresses again.
	eventually(t, "web made a LoadBalancer again", func() error {
		svc, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		svc.Spec.Type = corev1.ServiceTypeLoadBalancer
		_, err = cs.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{})
		return err
	})
	ingressIs(t, cs, "web", "10.0.0.1")
	time.Sleep(200 * time.Millisecond)
	ingressIs(t, cs, "other-class")
}
