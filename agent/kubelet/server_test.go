package kubelet

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport/spdy"

	"labctl/internal/syncbuf"
)

// writeCRILog writes lines "<time> <stream> <tag> <text>" to a file in
// dir; times are base plus i seconds.
func writeCRILog(t *testing.T, path string, base time.Time, lines ...[3]string) {
	t.Helper()
	var b strings.Builder
	for i, l := range lines {
		fmt.Fprintf(&b, "%s %s %s %s\n", base.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), l[0], l[1], l[2])
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}

var logBase = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// sampleLog: five lines, the third one split in parts, stderr between.
func sampleLog(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "0.log")
	writeCRILog(t, path, logBase,
		[3]string{"stdout", "F", "one"},
		[3]string{"stdout", "F", "two"},
		[3]string{"stdout", "P", "thr"},
		[3]string{"stdout", "P", "e"},
		[3]string{"stdout", "F", "e"},
		[3]string{"stderr", "F", "oops"},
		[3]string{"stdout", "F", "four"},
	)
	return path
}

func readLog(t *testing.T, path string, opts logReadOptions) (string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if err := readCRILog(context.Background(), path, opts, &out, &errb); err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String()
}

func TestReadCRILog(t *testing.T) {
	path := sampleLog(t)
	all := logReadOptions{TailLines: -1}
	for _, tc := range []struct {
		name           string
		opts           logReadOptions
		stdout, stderr string
	}{
		{"all, parts joined", all, "one\ntwo\nthree\nfour\n", "oops\n"},
		{"tail 2", logReadOptions{TailLines: 2}, "four\n", "oops\n"},
		{"tail 3 takes the whole split line", logReadOptions{TailLines: 3}, "three\nfour\n", "oops\n"},
		{"tail 0", logReadOptions{TailLines: 0}, "", ""},
		{"tail more than there is", logReadOptions{TailLines: 100}, "one\ntwo\nthree\nfour\n", "oops\n"},
		{"since the second line", logReadOptions{TailLines: -1, Since: logBase.Add(time.Second)}, "two\nthree\nfour\n", "oops\n"},
		// A line counts as of its first part: one that began before
		// since is left out whole.
		{"since the middle of a split line", logReadOptions{TailLines: -1, Since: logBase.Add(3 * time.Second)}, "four\n", "oops\n"},
		{"limit bytes", logReadOptions{TailLines: -1, LimitBytes: 10}, "one\ntwo\nth", ""},
		{"timestamps", logReadOptions{TailLines: 2, Timestamps: true},
			"2026-03-01T10:00:06.000000000Z four\n", "2026-03-01T10:00:05.000000000Z oops\n"},
		{"timestamps once per joined line", logReadOptions{TailLines: -1, Since: logBase.Add(2 * time.Second), Timestamps: true, LimitBytes: 37},
			"2026-03-01T10:00:02.000000000Z three\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs := readLog(t, path, tc.opts)
			if out != tc.stdout || errs != tc.stderr {
				t.Errorf("stdout %q stderr %q, want %q %q", out, errs, tc.stdout, tc.stderr)
			}
		})
	}
	// One stream only.
	var out bytes.Buffer
	if err := readCRILog(context.Background(), path, all, nil, &out); err != nil || out.String() != "oops\n" {
		t.Errorf("stderr only: %q %v", out.String(), err)
	}
	if err := readCRILog(context.Background(), filepath.Join(t.TempDir(), "none.log"), all, &out, nil); err == nil {
		t.Error("a missing file read")
	}
}

