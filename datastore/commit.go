package datastore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"
)

type opKind int

const (
	opCreate opKind = iota + 1
	opUpdate
	opDelete
	opExpire // a delete by the TTL reaper, only if the key still has the TTL it saw
)

// op is one change asked of the committer, with its outcome.
type op struct {
	kind   opKind
	key    string
	value  []byte
	modRev int64 // expected mod revision; 0: any
	ttl    time.Duration
	ttlKey []byte // opExpire: the TTL entry that led to it

	rev int64     // the revision the change took
	kv  *KeyValue // Delete: the deleted value; on ErrConflict: the current one
	err error
}

// writeReq is one trip to the committer: some ops, or one compaction step.
type writeReq struct {
	ops       []*op
	compactTo int64 // > 0: a compaction step towards this revision
	compacted int64 // compaction: the compact revision after the step
	err       error // the transaction failed: every op failed with it
	done      chan struct{}
}

// submit hands req to the committer and waits for its answer. Once the
// committer has the request the caller waits for the outcome even if ctx
// ends: the write may commit, and the caller should know.
func (s *store) submit(ctx context.Context, req *writeReq) error {
	req.done = make(chan struct{})
	select {
	case s.reqs <- req:
	case <-s.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-req.done
	return req.err
}

func (s *store) write(ctx context.Context, o *op) error {
	if err := checkKey(o.key); err != nil {
		return err
	}
	if len(o.value) > s.cfg.MaxValueSize {
		return fmt.Errorf("value of %q is %d bytes, the limit is %d: %w", o.key, len(o.value), s.cfg.MaxValueSize, ErrValueTooLarge)
	}
	if o.ttl < 0 || o.modRev < 0 {
		return fmt.Errorf("datastore: negative ttl or revision for %q", o.key)
	}
	if err := s.submit(ctx, &writeReq{ops: []*op{o}}); err != nil {
		return err
	}
	return o.err
}

func (s *store) Create(ctx context.Context, key string, value []byte, ttl time.Duration) (int64, error) {
	o := &op{kind: opCreate, key: key, value: value, ttl: ttl}
	err := s.write(ctx, o)
	return o.rev, err
}

func (s *store) Update(ctx context.Context, key string, value []byte, modRev int64, ttl time.Duration) (int64, *KeyValue, error) {
	o := &op{kind: opUpdate, key: key, value: value, modRev: modRev, ttl: ttl}
	err := s.write(ctx, o)
	return o.rev, o.kv, err
}

func (s *store) Delete(ctx context.Context, key string, modRev int64) (int64, *KeyValue, error) {
	o := &op{kind: opDelete, key: key, modRev: modRev}
	err := s.write(ctx, o)
	return o.rev, o.kv, err
}

// commitLoop is the only writer. It takes a request, then every other one
// already waiting, and commits them together.
func (s *store) commitLoop() {
	defer s.wg.Done()
	defer close(s.stopped)
	batch := make([]*writeReq, 0, maxBatch)
	for {
		select {
		case req := <-s.reqs:
			batch = append(batch[:0], req)
		case <-s.stop:
			return
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case req := <-s.reqs:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		writes := batch[:0:0]
		for _, req := range batch {
			if req.compactTo > 0 {
				s.compact(req)
			} else {
				writes = append(writes, req)
			}
		}
		if len(writes) > 0 {
			s.commit(writes)
		}
	}
}

// compact runs one compaction step in a transaction of its own: bbolt
// cursors are not reliable in a transaction after deletes (a Seek can land
// on a node the deletes emptied), so no transaction both deletes history
// and then reads it.
func (s *store) compact(req *writeReq) {
	var reached int64
	err := s.eng.update(func(tx writeTx) error {
		var err error
		if reached, err = compactStep(tx, s.compactRev, min(req.compactTo, s.rev)); err != nil {
			return err
		}
		if reached == s.compactRev {
			return nil
		}
		return tx.put(bucketMeta, metaCompact, appendRev(nil, reached))
	})
	if err != nil {
		req.err = fmt.Errorf("datastore: compact: %w", err)
	} else {
		s.compactRev, req.compacted = reached, reached
	}
	close(req.done)
}

func (s *store) commit(batch []*writeReq) {
	var events []*Event
	var liveDelta int64
	rev := s.rev
	now := time.Now()
	err := s.eng.update(func(tx writeTx) error {
		rev, events, liveDelta = s.rev, events[:0], 0
		for _, req := range batch {
			for _, o := range req.ops {
				ev, err := apply(tx, o, rev+1, now)
				if err != nil {
					return err
				}
				if ev != nil {
					rev++
					events = append(events, ev)
					switch ev.Type {
					case EventCreate:
						liveDelta++
					case EventDelete:
						liveDelta--
					}
				}
			}
		}
		if rev == s.rev {
			return nil
		}
		return tx.put(bucketMeta, metaRevision, appendRev(nil, rev))
	})
	if err != nil {
		err = fmt.Errorf("datastore: commit: %w", err)
		s.cfg.Logger.Error("commit failed", "err", err)
		for _, req := range batch {
			req.err = err
			close(req.done)
		}
		return
	}
	s.rev = rev
	s.live.Add(liveDelta)
	if cap := s.historyCap(); s.rev-s.compactRev > cap+cap/4 {
		select {
		case s.compactCh <- struct{}{}:
		default:
		}
	}
	s.hub.publish(events)
	for _, req := range batch {
		close(req.done)
	}
}

// apply makes one change at revision rev inside tx. It returns the event
// when the change took the revision; an op refused (exists, conflict, not
// found) gets its error in o.err and uses no revision. An error return
// means the transaction itself failed.
func apply(tx writeTx, o *op, rev int64, now time.Time) (*Event, error) {
	id := keyID(o.key)
	cur, curRev, found, err := latestAt(tx, id, rev-1)
	if err != nil {
		return nil, err
	}
	live := found && !cur.tombstone
	switch {
	case o.kind == opCreate && live:
		o.err = fmt.Errorf("%q: %w", o.key, ErrKeyExists)
		return nil, nil
	case o.kind != opCreate && !live:
		o.err = fmt.Errorf("%q: %w", o.key, ErrNotFound)
		if o.kind == opExpire {
			return nil, tx.delete(bucketTTL, o.ttlKey)
		}
		return nil, nil
	case o.kind != opCreate && o.modRev != 0 && o.modRev != curRev:
		o.kv = cur.kv(o.key, curRev)
		o.err = fmt.Errorf("%q at revision %d, expected %d: %w", o.key, curRev, o.modRev, ErrConflict)
		if o.kind == opExpire {
			return nil, tx.delete(bucketTTL, o.ttlKey)
		}
		return nil, nil
	}

	next := record{createRev: rev, value: o.value}
	ev := &Event{Type: EventCreate}
	if live {
		next.createRev = cur.createRev
		ev.Type = EventUpdate
		ev.Prev = cur.kv(o.key, curRev)
		if cur.expiresAt != 0 {
			if err := tx.delete(bucketTTL, ttlKey(cur.expiresAt, id)); err != nil {
				return nil, err
			}
		}
	}
	if o.kind == opDelete || o.kind == opExpire {
		next = record{tombstone: true, createRev: cur.createRev}
		ev.Type = EventDelete
		ev.KV = cur.kv(o.key, rev)
		o.kv = ev.Prev
	}
	if o.ttl > 0 && !next.tombstone {
		next.expiresAt = now.Add(o.ttl).UnixNano()
		if err := tx.put(bucketTTL, ttlKey(next.expiresAt, id), appendRev(nil, rev)); err != nil {
			return nil, err
		}
	}
	if err := tx.put(bucketRevs, appendRev(bytes.Clone(id), rev), next.encode()); err != nil {
		return nil, err
	}
	if err := tx.put(bucketLog, appendRev(nil, rev), encodeLogEntry(now.UnixNano(), id)); err != nil {
		return nil, err
	}
	if ev.KV == nil {
		ev.KV = next.kv(o.key, rev)
	}
	o.rev = rev
	return ev, nil
}

// compactStep drops history up to target, at most compactBatch log entries
// at a time, and returns the new compact revision. For each change at
// revision r <= target it deletes the key's older revisions (r supersedes
// them), and the change itself when it is a deletion. What remains of each
// key is its newest revision <= target, unless that is a tombstone: enough
// to read at any revision from the compact revision on, and to give every
// later change its previous value.
func compactStep(tx writeTx, from, target int64) (int64, error) {
	if target <= from {
		return from, nil
	}
	type change struct {
		rev int64
		id  []byte
	}
	var changes []change
	c := tx.cursor(bucketLog)
	for k, v := c.seek(appendRev(nil, from+1)); k != nil && len(changes) < compactBatch; k, v = c.next() {
		rev, err := decodeRev(k)
		if err != nil {
			return from, err
		}
		if rev > target {
			break
		}
		_, id, err := decodeLogEntry(v)
		if err != nil {
			return from, err
		}
		changes = append(changes, change{rev, bytes.Clone(id)})
	}
	reached := target
	if len(changes) == compactBatch {
		reached = changes[len(changes)-1].rev
	}
	// Read everything first, delete after: see compact.
	var drop [][]byte
	for _, ch := range changes {
		c := tx.cursor(bucketRevs)
		for k, v := c.seek(appendRev(bytes.Clone(ch.id), 0)); k != nil && isRevOf(k, ch.id); k, v = c.next() {
			rev, err := decodeRev(k[len(ch.id):])
			if err != nil {
				return from, err
			}
			if rev > ch.rev {
				break
			}
			if rev == ch.rev {
				r, err := decodeRecord(v)
				if err != nil {
					return from, err
				}
				if !r.tombstone {
					break
				}
			}
			drop = append(drop, bytes.Clone(k))
		}
	}
	for _, k := range drop {
		if err := tx.delete(bucketRevs, k); err != nil {
			return from, err
		}
	}
	for _, ch := range changes {
		if err := tx.delete(bucketLog, appendRev(nil, ch.rev)); err != nil {
			return from, err
		}
	}
	return reached, nil
}

func (s *store) Compact(ctx context.Context, rev int64) error {
	cur, compacted, err := s.Revisions(ctx)
	if err != nil {
		return err
	}
	if rev > cur {
		return fmt.Errorf("compact to %d, current %d: %w", rev, cur, ErrFutureRevision)
	}
	for compacted < rev {
		req := &writeReq{compactTo: rev}
		if err := s.submit(ctx, req); err != nil {
			return err
		}
		compacted = req.compacted
	}
	return nil
}

// historyCap is how many revisions of history are kept under churn.
func (s *store) historyCap() int64 {
	if s.cfg.MaxHistory > 0 {
		return s.cfg.MaxHistory
	}
	return max(HistoryFloor, s.live.Load()/HistoryShare)
}

// compactLoop compacts every CompactInterval, and at once when the
// committer finds the history a quarter over its cap.
func (s *store) compactLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.CompactInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.compactCh:
		}
		if err := s.compactOld(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Error("datastore compaction failed", "err", err)
		}
	}
}

