// Package addons runs the cluster add-ons that live inside labctl as API
// clients: CoreDNS in-process (addons/coredns) and the local-path storage
// add-on (addons/localpath: its StorageClass from here, its provisioner on
// every node from the agent). Each can be turned off with --disable; the
// ingress controller, metrics and the dashboard come with their issues.
package addons
