// Package storetest is the conformance suite for datastore.Interface. Every
// backend runs it from its own tests:
//
//	storetest.Run(t, func(t *testing.T, cfg datastore.Config) datastore.Interface { ... })
//
// The factory returns a new, empty store built with cfg (tests shorten the
// TTL interval, the watch queue and so on through it); the suite closes it.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"labctl/datastore"
)

// Factory makes a new empty store with cfg.
type Factory func(t *testing.T, cfg datastore.Config) datastore.Interface

// Run runs every conformance test against the backend newStore makes.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"CreateGet", testCreateGet},
		{"UpdateCompareAndSwap", testUpdateCAS},
		{"Delete", testDelete},
		{"ConcurrentCompareAndSwapOneWinner", testConcurrentCAS},
		{"AnyBytesKeysAndValues", testAnyBytes},
		{"ListPrefixAndPages", testListPages},
		{"ListConsistentDuringWrites", testListConsistent},
		{"GetAtRevision", testGetAtRevision},
		{"Count", testCount},
		{"Limits", testLimits},
		{"WatchOrderUnderConcurrentWriters", testWatchOrder},
		{"WatchReplayFromOldRevision", testWatchReplay},
		{"WatchPrevValues", testWatchPrev},
		{"WatchPrefix", testWatchPrefix},
		{"WatchProgress", testWatchProgress},
		{"Compacted", testCompacted},
		{"CompactionKeepsLatest", testCompactionKeepsLatest},
		{"UpdatesUnderCompaction", testUpdatesUnderCompaction},
		{"TTLExpiry", testTTL},
		{"SlowWatcherDropped", testSlowWatcher},
		{"ThousandsOfWatchers", testManyWatchers},
		{"CloseEndsWatches", testCloseEndsWatches},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

func open(t *testing.T, f Factory, cfg datastore.Config) datastore.Interface {
	t.Helper()
	s := f(t, cfg)
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustCreate(t *testing.T, s datastore.Interface, key, val string) int64 {
	t.Helper()
	rev, err := s.Create(context.Background(), key, []byte(val), 0)
	if err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	return rev
}

func mustGet(t *testing.T, s datastore.Interface, key string, rev int64) *datastore.KeyValue {
	t.Helper()
	kv, _, err := s.Get(context.Background(), key, rev)
	if err != nil {
		t.Fatalf("Get(%q, %d): %v", key, rev, err)
	}
	return kv
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func testCreateGet(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{})
	ctx := ctxT(t)
	cur, _, err := s.Revisions(ctx)
	if err != nil || cur != 0 {
		t.Fatalf("new store: revision %d, err %v; want 0", cur, err)
	}
	r1 := mustCreate(t, s, "/a", "one")
	r2 := mustCreate(t, s, "/b", "two")
	if r1 != 1 || r2 != 2 {
		t.Fatalf("revisions %d, %d; want 1, 2", r1, r2)
	}
	kv, at, err := s.Get(ctx, "/a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(kv.Value) != "one" || kv.CreateRevision != 1 || kv.ModRevision != 1 || at != 2 {
		t.Fatalf("Get /a = %+v at %d", kv, at)
	}
	_, err = s.Create(ctx, "/a", []byte("again"), 0)
	wantErr(t, "Create existing", err, datastore.ErrKeyExists)
	if cur, _, _ := s.Revisions(ctx); cur != 2 {
		t.Fatalf("a refused create took a revision: current %d", cur)
	}
	_, _, err = s.Get(ctx, "/missing", 0)
	wantErr(t, "Get missing", err, datastore.ErrNotFound)
	_, _, err = s.Get(ctx, "/a", 99)
	wantErr(t, "Get future", err, datastore.ErrFutureRevision)
}

func testUpdateCAS(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{})
	ctx := ctxT(t)
	r1 := mustCreate(t, s, "/k", "v1")
	r2, _, err := s.Update(ctx, "/k", []byte("v2"), r1, 0)
	if err != nil || r2 != r1+1 {
		t.Fatalf("Update = %d, %v", r2, err)
	}
	_, cur, err := s.Update(ctx, "/k", []byte("v3"), r1, 0)
	wantErr(t, "stale Update", err, datastore.ErrConflict)
	if cur == nil || string(cur.Value) != "v2" || cur.ModRevision != r2 || cur.CreateRevision != r1 {
		t.Fatalf("conflict returned %+v, want the current v2 at %d", cur, r2)
	}
	r3, _, err := s.Update(ctx, "/k", []byte("v3"), 0, 0)
	if err != nil {
		t.Fatalf("unconditional Update: %v", err)
	}
	kv := mustGet(t, s, "/k", 0)
	if string(kv.Value) != "v3" || kv.ModRevision != r3 || kv.CreateRevision != r1 {
		t.Fatalf("after updates: %+v", kv)
	}
	_, _, err = s.Update(ctx, "/nope", []byte("x"), 0, 0)
	wantErr(t, "Update missing", err, datastore.ErrNotFound)
}