// compactOld compacts to the newest revision committed more than
// Retention ago, or further when more than MaxHistory revisions are kept,
// but never past a revision that a paginated List is still reading.
func (s *store) compactOld(ctx context.Context) error {
	cutoff := time.Now().Add(-s.cfg.Retention).UnixNano()
	var target, cur int64
	err := s.view(func(tx readTx) error {
		var err error
		if cur, _, err = readRevisions(tx); err != nil {
			return err
		}
		c := tx.cursor(bucketLog)
		for k, v := c.first(); k != nil; k, v = c.next() {
			at, _, err := decodeLogEntry(v)
			if err != nil {
				return err
			}
			if at > cutoff {
				break
			}
			if target, err = decodeRev(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	target = max(target, cur-s.historyCap())
	if pinned := s.oldestPin(); pinned != 0 {
		target = min(target, pinned)
	}
	if target <= 0 {
		return nil
	}
	return s.Compact(ctx, target)
}

// expire deletes the keys whose TTL has passed, with watch events.
func (s *store) expire(ctx context.Context) error {
	now := time.Now().UnixNano()
	var ops []*op
	err := s.view(func(tx readTx) error {
		c := tx.cursor(bucketTTL)
		for k, v := c.first(); k != nil && len(ops) < maxBatch; k, v = c.next() {
			if len(k) < 8+2 {
				return errMalformed
			}
			if int64(binary.BigEndian.Uint64(k)) > now {
				break
			}
			key, err := unescapeID(k[8:])
			if err != nil {
				return err
			}
			rev, err := decodeRev(v)
			if err != nil {
				return err
			}
			ops = append(ops, &op{kind: opExpire, key: key, modRev: rev, ttlKey: bytes.Clone(k)})
		}
		return nil
	})
	if err != nil || len(ops) == 0 {
		return err
	}
	return s.submit(ctx, &writeReq{ops: ops})
}