func TestReadCRILogUnfinished(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	writeCRILog(t, path, logBase, [3]string{"stdout", "F", "done"}, [3]string{"stdout", "P", "half a"})
	// A line whose end is not written yet comes out as it is.
	if out, _ := readLog(t, path, logReadOptions{TailLines: -1}); out != "done\nhalf a" {
		t.Errorf("with a part at the end: %q", out)
	}
	// Tail counts the finished lines; the part being written comes along.
	if out, _ := readLog(t, path, logReadOptions{TailLines: 1}); out != "done\nhalf a" {
		t.Errorf("tail 1: %q", out)
	}
	// Lines that are not CRI log lines are skipped.
	os.WriteFile(path, []byte("garbage\n"+logBase.Format(time.RFC3339Nano)+" stdout F ok\n"), 0o644)
	if out, _ := readLog(t, path, logReadOptions{TailLines: -1}); out != "ok\n" {
		t.Errorf("with garbage: %q", out)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReadCRILogFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	writeCRILog(t, path, logBase, [3]string{"stdout", "F", "first"}, [3]string{"stdout", "F", "second"})
	exited := make(chan struct{})
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- readCRILog(context.Background(), path, logReadOptions{TailLines: 1, Follow: true, Exited: exited, Poll: 10 * time.Millisecond}, &out, &out)
	}()
	waitFor(t, "the tail", func() bool { return out.String() == "second\n" })

	// The file grows: a whole line, then a line written in two goes (its
	// newline last), then a long line in parts.
	writeCRILog(t, path, logBase, [3]string{"stderr", "F", "third"})
	waitFor(t, "the third line", func() bool { return out.String() == "second\nthird\n" })
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	f.WriteString(logBase.Format(time.RFC3339Nano) + " stdout F fou")
	time.Sleep(50 * time.Millisecond)
	if s := out.String(); s != "second\nthird\n" {
		t.Errorf("half a line written out: %q", s)
	}
	f.WriteString("rth\n")
	f.Close()
	waitFor(t, "the fourth line", func() bool { return out.String() == "second\nthird\nfourth\n" })
	writeCRILog(t, path, logBase, [3]string{"stdout", "P", "fi"}, [3]string{"stdout", "F", "fth"})
	waitFor(t, "the fifth line", func() bool { return strings.HasSuffix(out.String(), "fourth\nfifth\n") })
	select {
	case err := <-done:
		t.Fatalf("follow ended with the container running: %v", err)
	default:
	}

	// The container writes its last line and exits: the line is read,
	// then the follow ends.
	writeCRILog(t, path, logBase, [3]string{"stdout", "F", "last"})
	close(exited)
	select {
	case err := <-done:
		if err != nil || !strings.HasSuffix(out.String(), "fifth\nlast\n") {
			t.Errorf("after the exit: %q %v", out.String(), err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end after the container exited")
	}

	// A follow whose client goes away ends with its context.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- readCRILog(ctx, path, logReadOptions{TailLines: 0, Follow: true}, io.Discard, io.Discard)
	}()
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("cancelled follow: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end with its context")
	}
}

func TestReadCRILogFollowRotated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	writeCRILog(t, path, logBase, [3]string{"stdout", "F", "old"})
	var out syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- readCRILog(ctx, path, logReadOptions{TailLines: -1, Follow: true, Poll: 10 * time.Millisecond}, &out, &out)
	}()
	waitFor(t, "the first line", func() bool { return out.String() == "old\n" })
	// Rotated: the last line goes to the old file, and a new file takes
	// the rest.
	writeCRILog(t, path, logBase, [3]string{"stdout", "F", "old last"})
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	writeCRILog(t, path, logBase, [3]string{"stdout", "F", "new"})
	waitFor(t, "the new file", func() bool { return out.String() == "old\nold last\nnew\n" })
	cancel()
	<-done
}

// Test PKI: a CA and client certificates it signs.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// clientPEM is a client certificate and key for user name in groups.
func (ca *testCA) clientPEM(t *testing.T, name string, groups ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name, Organization: groups},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// client is a client certificate for user name in groups.
func (ca *testCA) client(t *testing.T, name string, groups ...string) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(ca.clientPEM(t, name, groups...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakePods is a podLookup over fixed pods and runs.
type fakePods struct {
	mu   sync.Mutex
	pods []*corev1.Pod
	runs map[string][]string // uid/container
	// status, when set, makes a pod's status as Pod returns it.
	status func(*corev1.Pod) corev1.PodStatus
}

func (f *fakePods) Pod(namespace, name string) (*corev1.Pod, bool) {
	f.mu.Lock()
	var found *corev1.Pod
	for _, p := range f.pods {
		if p.Namespace == namespace && p.Name == name {
			found = p.DeepCopy()
		}
	}
	f.mu.Unlock()
	if found != nil && f.status != nil {
		found.Status = f.status(found)
	}
	return found, found != nil
}

func (f *fakePods) Pods() []*corev1.Pod {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*corev1.Pod(nil), f.pods...)
}

func (f *fakePods) ContainerRuns(_ context.Context, uid types.UID, container string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.runs[string(uid)+"/"+container]...), nil
}