func testDelete(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{})
	ctx := ctxT(t)
	r1 := mustCreate(t, s, "/d", "gone soon")
	_, cur, err := s.Delete(ctx, "/d", r1+5)
	wantErr(t, "stale Delete", err, datastore.ErrConflict)
	if cur == nil || string(cur.Value) != "gone soon" {
		t.Fatalf("conflict returned %+v", cur)
	}
	rd, prev, err := s.Delete(ctx, "/d", r1)
	if err != nil || rd != r1+1 {
		t.Fatalf("Delete = %d, %v", rd, err)
	}
	if prev == nil || string(prev.Value) != "gone soon" || prev.ModRevision != r1 {
		t.Fatalf("Delete returned %+v", prev)
	}
	_, _, err = s.Get(ctx, "/d", 0)
	wantErr(t, "Get deleted", err, datastore.ErrNotFound)
	if kv := mustGet(t, s, "/d", r1); string(kv.Value) != "gone soon" {
		t.Fatalf("Get at the old revision: %+v", kv)
	}
	_, _, err = s.Delete(ctx, "/d", 0)
	wantErr(t, "Delete deleted", err, datastore.ErrNotFound)
	rc := mustCreate(t, s, "/d", "back")
	if kv := mustGet(t, s, "/d", 0); kv.CreateRevision != rc || string(kv.Value) != "back" {
		t.Fatalf("recreated: %+v", kv)
	}
}

func testConcurrentCAS(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{})
	ctx := ctxT(t)
	for round := 0; round < 20; round++ {
		key := fmt.Sprintf("/cas/%d", round)
		rev := mustCreate(t, s, key, "0")
		const writers = 16
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners, conflicts := 0, 0
		start := make(chan struct{})
		for i := 0; i < writers; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				_, _, err := s.Update(ctx, key, []byte(fmt.Sprint(i)), rev, 0)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners++
				case errors.Is(err, datastore.ErrConflict):
					conflicts++
				default:
					t.Errorf("Update: %v", err)
				}
			}(i)
		}
		close(start)
		wg.Wait()
		if winners != 1 || conflicts != writers-1 {
			t.Fatalf("round %d: %d winners, %d conflicts; want 1 and %d", round, winners, conflicts, writers-1)
		}
	}
}

func testAnyBytes(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{})
	ctx := ctxT(t)
	keys := []string{"a", "a\x00", "a\x00\x00", "a\x00\x01", "a\x00\xff", "a\x01", "a\xff", "ab", "\x00", "\xff\xff", "b"}
	for i, k := range keys {
		val := []byte{0, byte(i), 0xff, 0}
		if _, err := s.Create(ctx, k, val, 0); err != nil {
			t.Fatalf("Create(%q): %v", k, err)
		}
	}
	res, err := s.List(ctx, "", datastore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	if len(res.KVs) != len(sorted) {
		t.Fatalf("listed %d keys, want %d", len(res.KVs), len(sorted))
	}
	for i, kv := range res.KVs {
		if kv.Key != sorted[i] {
			t.Fatalf("key %d is %q, want %q (byte order)", i, kv.Key, sorted[i])
		}
	}
	res, err = s.List(ctx, "a\x00", datastore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range res.KVs {
		got = append(got, kv.Key)
	}
	want := []string{"a\x00", "a\x00\x00", "a\x00\x01", "a\x00\xff"}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("prefix a\\x00: got %q, want %q", got, want)
	}
	for i, k := range keys {
		kv := mustGet(t, s, k, 0)
		if !bytes.Equal(kv.Value, []byte{0, byte(i), 0xff, 0}) {
			t.Fatalf("value of %q = %v", k, kv.Value)
		}
	}
}

