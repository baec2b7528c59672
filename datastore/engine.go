package datastore

// engine is the ordered key-value layer under the revision logic: a few
// named buckets of byte keys in byte order, read in snapshot transactions
// and written by one writer at a time. bbolt and an in-memory B-tree
// implement it; everything about revisions, history, TTLs and watches lives
// above it in store.go, so both backends share that logic.
type engine interface {
	// view runs fn in a read-only snapshot.
	view(fn func(tx readTx) error) error
	// update runs fn in a read-write transaction and commits it durably
	// when fn returns nil; nothing is kept when fn fails.
	update(fn func(tx writeTx) error) error
	close() error
}

type bucket int

const (
	bucketMeta bucket = iota // meta: current and compact revision, schema
	bucketRevs               // revs: keyID|rev -> record, every kept revision of every key
	bucketLog                // log: rev -> commit time|keyID, for watch replay and compaction
	bucketTTL                // ttl: expiresAt|keyID -> rev, for the TTL reaper
	numBuckets
)

var bucketNames = [numBuckets][]byte{[]byte("meta"), []byte("revs"), []byte("log"), []byte("ttl")}

// readTx is a snapshot. Slices it returns are valid until the transaction
// ends and must not be modified.
type readTx interface {
	get(b bucket, key []byte) []byte
	cursor(b bucket) cursor
}

// cursor walks one bucket. Each method returns nil, nil past either end.
type cursor interface {
	first() (k, v []byte)
	last() (k, v []byte)
	// seek moves to the first key >= k.
	seek(k []byte) (key, v []byte)
	next() (k, v []byte)
	prev() (k, v []byte)
}

// writeTx adds writes to a snapshot; it sees its own writes. Do not write
// to a bucket while a cursor on it is still in use, and do not walk a
// bucket with a cursor after deleting from it in the same transaction:
// bbolt's cursors can skip over nodes the deletes emptied.
type writeTx interface {
	readTx
	put(b bucket, key, value []byte) error
	delete(b bucket, key []byte) error
}

// Keys in the meta bucket.
var (
	metaRevision = []byte("revision")
	metaCompact  = []byte("compact")
	metaSchema   = []byte("schema")
	schemaV1     = []byte("labctl-datastore-v1")
)
