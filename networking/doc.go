// Package networking will give pods one network across the cluster: the CNI
// bridge on each node, pod CIDRs handed out from --cluster-cidr, routes
// between nodes and the packet-filter rules the pod network needs (the
// course's "network add-on", chapter 14). It arrives with the agent issue;
// the package holds its place in the layout until then.
package networking