func keysOf(kvs []*datastore.KeyValue) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key)
	}
	return out
}

func testListPages(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{})
	ctx := ctxT(t)
	for _, k := range []string{"/a", "/a/1", "/a/2", "/a/3", "/ab/1", "/b/1"} {
		mustCreate(t, s, k, "x")
	}
	res, err := s.List(ctx, "/a/", datastore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(keysOf(res.KVs)); got != "[/a/1 /a/2 /a/3]" || res.More {
		t.Fatalf("List /a/ = %s more=%v", got, res.More)
	}
	var all []string
	opts := datastore.ListOptions{Limit: 2}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		res, err := s.List(ctx, "/", opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.KVs) > 2 {
			t.Fatalf("page of %d keys with limit 2", len(res.KVs))
		}
		all = append(all, keysOf(res.KVs)...)
		if !res.More {
			break
		}
		opts.Revision, opts.Continue = res.Revision, res.KVs[len(res.KVs)-1].Key
	}
	if got := fmt.Sprint(all); got != "[/a /a/1 /a/2 /a/3 /ab/1 /b/1]" {
		t.Fatalf("paged list = %s", got)
	}
	// A continue key outside the prefix, before it, starts at the prefix.
	res, err = s.List(ctx, "/b/", datastore.ListOptions{Continue: "/a"})
	if err != nil || fmt.Sprint(keysOf(res.KVs)) != "[/b/1]" {
		t.Fatalf("List /b/ after /a = %v, %v", keysOf(res.KVs), err)
	}
	// Exactly Limit keys left: More is false.
	res, err = s.List(ctx, "/a/", datastore.ListOptions{Limit: 3})
	if err != nil || len(res.KVs) != 3 || res.More {
		t.Fatalf("List with limit = count: %d keys, more=%v, %v", len(res.KVs), res.More, err)
	}
}

func testListConsistent(t *testing.T, f Factory) {
	// A small MaxHistory: the writers below pass it many times over, and
	// the pages must still read at the first page's revision.
	s := open(t, f, datastore.Config{MaxHistory: 100, CompactInterval: 10 * time.Millisecond})
	ctx := ctxT(t)
	const n = 300
	want := map[string]string{}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("/items/%04d", i)
		mustCreate(t, s, k, "v0")
		want[k] = "v0"
	}
	first, err := s.List(ctx, "/items/", datastore.ListOptions{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	// Writers change, delete and add keys while the pages are read.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("/items/%04d", rng.IntN(n+50))
				switch i % 3 {
				case 0:
					s.Update(ctx, k, []byte(fmt.Sprintf("w%d-%d", w, i)), 0, 0)
				case 1:
					s.Delete(ctx, k, 0)
				default:
					s.Create(ctx, k, []byte("new"), 0)
				}
			}
		}(w)
	}
	got := map[string]string{}
	for _, kv := range first.KVs {
		got[kv.Key] = string(kv.Value)
	}
	// Wait until compaction has run under the list, so that the pages
	// below prove the list's revision was kept.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, compacted, _ := s.Revisions(ctx); compacted > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no compaction while the writers ran")
		}
	}
	page := first
	for page.More {
		time.Sleep(5 * time.Millisecond) // let writes land between pages
		page, err = s.List(ctx, "/items/", datastore.ListOptions{Limit: 50, Revision: first.Revision, Continue: page.KVs[len(page.KVs)-1].Key})
		if err != nil {
			t.Fatal(err)
		}
		if page.Revision != first.Revision {
			t.Fatalf("page read at %d, want %d", page.Revision, first.Revision)
		}
		for _, kv := range page.KVs {
			got[kv.Key] = string(kv.Value)
		}
	}
	close(stop)
	wg.Wait()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged list during writes differs from the state at revision %d", first.Revision)
	}
	if cur, _, _ := s.Revisions(ctx); cur <= first.Revision {
		t.Fatalf("writers made no change (revision %d); the test proved nothing", cur)
	}
}

