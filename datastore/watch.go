package datastore

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// hub fans committed events out to watchers. publish runs on the
// committer after each commit and only appends to queues, so a slow
// watcher never holds back the committer or the other watchers; one whose
// queue passes the limit is dropped with ErrWatcherTooSlow.
type hub struct {
	limit int

	mu       sync.Mutex
	watchers map[*watcher]struct{}
	closed   bool
	pumps    sync.WaitGroup
}

type watcher struct {
	prefix string
	notify chan struct{} // capacity 1: "the queue changed"

	mu    sync.Mutex
	queue []*Event
	err   error
	seen  int64 // the newest revision published, matching or not
}

func newHub(limit int) *hub {
	return &hub{limit: limit, watchers: make(map[*watcher]struct{})}
}

func (h *hub) add(w *watcher) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	h.watchers[w] = struct{}{}
	h.pumps.Add(1)
	return nil
}

func (h *hub) remove(w *watcher) {
	h.mu.Lock()
	delete(h.watchers, w)
	h.mu.Unlock()
}

// close waits for every watch to end; the store has closed its stop
// channel first, which ends them.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.pumps.Wait()
}

func (h *hub) publish(events []*Event) {
	if len(events) == 0 {
		return
	}
	last := events[len(events)-1].KV.ModRevision
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		w.mu.Lock()
		w.seen = last
		added := false
		for _, ev := range events {
			if strings.HasPrefix(ev.KV.Key, w.prefix) {
				w.queue = append(w.queue, ev)
				added = true
			}
		}
		if len(w.queue) > h.limit {
			w.queue, w.err = nil, ErrWatcherTooSlow
			delete(h.watchers, w)
		}
		w.mu.Unlock()
		if added {
			select {
			case w.notify <- struct{}{}:
			default:
			}
		}
	}
}

// replayChunk bounds the log entries read in one snapshot while a watch
// catches up, so that a long replay never pins old pages for long.
const replayChunk = 1000

func (s *store) Watch(ctx context.Context, prefix string, rev int64) (<-chan WatchResponse, error) {
	if rev < 0 {
		return nil, fmt.Errorf("datastore: watch from negative revision %d", rev)
	}
	if s.closed() {
		return nil, ErrClosed
	}
	w := &watcher{prefix: prefix, notify: make(chan struct{}, 1)}
	if err := s.hub.add(w); err != nil {
		return nil, err
	}
	// Registered first, read second: every event committed after this
	// snapshot is in w's queue, and the pump skips queued events the
	// replay already covered.
	cur, compacted, err := s.Revisions(ctx)
	if err == nil && rev != 0 && rev < compacted {
		err = fmt.Errorf("watch from revision %d, compacted at %d: %w", rev, compacted, ErrCompacted)
	}
	if err != nil {
		s.hub.remove(w)
		s.hub.pumps.Done()
		return nil, err
	}
	if rev == 0 {
		rev = cur
	}
	out := make(chan WatchResponse)
	go s.pump(ctx, w, rev, cur, out)
	return out, nil
}

// pump replays history (from, upto] from the log, then forwards live
// events above both, until ctx ends, the store closes or an error ends
// the watch.
func (s *store) pump(ctx context.Context, w *watcher, from, upto int64, out chan<- WatchResponse) {
	defer s.hub.pumps.Done()
	defer close(out)
	defer s.hub.remove(w)
	send := func(r WatchResponse) bool {
		select {
		case out <- r:
			return true
		case <-ctx.Done():
		case <-s.stop:
		}
		return false
	}
	pfx := escapeKey(nil, w.prefix)
	for from < upto {
		events, last, err := s.replay(pfx, from, upto)
		if err != nil {
			send(WatchResponse{Err: err})
			return
		}
		if len(events) > 0 && !send(WatchResponse{Events: events, Revision: last}) {
			return
		}
		from = last
	}
	progress := time.NewTimer(s.cfg.WatchProgressInterval)
	defer progress.Stop()
	for {
		idle := false
		select {
		case <-w.notify:
		case <-progress.C:
			idle = true
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		}
		w.mu.Lock()
		queue, err, seen := w.queue, w.err, w.seen
		w.queue = nil
		w.mu.Unlock()
		for len(queue) > 0 && queue[0].KV.ModRevision <= from {
			queue = queue[1:]
		}
		if len(queue) > 0 {
			from = queue[len(queue)-1].KV.ModRevision
			if !send(WatchResponse{Events: queue, Revision: from}) {
				return
			}
		} else if idle && seen > from {
			// Nothing queued: every change up to seen has been sent.
			from = seen
			if !send(WatchResponse{Revision: from}) {
				return
			}
		}
		progress.Reset(s.cfg.WatchProgressInterval) // Go 1.23+: no stale tick survives Reset
		if err != nil {
			send(WatchResponse{Err: err})
			return
		}
	}
}

// replay reads the changes under the escaped prefix pfx with revisions in
// (from, upto], at most replayChunk log entries of them, and returns them
// with the last revision it covered.
func (s *store) replay(pfx []byte, from, upto int64) ([]*Event, int64, error) {
	var events []*Event
	last := upto
	err := s.view(func(tx readTx) error {
		_, compacted, err := readRevisions(tx)
		if err != nil {
			return err
		}
		if from < compacted {
			return fmt.Errorf("watch replay from revision %d, compacted at %d: %w", from, compacted, ErrCompacted)
		}
		c := tx.cursor(bucketLog)
		n := 0
		for k, v := c.seek(appendRev(nil, from+1)); k != nil; k, v = c.next() {
			rev, err := decodeRev(k)
			if err != nil {
				return err
			}
			if rev > upto {
				break
			}
			if n == replayChunk {
				last = rev - 1
				break
			}
			n++
			_, id, err := decodeLogEntry(v)
			if err != nil {
				return err
			}
			if !bytes.HasPrefix(id, pfx) {
				continue
			}
			ev, err := eventAt(tx, id, rev)
			if err != nil {
				return err
			}
			events = append(events, ev)
		}
		return nil
	})
	return events, last, err
}

// eventAt rebuilds the event of the change to key id at rev from history.
func eventAt(tx readTx, id []byte, rev int64) (*Event, error) {
	key, err := unescapeID(id)
	if err != nil {
		return nil, err
	}
	rb := tx.get(bucketRevs, appendRev(bytes.Clone(id), rev))
	if rb == nil {
		return nil, fmt.Errorf("log names %q at revision %d but history lacks it: %w", key, rev, errMalformed)
	}
	r, err := decodeRecord(rb)
	if err != nil {
		return nil, err
	}
	ev := &Event{Type: EventUpdate, KV: r.kv(key, rev)}
	prev, prevRev, ok, err := latestAt(tx, id, rev-1)
	if err != nil {
		return nil, err
	}
	if ok && !prev.tombstone {
		ev.Prev = prev.kv(key, prevRev)
	}
	switch {
	case r.tombstone:
		if ev.Prev == nil {
			return nil, fmt.Errorf("deletion of %q at revision %d has no previous value: %w", key, rev, errMalformed)
		}
		ev.Type = EventDelete
		ev.KV = prev.kv(key, rev)
	case ev.Prev == nil:
		ev.Type = EventCreate
	}
	return ev, nil
}
