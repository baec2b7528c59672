package datastore_test

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"labctl/datastore"
	"labctl/datastore/storetest"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, cfg datastore.Config) datastore.Interface {
		return datastore.NewMemory(cfg)
	})
}

func TestBoltConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, cfg datastore.Config) datastore.Interface {
		path := filepath.Join(t.TempDir(), "state.db")
		s, err := datastore.OpenBolt(path, cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Runs after the suite's own Close (cleanups run last-in first-out).
		t.Cleanup(func() { checkBolt(t, path) })
		return s
	})
}

// checkBolt runs bbolt's consistency check over the file.
func checkBolt(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("reopen %s: %v", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("bbolt check of %s: %v", path, err)
	}
}