func testGetAtRevision(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{})
	ctx := ctxT(t)
	revs := []int64{mustCreate(t, s, "/h", "v0")}
	mustCreate(t, s, "/other/0", "x")
	for i := 1; i < 5; i++ {
		r, _, err := s.Update(ctx, "/h", []byte(fmt.Sprintf("v%d", i)), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, s, fmt.Sprintf("/other/%d", i), "x") // revisions in between
		revs = append(revs, r)
	}
	for i, r := range revs {
		for _, at := range []int64{r, r + 1} {
			kv := mustGet(t, s, "/h", at)
			if string(kv.Value) != fmt.Sprintf("v%d", i) || kv.ModRevision != r {
				t.Fatalf("Get at %d = %q mod %d, want v%d mod %d", at, kv.Value, kv.ModRevision, i, r)
			}
		}
	}
	res, err := s.List(ctx, "/other/", datastore.ListOptions{Revision: revs[2]})
	if err != nil || len(res.KVs) != 2 {
		t.Fatalf("List at %d: %d keys, %v; want 2", revs[2], len(res.KVs), err)
	}
}

func testCount(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{})
	ctx := ctxT(t)
	for i := 0; i < 10; i++ {
		mustCreate(t, s, fmt.Sprintf("/c/%d", i), "x")
	}
	mustCreate(t, s, "/d/0", "x")
	if _, _, err := s.Delete(ctx, "/c/3", 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update(ctx, "/c/4", []byte("y"), 0, 0); err != nil {
		t.Fatal(err)
	}
	n, rev, err := s.Count(ctx, "/c/")
	if err != nil || n != 9 || rev != 13 {
		t.Fatalf("Count = %d at %d, %v; want 9 at 13", n, rev, err)
	}
}

func testLimits(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{MaxValueSize: 1 << 20})
	ctx := ctxT(t)
	_, err := s.Create(ctx, "/big", make([]byte, 1<<20+1), 0)
	wantErr(t, "Create over MaxValueSize", err, datastore.ErrValueTooLarge)
	if _, err := s.Create(ctx, "/big", make([]byte, 1<<20), 0); err != nil {
		t.Fatalf("Create at MaxValueSize: %v", err)
	}
	_, _, err = s.Update(ctx, "/big", make([]byte, 2<<20), 0, 0)
	wantErr(t, "Update over MaxValueSize", err, datastore.ErrValueTooLarge)
	_, err = s.Create(ctx, "", []byte("x"), 0)
	wantErr(t, "empty key", err, datastore.ErrInvalidKey)
	_, err = s.Create(ctx, string(make([]byte, datastore.MaxKeySize+1)), []byte("x"), 0)
	wantErr(t, "long key", err, datastore.ErrInvalidKey)
	if kv := mustGet(t, s, "/big", 0); len(kv.Value) != 1<<20 {
		t.Fatalf("refused writes changed the value: %d bytes", len(kv.Value))
	}
}

// collect reads watch responses until n events arrived or the deadline.
func collect(t *testing.T, ch <-chan datastore.WatchResponse, n int) []*datastore.Event {
	t.Helper()
	var got []*datastore.Event
	deadline := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case resp, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed after %d of %d events", len(got), n)
			}
			if resp.Err != nil {
				t.Fatalf("watch error after %d events: %v", len(got), resp.Err)
			}
			got = append(got, resp.Events...)
		case <-deadline:
			t.Fatalf("got %d of %d events", len(got), n)
		}
	}
	if len(got) > n {
		t.Fatalf("got %d events, want %d", len(got), n)
	}
	return got
}

func testWatchOrder(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{})
	ctx := ctxT(t)
	ch, err := s.Watch(ctx, "/w/", 0)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 50
	var mu sync.Mutex
	acked := map[int64]string{}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				k := fmt.Sprintf("/w/%d/%d", w, i)
				rev, err := s.Create(ctx, k, []byte("x"), 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[rev] = k
				mu.Unlock()
			}
		}(w)
	}
	events := collect(t, ch, writers*each)
	wg.Wait()
	for i, ev := range events {
		if want := int64(i + 1); ev.KV.ModRevision != want {
			t.Fatalf("event %d has revision %d, want %d (commit order)", i, ev.KV.ModRevision, want)
		}
		if acked[ev.KV.ModRevision] != ev.KV.Key || ev.Type != datastore.EventCreate {
			t.Fatalf("event at %d is %s %q, the write acknowledged at that revision was %q", ev.KV.ModRevision, ev.Type, ev.KV.Key, acked[ev.KV.ModRevision])
		}
	}
}

