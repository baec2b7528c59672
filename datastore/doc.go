// Package datastore is labctl's key-value store: what the course calls etcd.
// It keeps Kubernetes objects as opaque values under string keys, with one
// global revision, reads at past revisions, compare-and-swap writes, TTLs
// and watches. It knows nothing of Kubernetes; the API server above it
// turns keys and revisions into objects and resourceVersions.
//
// Interface (store.go) is the whole contract. Two backends implement it
// today, over one shared revision engine (mvcc.go, commit.go, watch.go):
//
//   - OpenBolt: the embedded bbolt file, the default (Open with an empty
//     Endpoint). Durable: a write returns only after fsync.
//   - NewMemory: the same engine over in-memory B-trees, for unit tests.
//
// External etcd is the planned third backend; it will implement Interface
// directly on etcd's own revisions. Every backend must pass the conformance
// suite in datastore/storetest.
//
// # Writes
//
// Only one goroutine writes (the committer). Writers hand it requests and
// wait; it takes every request waiting, applies them in one bbolt
// transaction, each change taking the next revision, and commits once for
// all of them (group commit), so throughput grows with the number of
// concurrent writers. After the commit it publishes the events to watchers
// in revision order, then answers the writers.
//
// # Watches
//
// A watcher has a queue that publish only appends to. A watcher whose queue
// grows past Config.WatchQueue is dropped with ErrWatcherTooSlow; the others
// never wait for it. A watch from a past revision first replays the log,
// reading history in short snapshots, then continues with live events.
//
// # Layout
//
// The bbolt file (<data-dir>/server/db/state.db) has four buckets:
//
//	meta
//	├── "schema"   → "labctl-datastore-v1"
//	├── "revision" → current revision (8 bytes, big-endian)
//	└── "compact"  → compact revision: oldest readable (8 bytes)
//	revs                       every kept revision of every key
//	└── keyID|rev → flags|createRev|expiresAt|value
//	log                        what changed at each kept revision
//	└── rev → commitTime|keyID
//	ttl                        keys with a TTL, in expiry order
//	└── expiresAt|keyID → rev that set the TTL
//
// keyID is the key with 0x00 escaped as 0x00 0xFF, ended by 0x00 0x01, so any
// bytes are allowed, revisions of one key sit together oldest first, and
// keys keep their byte order (a prefix scan is a range scan). rev and times
// are 8-byte big-endian. flags has one bit: tombstone (a deletion). A read at
// revision R takes, for each key, its newest revision <= R that is not a
// tombstone.
//
// # Compaction
//
// Every Config.CompactInterval the history older than Config.Retention
// (5 minutes) is dropped, and at once whenever more revisions are kept than
// a fifth of the live keys (at least 200; Config.MaxHistory sets a fixed
// cap), so heavy churn cannot grow the file past a small multiple of the
// live data. The one
// exception: the revision of a paginated List with pages still to read is
// kept for a minute after each page, so its next page can be read.
// Compaction: for each change in the log up to the target, the
// key's older revisions go, and so does a tombstone. Each key keeps its
// newest revision at or below the compact revision, enough to read at any
// revision from there on. bbolt reuses the freed pages, so a file under
// steady churn stops growing. Reads and watches from below the compact
// revision fail with ErrCompacted.
//
// # TTL
//
// A key written with a TTL is deleted (with a watch event, like any
// delete) by a reaper that runs every Config.TTLInterval, walking the ttl
// bucket in expiry order. Rewriting the key without a TTL cancels it.
package datastore
