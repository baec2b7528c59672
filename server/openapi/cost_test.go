package openapi

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/scheme"
)

// heapSampler records the largest live-heap figure seen while it runs.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Uint64
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(h.done)
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 { close(h.stop); <-h.done; return h.peak.Load() }

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

const mb = 1 << 20

// TestBuildCost measures the build time and the memory of the documents of
// kubeResources (run with -v to see the figures). It fails when the kept
// documents exceed a few megabytes.
func TestBuildCost(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	base := heapInUse()

	start := time.Now()
	s, err := New(kubeResources(), scheme.Scheme)
	if err != nil {
		t.Fatal(err)
	}
	tNew := time.Since(start)
	afterNew := heapInUse()

	h := sampleHeap()
	start = time.Now()
	v2, err := s.v2Doc()
	if err != nil {
		t.Fatal(err)
	}
	tV2 := time.Since(start)
	peakV2 := h.Stop()
	afterV2 := heapInUse()

	h = sampleHeap()
	start = time.Now()
	idx, err := s.v3Index()
	if err != nil {
		t.Fatal(err)
	}
	tV3 := time.Since(start)
	peakV3 := h.Stop()
	afterV3 := heapInUse()

	var v3JSON, v3GZ int
	s.mu.RLock()
	for _, d := range s.v3 {
		v3JSON += d.json.size
		v3GZ += len(d.json.gz)
	}
	n := len(s.v3)
	s.mu.RUnlock()
	pb, err := s.v3["apis/apps/v1"].protobuf()
	if err != nil {
		t.Fatal(err)
	}

	t.Logf("New (route tables, definition index): %v, heap +%.2f MB", tNew.Round(time.Millisecond), float64(afterNew-base)/mb)
	t.Logf("v2: built in %v, peak live heap %.1f MB above idle; JSON %.2f MB (gzip %.2f MB), protobuf %.2f MB (gzip %.2f MB); kept +%.2f MB",
		tV2.Round(time.Millisecond), float64(peakV2-afterNew)/mb, float64(v2.json.size)/mb, float64(len(v2.json.gz))/mb,
		float64(v2.proto.size)/mb, float64(len(v2.proto.gz))/mb, float64(afterV2-afterNew)/mb)
	t.Logf("v3: %d group-versions built in %v, peak live heap %.1f MB above idle; JSON %.2f MB total (gzip %.2f MB), index %d bytes; kept +%.2f MB",
		n, tV3.Round(time.Millisecond), float64(peakV3-afterV2)/mb, float64(v3JSON)/mb, float64(v3GZ)/mb, idx.size, float64(afterV3-afterV2)/mb)
	t.Logf("v3 apps/v1: JSON %d bytes (gzip %d), protobuf %d bytes (gzip %d)",
		s.v3["apis/apps/v1"].json.size, len(s.v3["apis/apps/v1"].json.gz), pb.size, len(pb.gz))
	t.Logf("total kept after all builds: %.2f MB", float64(afterV3-base)/mb)

	if kept := afterV3 - base; kept > 8*mb {
		t.Errorf("documents keep %.1f MB of heap", float64(kept)/mb)
	}
	runtime.KeepAlive(s)
}
