package datastore

import (
	"context"
	"time"
)

// Interface is what the API server needs from a store. It is deliberately
// small so that a second backend (external etcd) and the in-memory one for
// tests stay easy to write. Every implementation passes the conformance suite
// in datastore/storetest.
//
// Revisions: every committed change (create, update, delete, TTL expiry)
// takes the next value of one global revision counter, starting at 1. A
// KeyValue carries the revision that created the key and the one that last
// modified it. Read methods take a revision to read at; 0 means the latest.
type Interface interface {
	// Get returns the key as it was at revision rev (0: latest), and the
	// revision the read was made at. It returns ErrNotFound when the key
	// did not exist at that revision.
	Get(ctx context.Context, key string, rev int64) (*KeyValue, int64, error)

	// List returns the keys under prefix in key order, as they were at one
	// revision: opts.Revision, or the latest when that is 0. The result
	// carries that revision; passing it back with Continue set to the last
	// key returned reads the next page at the same revision, whatever has
	// been written since.
	List(ctx context.Context, prefix string, opts ListOptions) (*ListResult, error)

	// Count returns the number of keys under prefix at the latest revision,
	// and that revision.
	Count(ctx context.Context, prefix string) (int64, int64, error)

	// Create stores a new key and returns its revision. It returns
	// ErrKeyExists when the key is present. A ttl above zero makes the key
	// expire (and be deleted, with a watch event) after that long.
	Create(ctx context.Context, key string, value []byte, ttl time.Duration) (int64, error)

	// Update replaces the value of an existing key if its mod revision is
	// still modRev (0: whatever it is) and returns the new revision. On
	// ErrConflict the returned KeyValue is the current one, so the caller
	// can retry without another read. A ttl above zero (re)starts expiry;
	// zero removes it.
	Update(ctx context.Context, key string, value []byte, modRev int64, ttl time.Duration) (int64, *KeyValue, error)

	// Delete removes a key if its mod revision is still modRev (0: whatever
	// it is). It returns the revision of the deletion and the value that was
	// deleted; on ErrConflict, the current value.
	Delete(ctx context.Context, key string, modRev int64) (int64, *KeyValue, error)

	// Watch delivers, in commit order, every change to keys under prefix
	// with a revision above rev (0: from now on). Events come in batches
	// on the returned channel. The channel closes when ctx ends, when the
	// store closes, or after a response carrying an error: ErrCompacted
	// when rev is older than the kept history, ErrWatcherTooSlow when the
	// consumer fell too far behind. On an error the client relists.
	Watch(ctx context.Context, prefix string, rev int64) (<-chan WatchResponse, error)

	// Revisions returns the current revision and the compact revision: the
	// oldest revision still readable and watchable from.
	Revisions(ctx context.Context) (current, compacted int64, err error)

	// Compact drops the history older than rev, which must not be above
	// the current revision. Stores also compact on their own in the
	// background; this is for callers that know better (and for tests).
	Compact(ctx context.Context, rev int64) error

	// Close stops background work, ends every watch and releases the store.
	Close() error
}

// KeyValue is one key at one revision.
type KeyValue struct {
	Key            string
	Value          []byte
	CreateRevision int64
	ModRevision    int64
	// ExpiresAt is when the key expires; zero when it has no TTL.
	ExpiresAt time.Time
}

// ListOptions narrow a List.
type ListOptions struct {
	// Revision to read at; 0 means the latest.
	Revision int64
	// Limit is the most keys to return; 0 means no limit.
	Limit int64
	// Continue, when set, starts the list after this key (exclusive).
	Continue string
}

// ListResult is a page of a List.
type ListResult struct {
	KVs []*KeyValue
	// Revision the list was read at.
	Revision int64
	// More is true when keys remain after the last one returned.
	More bool
	// Remaining counts the keys after this page when More is true.
	Remaining int64
}

// EventType says what happened to a key.
type EventType int

const (
	// EventCreate is a key that did not exist before.
	EventCreate EventType = iota + 1
	// EventUpdate is a new value for an existing key.
	EventUpdate
	// EventDelete is a key removed by Delete or by TTL expiry.
	EventDelete
)

func (t EventType) String() string {
	switch t {
	case EventCreate:
		return "CREATE"
	case EventUpdate:
		return "UPDATE"
	case EventDelete:
		return "DELETE"
	}
	return "UNKNOWN"
}

// Event is one committed change.
type Event struct {
	Type EventType
	// KV is the key after the change. For a delete it carries the last
	// value with ModRevision set to the revision of the deletion.
	KV *KeyValue
	// Prev is the key before the change; nil for a create.
	Prev *KeyValue
}

// WatchResponse is one delivery on a watch channel: a batch of events in
// revision order, a progress notice (no events), or a terminal error.
type WatchResponse struct {
	Events []*Event
	// Revision is a revision up to which the watch has delivered every
	// change under its prefix: the last event's revision, or on a progress
	// notice (sent when the watch has been idle for
	// Config.WatchProgressInterval) a revision the store has reached since.
	// The API server turns it into a BOOKMARK.
	Revision int64
	Err      error
}
