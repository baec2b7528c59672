package coredns_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"labctl/addons/coredns"
)

// BenchmarkLaunch measures Run's start to the first answer for a cluster
// name: the API is up, as when labctl server starts its add-ons.
//
//	go test ./addons/coredns -run '^$' -bench Launch -benchtime 20x
func BenchmarkLaunch(b *testing.B) {
	e := newEnv(b, slog.LevelWarn)
	web := create(b, e.cs.CoreV1().Services("default").Create, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	})
	var total time.Duration
	var launches []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- coredns.Run(ctx, e.cfg) }()
		for {
			m, err := exchange(e.dns, "web.default.svc.cluster.local.", dns.TypeA, 50*time.Millisecond)
			if err == nil && slices.Equal(addrsOf(m), []string{web.Spec.ClusterIP}) {
				break
			}
			select {
			case err := <-done:
				b.Fatalf("Run returned: %v", err)
			default:
			}
			if time.Since(start) > 10*time.Second {
				b.Fatal("no answer within 10s")
			}
			time.Sleep(2 * time.Millisecond)
		}
		d := time.Since(start)
		total += d
		launches = append(launches, d)
		b.StopTimer()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	slices.Sort(launches)
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/launch")
	b.ReportMetric(float64(launches[len(launches)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkQuery measures queries/s and latency against the in-process
// CoreDNS over UDP, from one client and from eight at once (on a 2-core
// machine the clients share the CPUs with the server):
//
//	go test ./addons/coredns -run '^$' -bench Query -benchtime 50000x
func BenchmarkQuery(b *testing.B) {
	e := newEnv(b, slog.LevelWarn)
	e.start(b)
	web := create(b, e.cs.CoreV1().Services("default").Create, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	})
	e.await(b, "web.default.svc.cluster.local", dns.TypeA, web.Spec.ClusterIP, hasAddrs(web.Spec.ClusterIP))
	e.await(b, "example.org", dns.TypeA, "192.0.2.7", hasAddrs("192.0.2.7"))
	for _, bc := range []struct{ name, qname string }{
		{"service", "web.default.svc.cluster.local."}, // the kubernetes plugin
		{"forwarded-cached", "example.org."},          // forward, answered by the cache
	} {
		for _, clients := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/clients=%d", bc.name, clients), func(b *testing.B) {
				lat := make([][]time.Duration, clients)
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for c := range clients {
					n := b.N / clients
					if c < b.N%clients {
						n++
					}
					wg.Go(func() { lat[c] = queryLoop(b, e.dns, bc.qname, n) })
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				all := slices.Concat(lat...)
				if len(all) == 0 {
					return
				}
				slices.Sort(all)
				pct := func(p float64) float64 { return float64(all[int(float64(len(all)-1)*p)].Microseconds()) }
				b.ReportMetric(float64(len(all))/elapsed.Seconds(), "queries/s")
				b.ReportMetric(pct(0.50), "p50-µs")
				b.ReportMetric(pct(0.99), "p99-µs")
			})
		}
	}
}

// queryLoop asks n times over one UDP socket and returns the latencies.
func queryLoop(b *testing.B, addr, qname string, n int) []time.Duration {
	conn, err := dns.Dial("udp", addr)
	if err != nil {
		b.Error(err)
		return nil
	}
	defer conn.Close()
	lat := make([]time.Duration, 0, n)
	m := new(dns.Msg)
	m.SetQuestion(qname, dns.TypeA)
	for range n {
		m.Id = dns.Id()
		t0 := time.Now()
		_ = conn.SetDeadline(t0.Add(2 * time.Second))
		if err := conn.WriteMsg(m); err != nil {
			b.Error(err)
			return lat
		}
		r, err := conn.ReadMsg()
		if err != nil {
			b.Error(err)
			return lat
		}
		lat = append(lat, time.Since(t0))
		if r.Id != m.Id || len(r.Answer) != 1 {
			b.Errorf("answer %v", r)
			return lat
		}
	}
	return lat
}
