package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DiscoverServiceCIDRs asks the API server which ranges it gives
// ClusterIPs from (labctl server's --service-cidr), for
// Config.ServiceCIDRs on a node that is not told them.
//
// No object holds them (labctl does not serve upstream's ServiceCIDR
// objects, which kube-proxy watches), and the kubernetes Service's
// ClusterIP, the range's first address, tells where the range starts
// but not its size. The API server says it when it refuses a ClusterIP
// outside them, as upstream's does: DiscoverServiceCIDRs creates, as a
// dry run (nothing is stored or allocated), a Service in the default
// namespace that asks for an address no range holds, and reads the
// answer's "The range of valid IPs is 10.43.0.0/16" (what `kubectl
// create service clusterip x --tcp 1 --clusterip 0.0.0.1
// --dry-run=server` shows). It retries for a few seconds while the
// server cannot answer, and fails when the answer names no range (the
// node may not create Services, say).
func DiscoverServiceCIDRs(ctx context.Context, client kubernetes.Interface) ([]netip.Prefix, error) {
	ctx, cancel := context.WithTimeout(ctx, discoverTimeout)
	defer cancel()
	for {
		cidrs, err := probeServiceCIDRs(ctx, client)
		if err == nil || !retriable(err) {
			return cidrs, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("asking the API server for the service CIDR: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

const discoverTimeout = 10 * time.Second

// probeClusterIPs are the addresses the dry runs ask for, in turn should
// a range hold the first: no range holds both (it would be 0.0.0.0/0).
var probeClusterIPs = []string{"0.0.0.1", "255.255.255.254"}

// rangeMarker comes before the ranges in the API server's refusal
// (upstream's ipallocator.ErrNotInRange, and labctl's).
const rangeMarker = "The range of valid IPs is "

// errNoRange: the server answered, but named no range.
var errNoRange = errors.New("the API server's answer names no service CIDR")

func probeServiceCIDRs(ctx context.Context, client kubernetes.Interface) ([]netip.Prefix, error) {
	answer := "the dry runs succeeded"
	for _, ip := range probeClusterIPs {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "labctl-proxy-service-cidr-probe", Namespace: metav1.NamespaceDefault},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
				Ports: []corev1.ServicePort{{Name: "probe", Protocol: corev1.ProtocolTCP, Port: 1}}},
		}
		_, err := client.CoreV1().Services(metav1.NamespaceDefault).Create(ctx, svc,
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil {
			continue // a range holds ip
		}
		status, ok := err.(apierrors.APIStatus)
		if !ok || !apierrors.IsInvalid(err) {
			return nil, err
		}
		var msgs []string
		if d := status.Status().Details; d != nil {
			for _, c := range d.Causes {
				msgs = append(msgs, c.Message)
			}
		}
		msgs = append(msgs, status.Status().Message)
		for _, m := range msgs {
			if cidrs := parseRanges(m); len(cidrs) > 0 {
				return cidrs, nil
			}
		}
		answer = err.Error() // a range holds ip, which is taken?
	}
	return nil, fmt.Errorf("%w (%s)", errNoRange, answer)
}

// parseRanges reads the prefixes after rangeMarker in msg, separated by
// commas or spaces (a server with several ranges may list them).
func parseRanges(msg string) []netip.Prefix {
	_, rest, ok := strings.Cut(msg, rangeMarker)
	if !ok {
		return nil
	}
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(rest, func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
		p, err := netip.ParsePrefix(strings.TrimRight(f, ".\"'"))
		if err != nil {
			break
		}
		out = append(out, p.Masked())
	}
	return out
}

// retriable: the server could not answer (yet), as opposed to an answer.
func retriable(err error) bool {
	if errors.Is(err, errNoRange) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if _, ok := err.(apierrors.APIStatus); !ok {
		return true // the connection, not the server
	}
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err)
}