func testWatchReplay(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{})
	ctx := ctxT(t)
	before := mustCreate(t, s, "/r/0", "a")
	var want []string
	for i := 1; i <= 30; i++ {
		k := fmt.Sprintf("/r/%d", i%7)
		switch {
		case i%5 == 0:
			r, _, err := s.Delete(ctx, k, 0)
			if err == nil {
				want = append(want, fmt.Sprintf("%d DELETE %s", r, k))
				continue
			}
		case i%2 == 0:
			r, _, err := s.Update(ctx, k, []byte(fmt.Sprint(i)), 0, 0)
			if err == nil {
				want = append(want, fmt.Sprintf("%d UPDATE %s", r, k))
				continue
			}
		}
		r, err := s.Create(ctx, k, []byte(fmt.Sprint(i)), 0)
		if err != nil {
			r, _, err = s.Update(ctx, k, []byte(fmt.Sprint(i)), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprintf("%d UPDATE %s", r, k))
			continue
		}
		want = append(want, fmt.Sprintf("%d CREATE %s", r, k))
	}
	ch, err := s.Watch(ctx, "/r/", before)
	if err != nil {
		t.Fatal(err)
	}
	// One live event after the replay, to see the seam.
	r := mustCreate(t, s, "/r/live", "x")
	want = append(want, fmt.Sprintf("%d CREATE /r/live", r))
	var got []string
	for _, ev := range collect(t, ch, len(want)) {
		got = append(got, fmt.Sprintf("%d %s %s", ev.KV.ModRevision, ev.Type, ev.KV.Key))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replay from %d:\n got %v\nwant %v", before, got, want)
	}
}

func testWatchPrev(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{})
	ctx := ctxT(t)
	mustCreate(t, s, "/q", "so that the replay below starts above 0, which means now")
	ch, err := s.Watch(ctx, "/p", 0)
	if err != nil {
		t.Fatal(err)
	}
	r1 := mustCreate(t, s, "/p", "one")
	r2, _, _ := s.Update(ctx, "/p", []byte("two"), r1, 0)
	r3, _, _ := s.Delete(ctx, "/p", r2)
	check := func(evs []*datastore.Event) {
		t.Helper()
		c, u, d := evs[0], evs[1], evs[2]
		if c.Type != datastore.EventCreate || c.Prev != nil || string(c.KV.Value) != "one" || c.KV.ModRevision != r1 {
			t.Fatalf("create event %+v", c)
		}
		if u.Type != datastore.EventUpdate || string(u.Prev.Value) != "one" || u.Prev.ModRevision != r1 || string(u.KV.Value) != "two" || u.KV.CreateRevision != r1 {
			t.Fatalf("update event %+v prev %+v", u.KV, u.Prev)
		}
		if d.Type != datastore.EventDelete || d.KV.ModRevision != r3 || string(d.KV.Value) != "two" || d.Prev.ModRevision != r2 {
			t.Fatalf("delete event %+v prev %+v", d.KV, d.Prev)
		}
	}
	check(collect(t, ch, 3))
	replayed, err := s.Watch(ctx, "/p", r1-1)
	if err != nil {
		t.Fatal(err)
	}
	check(collect(t, replayed, 3))
}

func testWatchPrefix(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{})
	ctx := ctxT(t)
	ch, err := s.Watch(ctx, "/pods/", 0)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "/pods", "not under the prefix")
	mustCreate(t, s, "/podsx/a", "nor this")
	r := mustCreate(t, s, "/pods/a", "yes")
	evs := collect(t, ch, 1)
	if evs[0].KV.Key != "/pods/a" || evs[0].KV.ModRevision != r {
		t.Fatalf("got %q at %d", evs[0].KV.Key, evs[0].KV.ModRevision)
	}
	// A watch from a future revision waits for it.
	fut, err := s.Watch(ctx, "/pods/", r+1)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "/pods/b", "skipped: at r+1")
	r3 := mustCreate(t, s, "/pods/c", "delivered")
	if evs := collect(t, fut, 1); evs[0].KV.ModRevision != r3 {
		t.Fatalf("future watch delivered revision %d, want %d", evs[0].KV.ModRevision, r3)
	}
}

