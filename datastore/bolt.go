package datastore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// OpenBolt opens (creating if needed) the bbolt file at path and returns a
// store over it. Another process holding the file makes it fail after
// cfg.OpenTimeout with an error that says so.
func OpenBolt(path string, cfg Config) (Interface, error) {
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("datastore: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: cfg.OpenTimeout,
		// The map freelist is fast with many free pages, and not syncing
		// it saves a page write per commit; bbolt rebuilds it on open.
		// etcd runs with the same two settings.
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
		NoSync:         cfg.NoSync,
		// Map more than the file from the start so that a growing file
		// rarely has to remap, which waits for every reader to finish.
		// This is address space, not memory.
		InitialMmapSize: 1 << 30,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("datastore: %s is locked by another process (is another labctl server running on this data directory?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("datastore: open %s: %w", path, err)
	}
	// With the large mapping above bbolt would grow the file 16 MiB at a
	// time; small steps keep the file near the data it holds.
	db.AllocSize = 256 << 10
	s, err := newStore(&boltEngine{db: db}, cfg)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("datastore: open %s: %w", path, err)
	}
	return s, nil
}

type boltEngine struct{ db *bolt.DB }

func (e *boltEngine) view(fn func(readTx) error) error {
	return e.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (e *boltEngine) update(fn func(writeTx) error) error {
	return e.db.Update(func(tx *bolt.Tx) error {
		for _, name := range bucketNames {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return fn(boltTx{tx})
	})
}

func (e *boltEngine) close() error { return e.db.Close() }

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) bucket(b bucket) *bolt.Bucket {
	bk := t.tx.Bucket(bucketNames[b])
	if bk != nil && t.tx.Writable() {
		// New revisions go in right after the key's older ones and
		// compaction soon removes those: pages filled to bbolt's default
		// of one half would hold a single 1 KiB object each.
		bk.FillPercent = 0.9
	}
	return bk
}

func (t boltTx) get(b bucket, key []byte) []byte {
	bk := t.bucket(b)
	if bk == nil {
		return nil
	}
	return bk.Get(key)
}

func (t boltTx) cursor(b bucket) cursor {
	bk := t.bucket(b)
	if bk == nil {
		return emptyCursor{}
	}
	return boltCursor{bk.Cursor()}
}

type boltCursor struct{ c *bolt.Cursor }

func (c boltCursor) first() ([]byte, []byte)        { return c.c.First() }
func (c boltCursor) last() ([]byte, []byte)         { return c.c.Last() }
func (c boltCursor) seek(k []byte) ([]byte, []byte) { return c.c.Seek(k) }
func (c boltCursor) next() ([]byte, []byte)         { return c.c.Next() }
func (c boltCursor) prev() ([]byte, []byte)         { return c.c.Prev() }

func (t boltTx) put(b bucket, key, value []byte) error { return t.bucket(b).Put(key, value) }
func (t boltTx) delete(b bucket, key []byte) error     { return t.bucket(b).Delete(key) }

// emptyCursor stands for a bucket not created yet (a store never written).
type emptyCursor struct{}

func (emptyCursor) first() ([]byte, []byte)      { return nil, nil }
func (emptyCursor) last() ([]byte, []byte)       { return nil, nil }
func (emptyCursor) seek([]byte) ([]byte, []byte) { return nil, nil }
func (emptyCursor) next() ([]byte, []byte)       { return nil, nil }
func (emptyCursor) prev() ([]byte, []byte)       { return nil, nil }
