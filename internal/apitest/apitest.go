// Package apitest serves labctl's API server over an in-memory store for
// tests of its clients (controllers, the node agent): the real handlers,
// storage and semantics, on a plain HTTP test server.
package apitest

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"testing"

	"k8s.io/client-go/rest"

	"labctl/datastore"
	"labctl/server/apiserver"
)

// Start serves the API until tb ends and returns a client configuration
// for it. edit, when given, changes the apiserver.Config first (its Store
// and ServiceCIDR are set already).
func Start(tb testing.TB, edit ...func(*apiserver.Config)) *rest.Config {
	tb.Helper()
	cfg, stop := Serve(tb, edit...)
	tb.Cleanup(stop)
	return cfg
}

// Serve is Start that leaves stopping to the caller, for benchmarks that
// start a server per iteration.
func Serve(tb testing.TB, edit ...func(*apiserver.Config)) (*rest.Config, func()) {
	tb.Helper()
	ds := datastore.NewMemory(datastore.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	c := apiserver.Config{Store: ds, ServiceCIDR: netip.MustParsePrefix("10.43.0.0/16")}
	for _, e := range edit {
		e(&c)
	}
	api, err := apiserver.New(ctx, c)
	if err != nil {
		cancel()
		ds.Close()
		tb.Fatal(err)
	}
	srv := httptest.NewServer(api)
	return &rest.Config{Host: srv.URL}, func() {
		srv.Close()
		cancel()
		api.Wait()
		ds.Close()
	}
}