func (f *fakePods) addRun(uid types.UID, container, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.runs == nil {
		f.runs = map[string][]string{}
	}
	f.runs[string(uid)+"/"+container] = append(f.runs[string(uid)+"/"+container], id)
}

var _ podLookup = (*fakePods)(nil)

// testServer serves the kubelet's API over TLS with a serving
// certificate of its own; its clients present certificates of ca.
type testServer struct {
	ks     *kubeletServer
	srv    *httptest.Server
	ca     *testCA
	caPEM  []byte // the serving certificate's CA
	dialer func(cert *tls.Certificate) *http.Client
}

func startTestServer(t *testing.T, pods podLookup, rt *podRuntime) *testServer {
	t.Helper()
	ca := newTestCA(t)
	dir := t.TempDir()
	cert, err := selfSignedServingCert(dir, "node1", []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if rt == nil {
		rt = &podRuntime{running: map[string]*runningContainer{}}
	}
	ks, err := newServer(serverConfig{Cert: cert, ClientCAs: ca.pool, Pods: pods, Runtime: rt, NodeName: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(ks.Handler())
	srv.TLS = ks.TLSConfig()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	crt, _ := os.ReadFile(filepath.Join(dir, "kubelet.crt"))
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(crt) {
		t.Fatal("kubelet.crt holds no certificates")
	}
	ts := &testServer{ks: ks, srv: srv, ca: ca, caPEM: crt}
	ts.dialer = func(c *tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: roots}
		if c != nil {
			cfg.Certificates = []tls.Certificate{*c}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 30 * time.Second}
	}
	return ts
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerAuth(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1"}}
	ts := startTestServer(t, &fakePods{pods: []*corev1.Pod{pod}}, nil)
	admin := ts.ca.client(t, "system:admin", "system:masters")
	apiserver := ts.ca.client(t, "kube-apiserver-kubelet-client")
	alice := ts.ca.client(t, "alice", "students")
	u := ts.srv.URL

	// /healthz needs no certificate; the rest do.
	if code, body := get(t, ts.dialer(nil), u+"/healthz"); code != 200 || body != "ok" {
		t.Errorf("healthz without a certificate: %d %q", code, body)
	}
	if code, body := get(t, ts.dialer(nil), u+"/pods"); code != 401 || body != "Unauthorized" {
		t.Errorf("pods without a certificate: %d %q", code, body)
	}
	for i, c := range []*tls.Certificate{&admin, &apiserver} {
		code, body := get(t, ts.dialer(c), u+"/pods")
		var list corev1.PodList
		if code != 200 || json.Unmarshal([]byte(body), &list) != nil || list.Kind != "PodList" || len(list.Items) != 1 || list.Items[0].Name != "web" {
			t.Errorf("pods as client %d: %d %s", i, code, body)
		}
	}
	// Anyone else is forbidden, with upstream's words.
	for path, want := range map[string]string{
		"/pods":                        "Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[pods proxy])\n",
		"/stats/summary":               "Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[stats])\n",
		"/containerLogs/default/web/c": "Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[proxy])\n",
	} {
		if code, body := get(t, ts.dialer(&alice), u+path); code != 403 || body != want {
			t.Errorf("%s as alice: %d %q", path, code, body)
		}
	}
	resp, err := ts.dialer(&alice).Post(u+"/exec/default/web/c?command=ls&output=1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || string(b) != "Forbidden (user=alice, verb=create, resource=nodes, subresource(s)=[proxy])\n" {
		t.Errorf("exec as alice: %d %q", resp.StatusCode, b)
	}
	// A certificate of another CA does not get through TLS.
	other := newTestCA(t).client(t, "system:admin", "system:masters")
	if _, err := ts.dialer(&other).Get(u + "/pods"); err == nil {
		t.Error("a certificate of another CA was accepted")
	}
	// Unknown paths and methods.
	if code, _ := get(t, ts.dialer(&admin), u+"/nope"); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
	resp, err = ts.dialer(&admin).Post(u+"/pods", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" {
		t.Errorf("POST /pods: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestContainerLogsErrors(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}, {Name: "pull"}, {Name: "back"}, {Name: "new"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonContainerCreating}}},
			{Name: "pull", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonErrImagePull}}},
			{Name: "back", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonImagePullBackOff}}},
		}},
	}
	ts := startTestServer(t, &fakePods{pods: []*corev1.Pod{pod}}, nil)
	admin := ts.ca.client(t, "system:admin", "system:masters")
	c := ts.dialer(&admin)
	base := ts.srv.URL + "/containerLogs/default/"
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"nope/app", 404, `pod "nope" does not exist`},
		{"web/other", 404, `container "other" not found in pod "web"`},
		{"web/app", 400, `container "app" in pod "web" is waiting to start: ContainerCreating`},
		{"web/pull", 400, `container "pull" in pod "web" is waiting to start: image can't be pulled`},
		{"web/back", 400, `container "back" in pod "web" is waiting to start: trying and failing to pull image`},
		{"web/new", 400, `container "new" in pod "web" is not available`},
		{"web/app?previous=true", 400, `previous terminated container "app" in pod "web" not found`},
		{"web/app?tailLines=x", 400, `{"message": "Unable to decode query."}`},
		{"web/app?tailLines=-1", 422, `{"message": "Invalid request."}`},
		{"web/app?limitBytes=0", 422, `{"message": "Invalid request."}`},
		{"web/app?sinceSeconds=1&sinceTime=2026-01-01T00:00:00Z", 422, `{"message": "Invalid request."}`},
		{"web/app?stream=Stdout&tailLines=1", 422, `{"message": "Invalid request."}`},
		{"//web/app", 400, `{"message": "Missing podNamespace."}`},
		{"/default//app", 400, `{"message": "Missing podID."}`},
	} {
		path := base + tc.path
		if strings.HasPrefix(tc.path, "/") {
			path = ts.srv.URL + "/containerLogs" + tc.path
		}
		if code, body := get(t, c, path); code != tc.code || body != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
		}
	}
}

