package e2e

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestServices sends real traffic through Services on the server's
// node: ClusterIP from a pod, NodePort and LoadBalancer from the host,
// only ready endpoints in the rotation, session affinity, a pod reaching
// itself through its Service, and a refusal for a Service without
// endpoints.
func TestServices(t *testing.T) {
	n := startNodeCluster(t)
	img := importedImage
	n.apply(t, webDeployment(3, true)+fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 8081, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-sticky}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: nobody}
spec:
  selector: {app: nobody}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: %[1]s, command: [sh, -c, 'sleep 3600']}
`, img))
	if r := n.admin(t, "rollout", "status", "deploy/web", "--timeout=90s"); r.code != 0 {
		t.Fatalf("the web pods did not become ready: %s", r)
	}
	n.waitPod(t, "default", "client", 60*time.Second, "Running", phaseIs("Running"))
	clusterIP := strings.TrimSpace(n.admin(t, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").stdout)
	nodeIP := strings.TrimSpace(n.admin(t, "get", "node", nodeName, "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`).stdout)
	pods := strings.Fields(n.admin(t, "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}").stdout)
	if len(pods) != 3 || clusterIP == "" || nodeIP == "" {
		t.Fatalf("pods %v, cluster IP %q, node IP %q", pods, clusterIP, nodeIP)
	}

	// fromPod fetches url from the client pod.
	fromPod := func(pod, url string) (string, error) {
		r := n.admin(t, "exec", pod, "--", "timeout", "5", "wget", "-qO-", url)
		if r.code != 0 {
			return "", fmt.Errorf("%s", r)
		}
		return strings.TrimSpace(r.stdout), nil
	}
	// spread fetches url n times with fetch and counts the answers.
	spread := func(times int, fetch func() (string, error)) map[string]int {
		seen := map[string]int{}
		for i := 0; i < times; i++ {
			got, err := fetch()
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return seen
			}
			seen[got]++
		}
		return seen
	}

	t.Run("ClusterIP from a pod", func(t *testing.T) {
		seen := spread(15, func() (string, error) { return fromPod("client", "http://"+clusterIP+"/") })
		for host := range seen {
			if !slices.Contains(pods, host) {
				t.Errorf("answer %q is no web pod (%v)", host, pods)
			}
		}
		if len(seen) < 2 {
			t.Errorf("15 requests all went to %v: no balancing", seen)
		}
	})

	t.Run("NodePort and LoadBalancer from the host", func(t *testing.T) {
		if got, err := httpGet(fmt.Sprintf("http://%s:30080/", nodeIP)); err != nil || !slices.Contains(pods, strings.TrimSpace(got)) {
			t.Errorf("NodePort %s:30080: %q %v", nodeIP, got, err)
		}
		lb := n.waitSvcIngress(t, "web-lb")
		if lb != nodeIP {
			t.Errorf("LoadBalancer ingress %q, want the node's %s", lb, nodeIP)
		}
		if got, err := httpGet(fmt.Sprintf("http://%s:8081/", lb)); err != nil || !slices.Contains(pods, strings.TrimSpace(got)) {
			t.Errorf("LoadBalancer %s:8081: %q %v", lb, got, err)
		}
		row := n.admin(t, "get", "svc", "web-lb").stdout
		if !strings.Contains(row, nodeIP) || !strings.Contains(row, "8081:3") {
			t.Errorf("kubectl get svc web-lb:\n%s", row)
		}
	})

	t.Run("only ready endpoints", func(t *testing.T) {
		out := pods[0]
		n.admin(t, "exec", out, "--", "rm", "/tmp/ready")
		n.waitPod(t, "default", out, 30*time.Second, "unready", func(p map[string]any) bool {
			return fieldString(containerStatus(p, "web"), "ready") == "false"
		})
		time.Sleep(time.Second) // the EndpointSlice, then the rules
		seen := spread(12, func() (string, error) { return fromPod("client", "http://"+clusterIP+"/") })
		if seen[out] > 0 {
			t.Errorf("the unready pod %s still got %d of 12 requests: %v", out, seen[out], seen)
		}
		n.admin(t, "exec", out, "--", "touch", "/tmp/ready")
		deadline := time.Now().Add(30 * time.Second)
		for {
			if got, _ := fromPod("client", "http://"+clusterIP+"/"); got == out {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never came back into the rotation", out)
			}
		}
	})

	t.Run("session affinity", func(t *testing.T) {
		ip := strings.TrimSpace(n.admin(t, "get", "svc", "web-sticky", "-o", "jsonpath={.spec.clusterIP}").stdout)
		seen := spread(8, func() (string, error) { return fromPod("client", "http://"+ip+"/") })
		if len(seen) != 1 {
			t.Errorf("sessionAffinity ClientIP: answers from %v", seen)
		}
	})

	t.Run("hairpin", func(t *testing.T) {
		// A web pod reaches the Service until it lands on itself.
		self := pods[1]
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, err := fromPod(self, "http://"+clusterIP+"/")
			if err != nil {
				t.Fatalf("from %s to its own Service: %v", self, err)
			}
			if got == self {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never reached itself through its Service", self)
			}
		}
	})

	t.Run("no endpoints refused", func(t *testing.T) {
		ip := strings.TrimSpace(n.admin(t, "get", "svc", "nobody", "-o", "jsonpath={.spec.clusterIP}").stdout)
		start := time.Now()
		conn, err := net.DialTimeout("tcp", ip+":80", 5*time.Second)
		if err == nil {
			conn.Close()
			t.Fatalf("connected to %s:80, a Service without endpoints", ip)
		}
		if !strings.Contains(err.Error(), "refused") || time.Since(start) > 2*time.Second {
			t.Errorf("dial %s:80 after %v: %v; want connection refused at once", ip, time.Since(start), err)
		}
	})
}

// waitSvcIngress waits for the Service's first LoadBalancer ingress IP.
func (n *nodeCluster) waitSvcIngress(t *testing.T, svc string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ip := strings.TrimSpace(n.admin(t, "get", "svc", svc, "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}").stdout)
		if ip != "" {
			return ip
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("service %s got no LoadBalancer ingress", svc)
	return ""
}
