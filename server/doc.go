// Package server runs the labctl control plane: what `labctl server` starts.
//
// Today it is a skeleton that later issues fill in. Run prepares the data
// directory, opens the datastore (package datastore: the embedded bbolt file
// by default), creates or loads the cluster's certificates (package pki),
// writes the admin kubeconfig to KubeconfigPath, pointing at
// https://127.0.0.1:<port> as k3s does, and serves HTTPS on the API server's
// address with the health endpoints only:
//
//	/healthz, /livez   "ok" while the process serves
//	/readyz            "ok" once the datastore answers, 503 otherwise
//
// The TLS handshake asks for a client certificate signed by the cluster CA
// without requiring one. Every path but /healthz, /livez, /readyz and
// /version needs one (package authn): without it a request gets 401, and
// with one outside system:masters, 403, each with kube-apiserver's Status
// body. The admin kubeconfig's certificate is system:admin in
// system:masters.
//
// The Kubernetes API, the controllers, the add-ons and the embedded agent
// are still to come; Config already carries their settings so that the
// command line does not change as they arrive.
//
// # Layout on disk
//
//	<data-dir>/server/db/    the datastore (mode 0700)
//	<data-dir>/server/tls/   the cluster CA, serving and client certificates
//	                         and the service account key (mode 0700; see
//	                         package pki)
//
// # Lifecycle
//
// Run blocks until its context ends, then stops the HTTPS server (letting
// requests in flight finish, for at most ShutdownTimeout), closes the
// datastore and returns nil. It returns an error when it cannot start or
// when serving fails.
package server
