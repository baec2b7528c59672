package kubelet

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The files the kubelet manages for a pod (dns.go): /etc/hosts and
// /etc/resolv.conf, worded as upstream's kubelet and containerd write
// them.

// hostsFile is the pod's /etc/hosts, for a pod with address ip.
func (r *podRuntime) hostsFile(pod *corev1.Pod, ip string) ([]byte, error) {
	var b bytes.Buffer
	if pod.Spec.HostNetwork {
		b.WriteString("# Kubernetes-managed hosts file (host network).\n")
		host, err := os.ReadFile(r.cfg.HostHostsFile)
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		b.Write(host)
		if len(host) > 0 && host[len(host)-1] != '\n' {
			b.WriteByte('\n')
		}
	} else {
		b.WriteString("# Kubernetes-managed hosts file.\n")
		b.WriteString("127.0.0.1\tlocalhost\n")
		b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
		b.WriteString("fe00::0\tip6-localnet\n")
		b.WriteString("fe00::0\tip6-mcastprefix\n")
		b.WriteString("fe00::1\tip6-allnodes\n")
		b.WriteString("fe00::2\tip6-allrouters\n")
		if ip != "" {
			host := r.podHostname(pod)
			if pod.Spec.Subdomain != "" {
				fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.%s\t%s\n", ip, host, pod.Spec.Subdomain, pod.Namespace, r.cfg.ClusterDomain, host)
			} else {
				fmt.Fprintf(&b, "%s\t%s\n", ip, host)
			}
		}
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return b.Bytes(), nil
}

// resolvConfig is the content of a resolv.conf.
type resolvConfig struct {
	nameservers, searches, options []string
}

// parseResolvConf reads the nameserver, search (and domain) and options
// lines of a resolv.conf.
func parseResolvConf(data []byte) resolvConfig {
	var rc resolvConfig
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				rc.nameservers = append(rc.nameservers, f[1])
			}
		case "domain", "search":
			rc.searches = f[1:] // the last one wins, as in the resolver
		case "options":
			rc.options = append(rc.options, f[1:]...)
		}
	}
	return rc
}

// resolvConf is the pod's /etc/resolv.conf by its dnsPolicy and dnsConfig,
// by upstream's rules: ClusterFirst (the default; ClusterFirstWithHostNet
// for hostNetwork pods) gives the cluster DNS with the search domains
// <ns>.svc.<domain>, svc.<domain>, <domain> and the node's, and ndots:5;
// Default (and ClusterFirst for a hostNetwork pod, or without a cluster
// DNS) gives the node's; None only dnsConfig's. dnsConfig adds to any.
func (r *podRuntime) resolvConf(pod *corev1.Pod) ([]byte, error) {
	var host resolvConfig
	if data, err := os.ReadFile(r.cfg.HostResolvConf); err == nil {
		host = parseResolvConf(data)
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = corev1.DNSDefault
	}
	if policy == corev1.DNSClusterFirstWithHostNet {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && len(r.cfg.ClusterDNS) == 0 {
		policy = corev1.DNSDefault // upstream warns and does the same
	}
	var rc resolvConfig
	switch policy {
	case corev1.DNSClusterFirst:
		d := r.cfg.ClusterDomain
		rc.nameservers = slices.Clone(r.cfg.ClusterDNS)
		rc.searches = append([]string{pod.Namespace + ".svc." + d, "svc." + d, d}, host.searches...)
		rc.options = []string{"ndots:5"}
	case corev1.DNSDefault:
		rc = host
	case corev1.DNSNone:
	}
	if c := pod.Spec.DNSConfig; c != nil {
		rc.nameservers = append(rc.nameservers, c.Nameservers...)
		rc.searches = append(rc.searches, c.Searches...)
		for _, o := range c.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			rc.options = mergeOption(rc.options, o.Name, opt)
		}
	}
	rc.nameservers = dedupe(rc.nameservers)
	if len(rc.nameservers) > 3 {
		rc.nameservers = rc.nameservers[:3] // the resolver reads three
	}
	rc.searches = dedupe(rc.searches)
	if len(rc.searches) > 32 {
		rc.searches = rc.searches[:32]
	}
	var b bytes.Buffer
	if len(rc.searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(rc.searches, " "))
	}
	for _, ns := range rc.nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(rc.options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(rc.options, " "))
	}
	return b.Bytes(), nil
}

// mergeOption replaces the option called name in opts with opt, or
// appends it.
func mergeOption(opts []string, name, opt string) []string {
	for i, o := range opts {
		if n, _, _ := strings.Cut(o, ":"); n == name {
			opts[i] = opt
			return opts
		}
	}
	return append(opts, opt)
}

func dedupe(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
