package datastore

import "errors"

var (
	// ErrNotFound is returned when a key does not exist at the revision read.
	ErrNotFound = errors.New("key not found")

	// ErrKeyExists is returned by Create when the key is already present.
	ErrKeyExists = errors.New("key already exists")

	// ErrConflict is returned by Update and Delete when the key's mod
	// revision is no longer the one the caller saw.
	ErrConflict = errors.New("key was modified since it was read")

	// ErrCompacted is returned when a read or a watch asks for a revision
	// older than the kept history. The API server turns it into 410 Gone.
	ErrCompacted = errors.New("required revision has been compacted")

	// ErrFutureRevision is returned when a read asks for a revision that
	// has not been committed yet.
	ErrFutureRevision = errors.New("required revision is in the future")

	// ErrValueTooLarge is returned when a value is over Config.MaxValueSize.
	ErrValueTooLarge = errors.New("value too large")

	// ErrInvalidKey is returned for an empty key or one over MaxKeySize.
	ErrInvalidKey = errors.New("invalid key")

	// ErrWatcherTooSlow ends a watch whose consumer fell so far behind that
	// its queue filled; the client should relist and watch again.
	ErrWatcherTooSlow = errors.New("watcher fell behind and was dropped; relist and watch again")

	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("datastore is closed")
)
