package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"labctl/datastore"
)

// brokenStore is a datastore whose Revisions fails; the other methods are
// not called by the health handlers.
type brokenStore struct{ datastore.Interface }

func (brokenStore) Revisions(context.Context) (int64, int64, error) {
	return 0, 0, datastore.ErrClosed
}

// TestReadyzWhenStoreFails: /readyz turns 503 when the datastore does not
// answer, while /healthz and /livez stay ok.
func TestReadyzWhenStoreFails(t *testing.T) {
	h := newHandler(brokenStore{}, http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	for path, want := range map[string]int{
		"/healthz": http.StatusOK,
		"/livez":   http.StatusOK,
		"/readyz":  http.StatusServiceUnavailable,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("GET %s = %d %q, want %d", path, rec.Code, rec.Body, want)
		}
		if want != http.StatusOK && !strings.Contains(rec.Body.String(), "datastore not ready") {
			t.Errorf("GET %s body %q does not say the datastore is not ready", path, rec.Body)
		}
	}
}
