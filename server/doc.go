// Package server runs the labctl control plane: what `labctl server` starts.
//
// Today it is a skeleton that later issues fill in. Run prepares the data
// directory, opens the datastore (package datastore: the embedded bbolt file
// by default) and serves HTTPS on the API server's address with the health
// endpoints only:
//
//	/healthz, /livez   "ok" while the process serves
//	/readyz            "ok" once the datastore answers, 503 otherwise
//
// The Kubernetes API, the cluster CA and certificates, the admin kubeconfig,
// the controllers, the add-ons and the embedded agent are still to come;
// Config already carries their settings so that the command line does not
// change as they arrive.
//
// # Layout on disk
//
//	<data-dir>/server/db/    the datastore (mode 0700)
//
// # Lifecycle
//
// Run blocks until its context ends, then stops the HTTPS server (letting
// requests in flight finish, for at most ShutdownTimeout), closes the
// datastore and returns nil. It returns an error when it cannot start or
// when serving fails.
package server