func TestLogContainerID(t *testing.T) {
	fp := &fakePods{}
	s := &kubeletServer{cfg: serverConfig{Pods: fp}}
	uid := types.UID("u1")
	fp.addRun(uid, "c", "run0")
	fp.addRun(uid, "c", "run1")
	term := func(id string) *corev1.ContainerStateTerminated {
		return &corev1.ContainerStateTerminated{ExitCode: 1, ContainerID: id}
	}
	pod := func(st corev1.ContainerStatus) *corev1.Pod {
		st.Name = "c"
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: uid}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{st}}}
	}
	for _, tc := range []struct {
		name     string
		st       corev1.ContainerStatus
		previous bool
		want     string
		err      string
	}{
		{"running", corev1.ContainerStatus{ContainerID: "containerd://run1", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}, false, "run1", ""},
		{"previous of a running one", corev1.ContainerStatus{ContainerID: "containerd://run1", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
			LastTerminationState: corev1.ContainerState{Terminated: term("containerd://run0")}}, true, "run0", ""},
		{"previous without an ID: the run before", corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
			LastTerminationState: corev1.ContainerState{Terminated: term("")}}, true, "run0", ""},
		{"crash looping: the last run", corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff}},
			LastTerminationState: corev1.ContainerState{Terminated: term("")}}, false, "run1", ""},
		{"crash looping, previous", corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff}},
			LastTerminationState: corev1.ContainerState{Terminated: term("")}}, true, "run1", ""},
		{"terminated", corev1.ContainerStatus{State: corev1.ContainerState{Terminated: term("containerd://run1")}}, false, "run1", ""},
		{"no previous", corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}, true, "",
			`previous terminated container "c" in pod "p" not found`},
		{"no state", corev1.ContainerStatus{}, false, "", `container "c" in pod "p" is waiting to start - no logs yet`},
	} {
		got, err := s.logContainerID(context.Background(), pod(tc.st), "c", tc.previous)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
			t.Errorf("%s: %q %v, want %q %q", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestSelfSignedServingCert(t *testing.T) {
	dir := t.TempDir()
	ips := []net.IP{net.ParseIP("10.0.0.5")}
	c1, err := selfSignedServingCert(dir, "lab1", ips)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c1.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.VerifyHostname("lab1") != nil || leaf.VerifyHostname("10.0.0.5") != nil || leaf.VerifyHostname("lab2") == nil {
		t.Errorf("names: %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if len(c1.Certificate) != 2 || !strings.HasPrefix(leaf.Issuer.CommonName, "lab1-ca@") {
		t.Errorf("chain of %d, issuer %s", len(c1.Certificate), leaf.Issuer)
	}
	// The chain verifies against its own CA.
	ca, _ := x509.ParseCertificate(c1.Certificate[1])
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "lab1"}); err != nil {
		t.Error(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "kubelet.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", st.Mode(), err)
	}
	// Loaded again as it is; made again for another name.
	c2, err := selfSignedServingCert(dir, "lab1", ips)
	if err != nil || !bytes.Equal(c2.Certificate[0], c1.Certificate[0]) {
		t.Errorf("not loaded again: %v", err)
	}
	c3, err := selfSignedServingCert(dir, "lab2", nil)
	if err != nil || bytes.Equal(c3.Certificate[0], c1.Certificate[0]) {
		t.Errorf("not made again for another name: %v", err)
	}
}

func TestRequestAttributes(t *testing.T) {
	for _, tc := range []struct {
		method, path, verb, subs string
	}{
		{"GET", "/pods", "get", "[pods proxy]"},
		{"GET", "/runningpods/", "get", "[pods proxy]"},
		{"GET", "/healthz", "get", "[healthz proxy]"},
		{"GET", "/stats/summary", "get", "[stats]"},
		{"GET", "/metrics/cadvisor", "get", "[metrics]"},
		{"GET", "/logs/syslog", "get", "[log]"},
		{"POST", "/exec/a/b/c", "create", "[proxy]"},
		{"GET", "/containerLogs/a/b/c", "get", "[proxy]"},
		{"GET", "/podsx", "get", "[proxy]"},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		verb, subs := requestAttributes(r)
		if verb != tc.verb || fmt.Sprint(subs) != tc.subs {
			t.Errorf("%s %s: %s %v", tc.method, tc.path, verb, subs)
		}
	}
}

func TestServerRun(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1"}}
	ca := newTestCA(t)
	dir := t.TempDir()
	cert, err := selfSignedServingCert(dir, "node1", []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ks, err := newServer(serverConfig{Addr: addr, Cert: cert, ClientCAs: ca.pool, Pods: &fakePods{pods: []*corev1.Pod{pod}},
		Runtime: &podRuntime{running: map[string]*runningContainer{}}, NodeName: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ks.Run(ctx) }()

	crt, _ := os.ReadFile(filepath.Join(dir, "kubelet.crt"))
	certPEM, keyPEM := ca.clientPEM(t, "system:admin", "system:masters")
	cfg := &rest.Config{Host: "https://" + addr, TLSClientConfig: rest.TLSClientConfig{CAData: crt, CertData: certPEM, KeyData: keyPEM}}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server", func() bool {
		resp, err := hc.Get("https://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	// A port-forward connection (hijacked) is open when the server stops.
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("https://" + addr + "/portForward/default/web")
	dial := func() httpstream.Connection {
		conn, _, err := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u).Dial("portforward.k8s.io")
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	hijacked := func() int {
		ks.mu.Lock()
		defer ks.mu.Unlock()
		return len(ks.hijacked)
	}
	// One that ends is forgotten.
	conn := dial()
	waitFor(t, "the hijacked connection", func() bool { return hijacked() == 1 })
	conn.Close()
	waitFor(t, "the connection to be forgotten", func() bool { return hijacked() == 0 })
	conn = dial()
	defer conn.Close()
	waitFor(t, "the hijacked connection", func() bool { return hijacked() == 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	select {
	case <-conn.CloseChan():
	case <-time.After(10 * time.Second):
		t.Error("the port-forward connection outlived the server")
	}
	if _, err := hc.Get("https://" + addr + "/healthz"); err == nil {
		t.Error("still serving")
	}
	// Another server on the same address says what is wrong.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ks.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "another kubelet") {
		t.Errorf("Run on a taken port: %v", err)
	}
}
