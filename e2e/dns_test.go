package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestClusterDNS resolves names from a pod through the cluster DNS
// address (the proxy sends it to the CoreDNS in labctl): services by
// short and full names, a headless service's pods, a StatefulSet pod's
// own name, SRV records, an ExternalName, and a name outside the
// cluster, which CoreDNS forwards to the upstream resolver the test runs
// on loopback (the test reaches no real network).
func TestClusterDNS(t *testing.T) {
	upstream := startFakeUpstream(t, map[string]string{"outside.example.": "203.0.113.7"})
	resolv := writeFile(t, t.TempDir(), "resolv.conf", "nameserver "+upstream+"\n")
	n := startNodeClusterWith(t, clusterOptions{resolvConf: resolv})
	img := importedImage
	n.apply(t, webDeployment(2, false)+fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: db, port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: db, image: %[1]s, command: [sh, -c, 'sleep 3600']}
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: outside.example
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: %[1]s, command: [sh, -c, 'sleep 3600']}
`, img))
	for _, w := range []string{"deploy/web", "statefulset/db"} {
		if r := n.admin(t, "rollout", "status", w, "--timeout=90s"); r.code != 0 {
			t.Fatalf("%s: %s", w, r)
		}
	}
	n.waitPod(t, "default", "client", 60*time.Second, "Running", phaseIs("Running"))
	webIP := strings.TrimSpace(n.admin(t, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").stdout)
	db0 := strings.TrimSpace(n.admin(t, "get", "pod", "db-0", "-o", "jsonpath={.status.podIP}").stdout)
	db1 := strings.TrimSpace(n.admin(t, "get", "pod", "db-1", "-o", "jsonpath={.status.podIP}").stdout)

	exec := func(args ...string) result {
		return n.admin(t, append([]string{"exec", "client", "--"}, args...)...)
	}
	// lookup retries a little: a new Service reaches CoreDNS through a watch.
	lookup := func(t *testing.T, want []string, args ...string) {
		t.Helper()
		var r result
		for i := 0; i < 20; i++ {
			r = exec(append([]string{"nslookup"}, args...)...)
			ok := r.code == 0
			for _, w := range want {
				ok = ok && strings.Contains(r.stdout, w)
			}
			if ok {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Errorf("nslookup %v: want %q in\n%s", args, want, r)
	}

	t.Run("services by name", func(t *testing.T) {
		lookup(t, []string{webIP}, "web.default.svc.cluster.local")
		lookup(t, []string{"10.43.0.1"}, "kubernetes.default.svc.cluster.local")
		for _, name := range []string{"web", "web.default", "web.default.svc.cluster.local"} {
			if r := exec("timeout", "5", "wget", "-qO-", "http://"+name+"/"); r.code != 0 || !strings.HasPrefix(r.stdout, "web-") {
				t.Errorf("wget http://%s/: %s", name, r)
			}
		}
		// The API server behind the kubernetes Service answers (HTTP to an
		// HTTPS port: its 400 shows the connection was made).
		r := exec("timeout", "5", "wget", "-qO-", "http://kubernetes.default.svc:443/")
		if !strings.Contains(r.stderr, "400") {
			t.Errorf("the API server through kubernetes.default.svc: %s", r)
		}
	})

	t.Run("headless and StatefulSet pods", func(t *testing.T) {
		lookup(t, []string{db0, db1}, "db.default.svc.cluster.local")
		lookup(t, []string{db0}, "db-0.db.default.svc.cluster.local")
	})

	t.Run("SRV", func(t *testing.T) {
		lookup(t, []string{"80", "web.default.svc.cluster.local"}, "-type=SRV", "_http._tcp.web.default.svc.cluster.local")
	})

	t.Run("ExternalName and names outside the cluster", func(t *testing.T) {
		lookup(t, []string{"outside.example", "203.0.113.7"}, "ext.default.svc.cluster.local")
		lookup(t, []string{"203.0.113.7"}, "outside.example")
		r := exec("nslookup", "nothing.default.svc.cluster.local")
		if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "NXDOMAIN") {
			t.Errorf("an unknown service name: %s", r)
		}
	})

	t.Run("kube-dns", func(t *testing.T) {
		row := n.admin(t, "get", "svc", "-n", "kube-system", "kube-dns").stdout
		if !strings.Contains(row, "10.43.0.10") || !strings.Contains(row, "53/UDP,53/TCP,9153/TCP") {
			t.Errorf("kubectl get svc -n kube-system kube-dns:\n%s", row)
		}
	})
}

// startFakeUpstream runs a DNS server on a loopback address at port 53
// (resolv.conf has no ports) that answers the A records in answers.
func startFakeUpstream(t *testing.T, answers map[string]string) string {
	t.Helper()
	var pc net.PacketConn
	var addr string
	for i := 0; i < 20; i++ {
		addr = fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), 1+rand.IntN(250), 1+rand.IntN(250))
		var err error
		if pc, err = net.ListenPacket("udp", net.JoinHostPort(addr, "53")); err == nil {
			break
		}
	}
	if pc == nil {
		t.Fatal("no loopback address for the fake upstream resolver")
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			ip, ok := answers[strings.ToLower(question.Name)]
			if !ok {
				m.Rcode = dns.RcodeNameError
				continue
			}
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30},
					A: net.ParseIP(ip)})
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return addr
}