func testWatchProgress(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{WatchProgressInterval: 50 * time.Millisecond})
	ctx := ctxT(t)
	ch, err := s.Watch(ctx, "/mine/", 0)
	if err != nil {
		t.Fatal(err)
	}
	r1 := mustCreate(t, s, "/mine/a", "x")
	resp := <-ch
	if len(resp.Events) != 1 || resp.Revision != r1 {
		t.Fatalf("first response: %d events, revision %d; want 1 at %d", len(resp.Events), resp.Revision, r1)
	}
	r2 := mustCreate(t, s, "/other/b", "not mine")
	select {
	case resp := <-ch:
		if len(resp.Events) != 0 || resp.Err != nil || resp.Revision != r2 {
			t.Fatalf("progress notice: %d events, revision %d, err %v; want none at %d", len(resp.Events), resp.Revision, resp.Err, r2)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no progress notice on an idle watch")
	}
}

func testCompacted(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{})
	ctx := ctxT(t)
	r1 := mustCreate(t, s, "/x", "1")
	r2, _, _ := s.Update(ctx, "/x", []byte("2"), 0, 0)
	mustCreate(t, s, "/y", "gone")
	r4, _, _ := s.Delete(ctx, "/y", 0)
	r5, _, _ := s.Update(ctx, "/x", []byte("3"), 0, 0)
	if err := s.Compact(ctx, r4); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, r5+10); !errors.Is(err, datastore.ErrFutureRevision) {
		t.Fatalf("Compact past the current revision: %v", err)
	}
	_, compacted, _ := s.Revisions(ctx)
	if compacted != r4 {
		t.Fatalf("compact revision %d, want %d", compacted, r4)
	}
	_, err := s.Watch(ctx, "/", r1)
	wantErr(t, "Watch below the compact revision", err, datastore.ErrCompacted)
	_, _, err = s.Get(ctx, "/x", r1)
	wantErr(t, "Get below the compact revision", err, datastore.ErrCompacted)
	_, err = s.List(ctx, "/", datastore.ListOptions{Revision: r2})
	wantErr(t, "List below the compact revision", err, datastore.ErrCompacted)
	if kv := mustGet(t, s, "/x", r4); string(kv.Value) != "2" || kv.ModRevision != r2 {
		t.Fatalf("Get at the compact revision = %+v", kv)
	}
	if _, _, err := s.Get(ctx, "/y", r4); !errors.Is(err, datastore.ErrNotFound) {
		t.Fatalf("deleted key at the compact revision: %v", err)
	}
	ch, err := s.Watch(ctx, "/", r4)
	if err != nil {
		t.Fatal(err)
	}
	ev := collect(t, ch, 1)[0]
	if ev.KV.ModRevision != r5 || ev.Prev == nil || string(ev.Prev.Value) != "2" {
		t.Fatalf("watch from the compact revision: %+v prev %+v", ev.KV, ev.Prev)
	}
}

func testCompactionKeepsLatest(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{Retention: time.Millisecond, CompactInterval: 20 * time.Millisecond})
	ctx := ctxT(t)
	want := map[string]string{}
	for i := 0; i < 2500; i++ {
		k := fmt.Sprintf("/churn/%02d", i%40)
		v := fmt.Sprint(i)
		if _, _, err := s.Update(ctx, k, []byte(v), 0, 0); errors.Is(err, datastore.ErrNotFound) {
			mustCreate(t, s, k, v)
		} else if err != nil {
			t.Fatal(err)
		}
		want[k] = v
		if i%97 == 0 && i%40 != 7 {
			if _, _, err := s.Delete(ctx, k, 0); err != nil {
				t.Fatal(err)
			}
			delete(want, k)
		}
	}
	cur, _, _ := s.Revisions(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, compacted, err := s.Revisions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if compacted == cur {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background compaction reached %d of %d", compacted, cur)
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err := s.List(ctx, "/churn/", datastore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range res.KVs {
		got[kv.Key] = string(kv.Value)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after compaction:\n got %v\nwant %v", got, want)
	}
	// The next change still knows its previous value.
	ch, err := s.Watch(ctx, "/churn/", cur)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update(ctx, "/churn/07", []byte("after"), 0, 0); err != nil {
		t.Fatal(err)
	}
	ev := collect(t, ch, 1)[0]
	if ev.Prev == nil || string(ev.Prev.Value) != want["/churn/07"] {
		t.Fatalf("prev after compaction: %+v, want %q", ev.Prev, want["/churn/07"])
	}
}

// testUpdatesUnderCompaction: writers swap their own keys while history is
// compacted over and over; every swap must find its key at the revision it
// saw.
func testUpdatesUnderCompaction(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{MaxHistory: 40, CompactInterval: 5 * time.Millisecond})
	ctx := ctxT(t)
	value := make([]byte, 1024) // several keys a page, so pages empty and split
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			key := fmt.Sprintf("/swap/%02d", g)
			rev, err := s.Create(ctx, key, value, 0)
			for i := 0; i < 150 && err == nil; i++ {
				rev, _, err = s.Update(ctx, key, value, rev, 0)
			}
			if err != nil {
				t.Errorf("%s: %v", key, err)
			}
		}(g)
	}
	wg.Wait()
	if _, compacted, _ := s.Revisions(ctx); compacted == 0 {
		t.Fatal("no compaction ran; the test proved nothing")
	}
}

