package memtrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The Go runtime keeps the heap pages a collection frees for the next
// allocations, up to about the heap goal (twice the live heap): a server
// at rest holds on to some 8 MB it does not use. WhenIdle gives them back
// when the process has gone quiet.

// allocatedBytes is the metric of the bytes the process has allocated.
const allocatedBytes = "/gc/heap/allocs:bytes"

// WhenIdle checks every period how much the process allocated since the
// last check; below quiet bytes (a server nobody talks to), it collects
// and returns the free heap to the operating system (debug.FreeOSMemory:
// a full collection, a few milliseconds of CPU for labctl's heap). It
// returns when ctx ends.
func WhenIdle(ctx context.Context, period time.Duration, quiet uint64) {
	sample := []metrics.Sample{{Name: allocatedBytes}}
	read := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	t := time.NewTicker(period)
	defer t.Stop()
	last := read()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := read()
		if now-last < quiet {
			debug.FreeOSMemory()
			now = read() // the collection's own allocations are not the process's
		}
		last = now
	}
}
