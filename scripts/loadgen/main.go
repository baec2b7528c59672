// Command loadgen measures a labctl API server the way BENCHMARKS.md
// reports it: it starts `labctl server --disable-agent` on a fresh data
// directory, times launch to /readyz, reads the server's memory idle, drives
// it with client-go (ConfigMap creates at several concurrencies over JSON
// and protobuf, GET and LIST latencies, watch fan-out), and reads the
// memory again. With -scenario controllers it measures the controllers
// and the scheduler instead (controllers.go).
//
//	scripts/build.sh /tmp/labctl && go run ./scripts/loadgen -labctl /tmp/labctl
//	go run ./scripts/loadgen -labctl /tmp/labctl -scenario controllers
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	labctl := flag.String("labctl", "labctl", "the labctl binary to start")
	creates := flag.Int("creates", 3000, "ConfigMaps created per create run")
	cpuProfile := flag.String("cpuprofile", "", "with -scenario controllers: write the server's CPU profile of the idle minute here")
	scenario := flag.String("scenario", "api", "what to measure: api (the API server) or controllers (controllers and scheduler)")
	flag.Parse()
	if *scenario != "api" && *scenario != "controllers" {
		fmt.Fprintf(os.Stderr, "loadgen: -scenario %q: use api or controllers\n", *scenario)
		os.Exit(2)
	}
	if err := run(*labctl, *creates, *scenario, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(labctl string, creates int, scenario, cpuProfile string) error {
	dir, err := os.MkdirTemp("", "loadgen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	port, err := freePort()
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(dir, "admin.yaml")
	cmd := exec.Command(labctl, "server", "--disable-agent", "--data-dir", filepath.Join(dir, "data"),
		"--write-kubeconfig", kubeconfig, "--bind-address", "127.0.0.1", "--https-listen-port", strconv.Itoa(port))
	cmd.Stderr, err = os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return err
	}
	launched := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	cfg, err := waitReady(kubeconfig, 30*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("launch to /readyz: %v\n", time.Since(launched).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	fmt.Printf("RSS 2 s after /readyz: %s\n", rss(cmd.Process.Pid))
	// Idle: once start-up has settled and labctl has given back the pages
	// of its executable that start-up touched (internal/memtrim, 10 s
	// after launch).
	time.Sleep(time.Until(launched.Add(idleAfter)))
	fmt.Printf("RSS idle (%v after launch): %s\n", idleAfter, rss(cmd.Process.Pid))

	ctx := context.Background()
	if scenario == "controllers" {
		return controllerScenario(ctx, cfg, cmd.Process.Pid, cpuProfile)
	}
	for _, ct := range []string{"application/json", "application/vnd.kubernetes.protobuf"} {
		for _, conc := range []int{1, 16} {
			cs, err := client(cfg, ct, conc)
			if err != nil {
				return err
			}
			ns := fmt.Sprintf("create-%d-%s", conc, strings.TrimPrefix(strings.TrimPrefix(ct, "application/"), "vnd.kubernetes."))
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				return err
			}
			rate, err := createRate(ctx, cs, ns, conc, creates)
			if err != nil {
				return err
			}
			fmt.Printf("ConfigMap creates/s, %s, concurrency %d: %.0f\n", ct, conc, rate)
		}
	}

	cs, err := client(cfg, "application/vnd.kubernetes.protobuf", 16)
	if err != nil {
		return err
	}
	for _, n := range []int{500, 5000} {
		ns := fmt.Sprintf("list-%d", n)
		cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if _, err := createRate(ctx, cs, ns, 16, n); err != nil {
			return err
		}
		lat, err := measure(50, func() error {
			l, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
			// n, and the kube-root-ca.crt the controllers put in every namespace.
			if err == nil && len(l.Items) < n {
				err = fmt.Errorf("listed %d, want %d", len(l.Items), n)
			}
			return err
		})
		if err != nil {
			return err
		}
		fmt.Printf("LIST of %d ConfigMaps (protobuf): p50 %v p99 %v\n", n, lat.p(50), lat.p(99))
	}
	lat, err := measure(1000, func() error {
		_, err := cs.CoreV1().ConfigMaps("list-500").Get(ctx, "cm-7", metav1.GetOptions{})
		return err
	})
	if err != nil {
		return err
	}
	fmt.Printf("GET of a ConfigMap (protobuf): p50 %v p99 %v\n", lat.p(50), lat.p(99))

	fan, err := fanOut(ctx, cs, 100, 50)
	if err != nil {
		return err
	}
	fmt.Printf("watch fan-out to 100 watchers, create to last delivery: p50 %v p99 %v\n", fan.p(50), fan.p(99))
	fmt.Printf("RSS after the load: %s\n", rss(cmd.Process.Pid))
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls /readyz with the admin kubeconfig once it is written.
func waitReady(kubeconfig string, limit time.Duration) (*rest.Config, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err == nil {
			cs, err := kubernetes.NewForConfig(cfg)
			if err == nil {
				if body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background()); err == nil && string(body) == "ok" {
					return cfg, nil
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil, errors.New("the server was not ready in time")
}

func client(cfg *rest.Config, contentType string, conc int) (*kubernetes.Clientset, error) {
	c := rest.CopyConfig(cfg)
	c.ContentType = contentType
	c.AcceptContentTypes = contentType + ",application/json"
	c.QPS, c.Burst = -1, conc*2
	return kubernetes.NewForConfig(c)
}

func createRate(ctx context.Context, cs *kubernetes.Clientset, ns string, conc, n int) (float64, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	start := time.Now()
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}, Data: map[string]string{"key": strings.Repeat("v", 256)}}
				if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), firstErr
}

type latencies []time.Duration

func (l latencies) p(pct int) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := (len(l)*pct + 99) / 100
	return l[min(max(i-1, 0), len(l)-1)].Round(10 * time.Microsecond)
}

func measure(n int, fn func() error) (latencies, error) {
	var out latencies
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := fn(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// fanOut starts watchers watching one namespace, then creates objects one
// at a time and times each from the create call until every watcher has it.
func fanOut(ctx context.Context, cs *kubernetes.Clientset, watchers, rounds int) (latencies, error) {
	ns := "fanout"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got sync.WaitGroup
	for w := 0; w < watchers; w++ {
		wi, err := cs.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: latestRV(ctx, cs, ns)})
		if err != nil {
			return nil, err
		}
		go func() {
			for ev := range wi.ResultChan() {
				// Only ours: the controllers add kube-root-ca.crt here too.
				if cm, ok := ev.Object.(*corev1.ConfigMap); ok && ev.Type == watch.Added && strings.HasPrefix(cm.Name, "fan-") {
					got.Done()
				}
			}
		}()
	}
	return measure(rounds, func() error {
		got.Add(watchers)
		_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "fan-"}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		got.Wait()
		return nil
	})
}

func latestRV(ctx context.Context, cs *kubernetes.Clientset, ns string) string {
	l, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	return l.ResourceVersion
}

// idleAfter is when after launch the server's idle memory is read.
const idleAfter = 15 * time.Second

// rss reads a process's resident memory, split into anonymous memory and
// file-backed pages of the binary.
func rss(pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			vals[k] = strings.TrimSpace(v)
		}
	}
	return fmt.Sprintf("%s (anonymous %s, file-backed %s)", vals["VmRSS"], vals["RssAnon"], vals["RssFile"])
}
