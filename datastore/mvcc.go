package datastore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// store implements Interface over an engine. Reads run in engine snapshots
// on the caller's goroutine. Writes go to one committer goroutine that
// takes every request waiting, applies them in one transaction (group
// commit: one fsync for the lot), answers each, and then hands the events to
// the watch hub in revision order.
type store struct {
	eng engine
	cfg Config
	hub *hub

	reqs    chan *writeReq
	stop    chan struct{} // closed by Close
	stopped chan struct{} // closed when the committer has exited
	wg      sync.WaitGroup
	closeMu sync.Once

	// Owned by the committer goroutine once started.
	rev, compactRev int64

	compactCh chan struct{} // capacity 1: the committer asks for a compaction now
	live      atomic.Int64  // live keys at the latest revision, for historyCap

	pinMu sync.Mutex
	pins  map[int64]time.Time // revisions a paginated List still reads, until when
}

// pinFor is how long a paginated List keeps its revision from compaction
// after each page, whatever MaxHistory says.
const pinFor = time.Minute

// pin keeps rev from compaction for pinFor.
func (s *store) pin(rev int64) {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	s.pins[rev] = time.Now().Add(pinFor)
}

// oldestPin returns the oldest pinned revision still in force, or 0.
func (s *store) oldestPin() int64 {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	now, oldest := time.Now(), int64(0)
	for rev, until := range s.pins {
		switch {
		case until.Before(now):
			delete(s.pins, rev)
		case oldest == 0 || rev < oldest:
			oldest = rev
		}
	}
	return oldest
}

// maxBatch bounds how many write requests share one transaction.
const maxBatch = 512

// compactBatch bounds the log entries one compaction transaction handles,
// so that writers never wait long behind it.
const compactBatch = 1000

func newStore(eng engine, cfg Config) (*store, error) {
	s := &store{
		eng:       eng,
		cfg:       cfg,
		hub:       newHub(cfg.WatchQueue),
		reqs:      make(chan *writeReq),
		stop:      make(chan struct{}),
		stopped:   make(chan struct{}),
		compactCh: make(chan struct{}, 1),
		pins:      make(map[int64]time.Time),
	}
	err := eng.update(func(tx writeTx) error {
		schema := tx.get(bucketMeta, metaSchema)
		switch {
		case schema == nil:
			return tx.put(bucketMeta, metaSchema, schemaV1)
		case !bytes.Equal(schema, schemaV1):
			return fmt.Errorf("unknown store schema %q (written by a newer labctl?)", schema)
		}
		var err error
		s.rev, s.compactRev, err = readRevisions(tx)
		return err
	})
	if err == nil {
		err = eng.view(func(tx readTx) error {
			var n int64
			err := scan(tx, "", "", s.rev, func(string, record, int64) bool { n++; return true })
			s.live.Store(n)
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go s.commitLoop()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-s.stop; cancel() }()
	if cfg.TTLInterval > 0 {
		s.wg.Add(1)
		go s.every(ctx, cfg.TTLInterval, s.expire)
	}
	if cfg.CompactInterval > 0 {
		s.wg.Add(1)
		go s.compactLoop(ctx)
	}
	return s, nil
}

func readRevisions(tx readTx) (rev, compact int64, err error) {
	if b := tx.get(bucketMeta, metaRevision); b != nil {
		if rev, err = decodeRev(b); err != nil {
			return 0, 0, err
		}
	}
	if b := tx.get(bucketMeta, metaCompact); b != nil {
		if compact, err = decodeRev(b); err != nil {
			return 0, 0, err
		}
	}
	return rev, compact, nil
}

// every runs fn each interval until ctx ends.
func (s *store) every(ctx context.Context, interval time.Duration, fn func(context.Context) error) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Error("datastore background task failed", "err", err)
			}
		}
	}
}

func (s *store) Close() error {
	var err error
	s.closeMu.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.hub.close()
		err = s.eng.close()
	})
	return err
}

func (s *store) closed() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// ---- Reads ----

func (s *store) view(fn func(tx readTx) error) error {
	if s.closed() {
		return ErrClosed
	}
	return s.eng.view(fn)
}

// readAt resolves rev (0: latest) against the snapshot's revisions.
func readAt(tx readTx, rev int64) (int64, error) {
	cur, compact, err := readRevisions(tx)
	if err != nil {
		return 0, err
	}
	switch {
	case rev == 0:
		return cur, nil
	case rev > cur:
		return 0, fmt.Errorf("revision %d, current %d: %w", rev, cur, ErrFutureRevision)
	case rev < compact:
		return 0, fmt.Errorf("revision %d, compacted at %d: %w", rev, compact, ErrCompacted)
	}
	return rev, nil
}

