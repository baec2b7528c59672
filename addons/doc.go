// Package addons will hold the cluster add-ons that run as API clients
// inside labctl: CoreDNS in-process, the ingress controller, the local-path
// storage provisioner, metrics and the dashboard (each can be turned off
// with --disable). They arrive with their issues; the package holds its
// place in the layout until then.
package addons
