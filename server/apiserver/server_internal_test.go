package apiserver

import (
	"context"
	"testing"

	"labctl/datastore"
)

// newServer makes a Server over a memory store, for the tests that call
// its methods directly; it stops when the test ends.
func newServer(tb testing.TB) *Server {
	tb.Helper()
	ds := datastore.NewMemory(datastore.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, Config{Store: ds})
	if err != nil {
		cancel()
		ds.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		s.Wait()
		ds.Close()
	})
	return s
}
