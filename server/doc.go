// Package server runs the labctl control plane: what `labctl server` starts.
//
// Run prepares the data directory, opens the datastore (package datastore:
// the embedded bbolt file by default), creates or loads the cluster's
// certificates (package pki), writes the admin kubeconfig to
// KubeconfigPath, pointing at https://127.0.0.1:<port> as k3s does, and
// serves HTTPS on the API server's address:
//
//	/healthz, /livez   "ok" while the process serves
//	/readyz            "ok" once the datastore answers, 503 otherwise
//	/version           the version, to anyone
//	/debug/pprof/      Go's profiles, for admins
//	everything else    the Kubernetes API (package apiserver)
//
// The TLS handshake asks for a client certificate signed by the cluster CA
// without requiring one. Every path but /healthz, /livez, /readyz,
// /version and the join paths (/cacerts, /v1-labctl/node-certificate,
// package join) needs one, or a service account's bearer token (package
// authn): without either a request gets 401, and when the authorizer
// refuses, 403, each with kube-apiserver's Status body. The admin
// kubeconfig's certificate is system:admin in system:masters.
//
// Once the API serves, Run starts the controller manager and the scheduler
// (package controllers) as API clients with their own certificate; they
// act only while this server holds the kube-controller-manager Lease. They,
// the add-ons and this machine's node reach the API in-process (package
// loopback): their requests call the same handler the HTTPS server serves,
// authentication included, without TLS, HTTP/2 or a socket.
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
// Run blocks until its context ends, then stops the controllers, stops the
// HTTPS server (letting requests in flight finish, for at most
// ShutdownTimeout), closes the datastore and returns nil. It returns an
// error when it cannot start or when serving fails.
package server
