package datastore

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"
)

// Defaults for Config's zero values.
const (
	DefaultRetention       = 5 * time.Minute
	DefaultCompactInterval = 30 * time.Second
	DefaultMaxValueSize    = 3 << 20 // 3 MiB, a little above etcd's 1.5 MiB request limit
	DefaultWatchQueue      = 4096
	// HistoryFloor and HistoryShare set the default cap on history under
	// churn: a fifth of the live keys' count in revisions, and at least 200.
	HistoryFloor       = 200
	HistoryShare       = 5
	DefaultOpenTimeout = 5 * time.Second
	// MaxKeySize bounds keys; bbolt's own limit is 32 KiB.
	MaxKeySize = 8 << 10
	// DBFileName is the bbolt file inside Config.Dir.
	DBFileName = "state.db"
)

// Config selects and tunes a store. Zero values mean the defaults.
type Config struct {
	// Endpoint selects the backend: empty for the embedded bbolt file in
	// Dir, "memory://" for the in-memory store (tests). External etcd
	// ("http://...", "https://...") is the planned third backend.
	Endpoint string
	// Dir holds the bbolt file (DBFileName). Required for bbolt.
	Dir string
	// Retention is how long history is kept for reads at old revisions
	// and for watches that resume (default 5 minutes).
	Retention time.Duration
	// CompactInterval is how often history older than Retention is
	// dropped (default 30 s). Negative disables background compaction.
	CompactInterval time.Duration
	// MaxHistory caps the history under heavy churn: at most this many
	// revisions are kept, whatever Retention says. The default (0) keeps
	// the larger of HistoryFloor and a HistoryShare-th of the live keys'
	// count, which bounds the file to a small multiple of the live data
	// under any write rate.
	MaxHistory int64
	// MaxValueSize refuses larger values with ErrValueTooLarge (default 3 MiB).
	MaxValueSize int
	// WatchQueue is how many undelivered events a watcher may hold before
	// it is dropped with ErrWatcherTooSlow (default 4096).
	WatchQueue int
	// WatchProgressInterval is how long a watch stays quiet before it gets
	// a progress notice (default 10 s).
	WatchProgressInterval time.Duration
	// TTLInterval is how often expired keys are deleted (default 1 s).
	TTLInterval time.Duration
	// OpenTimeout is how long to wait for another process's lock on the
	// bbolt file (default 5 s).
	OpenTimeout time.Duration
	// NoSync skips fsync on commit: faster, but not crash-safe. For tests
	// and benchmarks that say so only.
	NoSync bool
	// Logger receives background errors; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.CompactInterval == 0 {
		c.CompactInterval = DefaultCompactInterval
	}
	if c.MaxValueSize == 0 {
		c.MaxValueSize = DefaultMaxValueSize
	}
	if c.WatchQueue == 0 {
		c.WatchQueue = DefaultWatchQueue
	}
	if c.WatchProgressInterval == 0 {
		c.WatchProgressInterval = 10 * time.Second
	}
	if c.TTLInterval == 0 {
		c.TTLInterval = time.Second
	}
	if c.OpenTimeout == 0 {
		c.OpenTimeout = DefaultOpenTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Open returns the store that cfg.Endpoint names.
func Open(cfg Config) (Interface, error) {
	switch {
	case cfg.Endpoint == "":
		if cfg.Dir == "" {
			return nil, fmt.Errorf("datastore: no directory given for the embedded store")
		}
		return OpenBolt(filepath.Join(cfg.Dir, DBFileName), cfg)
	case cfg.Endpoint == "memory://":
		return NewMemory(cfg), nil
	case strings.HasPrefix(cfg.Endpoint, "http://"), strings.HasPrefix(cfg.Endpoint, "https://"):
		return nil, fmt.Errorf("datastore: external etcd (%q) is not supported yet; leave --datastore-endpoint empty for the embedded store", cfg.Endpoint)
	default:
		return nil, fmt.Errorf("datastore: unknown endpoint %q: use an empty endpoint for the embedded store", cfg.Endpoint)
	}
}
