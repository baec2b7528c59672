// Package pki creates and loads the cluster's certificates and keys, as k3s
// does on a server's first start, and writes kubeconfig files that use them.
//
// Ensure makes sure that the directory it is given (the server uses
// <data-dir>/server/tls) holds:
//
//	server-ca.crt, .key              the cluster CA: ECDSA P-256, 10 years,
//	                                 CN labctl-server-ca@<unix time>
//	serving-kube-apiserver.crt, .key the API server's serving certificate
//	client-admin.crt, .key           CN system:admin, O system:masters
//	client-controller.crt, .key      CN system:kube-controller-manager
//	client-scheduler.crt, .key       CN system:kube-scheduler
//	client-kube-proxy.crt, .key      CN system:kube-proxy
//	client-kubelet.crt, .key         CN system:node:<node name>, O system:nodes
//	kube-apiserver-kubelet-client.crt, .key
//	                                 CN kube-apiserver-kubelet-client, O
//	                                 system:masters: the API server towards the
//	                                 kubelets (logs, exec, port-forward)
//	service.key, service.pub         RSA 2048 key pair that signs service
//	                                 account tokens
//
// # One CA
//
// k3s keeps separate CAs for serving and client certificates (and a third
// for the front proxy). labctl has one: server-ca signs the serving
// certificate and every client certificate, and the API server trusts it
// for both. That is simpler to teach and to inspect with openssl; the cost
// is that a client CA cannot be rotated apart from the serving one. The file
// keeps k3s's name, server-ca, so that a separate client-ca can be added
// later beside it without renaming anything.
//
// # What is regenerated
//
// The CA is created once and never replaced: when its certificate exists
// but its key cannot be used, Ensure fails rather than invalidate every
// certificate and kubeconfig issued from it. The service account key is
// likewise kept once it exists (service.pub is rewritten from it when it is
// missing or wrong). A leaf certificate is issued again, with a new key,
// when it or its key is missing or unreadable, when they do not match, when
// it was not signed by the CA, when its subject or usage is not the wanted
// one, when it is within RenewBefore (90 days) of expiry, and, for the
// serving certificate, when its SANs do not cover every wanted name and
// address. Leaf certificates are valid for one year (never past the CA).
//
// # Files
//
// The directory gets mode 0700, keys 0600 and certificates 0644. Every file
// is written to a temporary file in the same directory, synced and renamed
// into place, so that a crash leaves either the old file or the new one,
// never half a key. A key is written before its certificate, so a crash in
// between leaves a pair that does not match and is issued again.
package pki
