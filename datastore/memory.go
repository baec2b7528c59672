package datastore

import (
	"bytes"
	"sync"

	"github.com/google/btree"
)

// NewMemory returns a store that keeps everything in memory: the same
// revision, history, TTL and watch logic as the bbolt store, over B-trees.
// It is for unit tests of the layers above; nothing survives Close.
func NewMemory(cfg Config) Interface {
	s, err := newStore(newMemEngine(), cfg.withDefaults())
	if err != nil {
		// An empty memory engine cannot hold malformed state.
		panic("datastore: memory store: " + err.Error())
	}
	return s
}

type memItem struct{ k, v []byte }

func memLess(a, b memItem) bool { return bytes.Compare(a.k, b.k) < 0 }

// memEngine keeps one copy-on-write B-tree per bucket. A read transaction
// holds the trees current when it began; the writer clones them, changes
// the clones, and publishes them on commit, so readers see snapshots as
// they do with bbolt.
type memEngine struct {
	mu     sync.Mutex // guards trees
	trees  [numBuckets]*btree.BTreeG[memItem]
	writer sync.Mutex // one writer at a time
}

func newMemEngine() *memEngine {
	e := &memEngine{}
	for i := range e.trees {
		e.trees[i] = btree.NewG(32, memLess)
	}
	return e
}

func (e *memEngine) snapshot() [numBuckets]*btree.BTreeG[memItem] {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.trees
}

func (e *memEngine) view(fn func(readTx) error) error {
	return fn(&memTx{trees: e.snapshot()})
}

func (e *memEngine) update(fn func(writeTx) error) error {
	e.writer.Lock()
	defer e.writer.Unlock()
	tx := &memTx{trees: e.snapshot()}
	for i, t := range tx.trees {
		tx.trees[i] = t.Clone()
	}
	if err := fn(tx); err != nil {
		return err
	}
	e.mu.Lock()
	e.trees = tx.trees
	e.mu.Unlock()
	return nil
}

func (e *memEngine) close() error { return nil }

type memTx struct {
	trees [numBuckets]*btree.BTreeG[memItem]
}

func (t *memTx) get(b bucket, key []byte) []byte {
	it, ok := t.trees[b].Get(memItem{k: key})
	if !ok {
		return nil
	}
	return it.v
}

func (t *memTx) cursor(b bucket) cursor { return &memCursor{tree: t.trees[b]} }

func (t *memTx) put(b bucket, key, value []byte) error {
	// Callers may reuse their buffers; bbolt copies too.
	t.trees[b].ReplaceOrInsert(memItem{k: bytes.Clone(key), v: bytes.Clone(value)})
	return nil
}

func (t *memTx) delete(b bucket, key []byte) error {
	t.trees[b].Delete(memItem{k: key})
	return nil
}

// memCursor finds each position with a fresh O(log n) descent from the
// position before; simple, and fast enough for tests.
type memCursor struct {
	tree *btree.BTreeG[memItem]
	cur  []byte // nil: not positioned, or past an end
}

func (c *memCursor) at(it memItem, ok bool) ([]byte, []byte) {
	if !ok {
		c.cur = nil
		return nil, nil
	}
	c.cur = it.k
	return it.k, it.v
}

func (c *memCursor) first() ([]byte, []byte) { return c.at(c.tree.Min()) }
func (c *memCursor) last() ([]byte, []byte)  { return c.at(c.tree.Max()) }

func (c *memCursor) seek(k []byte) ([]byte, []byte) {
	var found memItem
	ok := false
	c.tree.AscendGreaterOrEqual(memItem{k: k}, func(it memItem) bool {
		found, ok = it, true
		return false
	})
	return c.at(found, ok)
}

func (c *memCursor) next() ([]byte, []byte) {
	if c.cur == nil {
		return nil, nil
	}
	var found memItem
	ok := false
	c.tree.AscendGreaterOrEqual(memItem{k: c.cur}, func(it memItem) bool {
		if bytes.Equal(it.k, c.cur) {
			return true
		}
		found, ok = it, true
		return false
	})
	return c.at(found, ok)
}

func (c *memCursor) prev() ([]byte, []byte) {
	if c.cur == nil {
		return nil, nil
	}
	var found memItem
	ok := false
	c.tree.DescendLessOrEqual(memItem{k: c.cur}, func(it memItem) bool {
		if bytes.Equal(it.k, c.cur) {
			return true
		}
		found, ok = it, true
		return false
	})
	return c.at(found, ok)
}