func testTTL(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{TTLInterval: 20 * time.Millisecond})
	ctx := ctxT(t)
	ch, err := s.Watch(ctx, "/ttl/", 0)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := s.Create(ctx, "/ttl/short", []byte("x"), 150*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if kv := mustGet(t, s, "/ttl/short", 0); kv.ExpiresAt.IsZero() {
		t.Fatal("ExpiresAt not set on a key with a TTL")
	}
	mustCreate(t, s, "/ttl/kept", "y")
	if _, err := s.Create(ctx, "/ttl/cancelled", []byte("z"), 150*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update(ctx, "/ttl/cancelled", []byte("z2"), 0, 0); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, ch, 5) // 3 creates, 1 update, then the expiry
	last := evs[4]
	if last.Type != datastore.EventDelete || last.KV.Key != "/ttl/short" || last.Prev.ModRevision != r1 {
		t.Fatalf("expiry event: %s %q", last.Type, last.KV.Key)
	}
	_, _, err = s.Get(ctx, "/ttl/short", 0)
	wantErr(t, "Get expired", err, datastore.ErrNotFound)
	time.Sleep(300 * time.Millisecond)
	for _, k := range []string{"/ttl/kept", "/ttl/cancelled"} {
		if kv := mustGet(t, s, k, 0); !kv.ExpiresAt.IsZero() {
			t.Fatalf("%s has an expiry", k)
		}
	}
}

func testSlowWatcher(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{WatchQueue: 20})
	ctx := ctxT(t)
	slow, err := s.Watch(ctx, "/s/", 0)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := s.Watch(ctx, "/s/", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Writes come in rounds of 10, each read by the fast watcher before the
	// next, so its queue never passes 10; the slow one never reads (its
	// pump holds one batch in hand) and passes the limit of 20.
	for round := 0; round < 10; round++ {
		for i := 0; i < 10; i++ {
			mustCreate(t, s, fmt.Sprintf("/s/%d-%d", round, i), "x")
		}
		if evs := collect(t, fast, 10); evs[9].KV.Key != fmt.Sprintf("/s/%d-9", round) {
			t.Fatalf("fast watcher got %q", evs[9].KV.Key)
		}
	}
	var sawErr error
	for resp := range slow {
		if resp.Err != nil {
			sawErr = resp.Err
		}
	}
	wantErr(t, "slow watcher", sawErr, datastore.ErrWatcherTooSlow)
}

func testManyWatchers(t *testing.T, f Factory) {
	s := open(t, f, datastore.Config{})
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	const n = 2000
	chans := make([]<-chan datastore.WatchResponse, n)
	for i := range chans {
		var err error
		if chans[i], err = s.Watch(ctx, "/many/", 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		mustCreate(t, s, fmt.Sprintf("/many/%d", i), "x")
	}
	for i, ch := range chans {
		evs := collect(t, ch, 3)
		if evs[2].KV.Key != "/many/2" {
			t.Fatalf("watcher %d: last event %q", i, evs[2].KV.Key)
		}
	}
}

func testCloseEndsWatches(t *testing.T, f Factory) {
	s := f(t, datastore.Config{})
	ch, err := s.Watch(context.Background(), "/", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch still open after Close")
	}
	if _, err := s.Create(context.Background(), "/after", nil, 0); !errors.Is(err, datastore.ErrClosed) {
		t.Fatalf("Create after Close: %v", err)
	}
	if _, err := s.Watch(context.Background(), "/", 0); !errors.Is(err, datastore.ErrClosed) {
		t.Fatalf("Watch after Close: %v", err)
	}
}