// latestAt finds the newest revision of the key id that is <= rev.
func latestAt(tx readTx, id []byte, rev int64) (r record, modRev int64, ok bool, err error) {
	c := tx.cursor(bucketRevs)
	k, v := c.seek(appendRev(bytes.Clone(id), rev+1))
	if k == nil {
		k, v = c.last()
	} else {
		k, v = c.prev()
	}
	if !isRevOf(k, id) {
		return record{}, 0, false, nil
	}
	if modRev, err = decodeRev(k[len(id):]); err != nil {
		return record{}, 0, false, err
	}
	if r, err = decodeRecord(v); err != nil {
		return record{}, 0, false, err
	}
	return r, modRev, true, nil
}

// isRevOf reports whether k is a revision-bucket key of the key id.
func isRevOf(k, id []byte) bool {
	return len(k) == len(id)+revBytes && bytes.HasPrefix(k, id)
}

func (s *store) Get(ctx context.Context, key string, rev int64) (*KeyValue, int64, error) {
	if err := checkKey(key); err != nil {
		return nil, 0, err
	}
	var kv *KeyValue
	var at int64
	err := s.view(func(tx readTx) error {
		var err error
		if at, err = readAt(tx, rev); err != nil {
			return err
		}
		r, modRev, ok, err := latestAt(tx, keyID(key), at)
		if err != nil || !ok || r.tombstone {
			return err
		}
		kv = r.kv(key, modRev)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if kv == nil {
		return nil, at, fmt.Errorf("%q at revision %d: %w", key, at, ErrNotFound)
	}
	return kv, at, nil
}

// scan calls fn for every live key under prefix at revision at, in key
// order, starting after the key after (if set), until fn returns false.
// Revisions of one key are adjacent and ascending, so the walk keeps the
// last one <= at of each run.
func scan(tx readTx, prefix, after string, at int64, fn func(key string, r record, modRev int64) bool) error {
	pfx := escapeKey(nil, prefix)
	start := pfx
	if after != "" {
		// Past every revision of after: no revision is 2^64-1.
		if past := appendRev(keyID(after), -1); bytes.Compare(past, start) > 0 {
			start = past
		}
	}
	c := tx.cursor(bucketRevs)
	var (
		curID   []byte
		best    []byte // record bytes of the best revision so far of curID
		bestRev int64
	)
	flush := func() (bool, error) {
		if best == nil {
			return true, nil
		}
		r, err := decodeRecord(best)
		if err != nil {
			return false, err
		}
		best = nil
		if r.tombstone {
			return true, nil
		}
		key, err := unescapeID(curID)
		if err != nil {
			return false, err
		}
		return fn(key, r, bestRev), nil
	}
	for k, v := c.seek(start); k != nil && bytes.HasPrefix(k, pfx); k, v = c.next() {
		if len(k) < 2+revBytes {
			return errMalformed
		}
		id, rev := k[:len(k)-revBytes], int64(binary.BigEndian.Uint64(k[len(k)-revBytes:]))
		if !bytes.Equal(id, curID) {
			if more, err := flush(); err != nil || !more {
				return err
			}
			curID = id
		}
		if rev <= at {
			best, bestRev = v, rev
		}
	}
	_, err := flush()
	return err
}

func (s *store) List(ctx context.Context, prefix string, opts ListOptions) (*ListResult, error) {
	if opts.Limit < 0 {
		return nil, fmt.Errorf("datastore: negative limit %d", opts.Limit)
	}
	res := &ListResult{}
	err := s.view(func(tx readTx) error {
		var err error
		if res.Revision, err = readAt(tx, opts.Revision); err != nil {
			return err
		}
		return scan(tx, prefix, opts.Continue, res.Revision, func(key string, r record, modRev int64) bool {
			if opts.Limit > 0 && int64(len(res.KVs)) == opts.Limit {
				res.More = true
				return false
			}
			res.KVs = append(res.KVs, r.kv(key, modRev))
			return true
		})
	})
	if err != nil {
		return nil, err
	}
	if res.More {
		// The next page reads at this revision: keep it readable.
		s.pin(res.Revision)
	}
	return res, nil
}

func (s *store) Count(ctx context.Context, prefix string) (int64, int64, error) {
	var n, at int64
	err := s.view(func(tx readTx) error {
		var err error
		if at, err = readAt(tx, 0); err != nil {
			return err
		}
		return scan(tx, prefix, "", at, func(string, record, int64) bool { n++; return true })
	})
	return n, at, err
}

func (s *store) Revisions(ctx context.Context) (int64, int64, error) {
	var cur, compact int64
	err := s.view(func(tx readTx) error {
		var err error
		cur, compact, err = readRevisions(tx)
		return err
	})
	return cur, compact, err
}

func checkKey(key string) error {
	if key == "" || len(key) > MaxKeySize {
		return fmt.Errorf("key of %d bytes (allowed: 1 to %d): %w", len(key), MaxKeySize, ErrInvalidKey)
	}
	return nil
}
