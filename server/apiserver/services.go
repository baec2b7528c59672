package apiserver

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"labctl/server/storage"
)

// Node ports come from upstream's default range.
const (
	nodePortMin = 30000
	nodePortMax = 32767
)

// allocator hands out service cluster IPs from the service CIDR and node
// ports from 30000-32767. It finds what is taken by reading the services
// (a course's cluster has few), under a lock held across the read and the
// write of a service, so two creates never get the same address.
type allocator struct {
	mu   sync.Mutex
	cidr netip.Prefix
}

// firstIP is the first address of the range after the network address:
// the kubernetes service's, as upstream reserves it.
func firstIP(cidr netip.Prefix) netip.Addr { return cidr.Masked().Addr().Next() }

// taken returns the cluster IPs and node ports in use, except those of
// the service skip (the one being updated).
func (s *Server) taken(ctx context.Context, skip types.UID) (map[netip.Addr]bool, map[int32]bool, error) {
	list, err := s.services().store.List(ctx, storage.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	ips, ports := map[netip.Addr]bool{}, map[int32]bool{}
	for _, svc := range list.(*corev1.ServiceList).Items {
		if svc.UID == skip {
			continue
		}
		for _, ip := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
			if a, err := netip.ParseAddr(ip); err == nil {
				ips[a] = true
			}
		}
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				ports[p.NodePort] = true
			}
		}
	}
	return ips, ports, nil
}

func (s *Server) services() *Resource {
	r, _ := s.reg.get(schema.GroupVersionResource{Version: "v1", Resource: "services"})
	return r
}

// allocate gives svc its cluster IP and node ports, keeping those it has
// (checked against the range and what others hold). old is the service
// before an update, or nil.
func (s *Server) allocate(ctx context.Context, svc, old *corev1.Service) error {
	cidr := s.alloc.cidr
	if !cidr.IsValid() && svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		return apierrors.NewInternalError(fmt.Errorf("the server has no service CIDR to allocate cluster IPs from"))
	}
	ips, ports, err := s.taken(ctx, svc.UID)
	if err != nil {
		return err
	}
	var errs field.ErrorList
	spec := field.NewPath("spec")
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		svc.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
	case svc.Spec.ClusterIP == "":
		if old != nil && old.Spec.ClusterIP != "" && old.Spec.ClusterIP != corev1.ClusterIPNone {
			svc.Spec.ClusterIP = old.Spec.ClusterIP
			break
		}
		ip, ok := freeIP(cidr, ips)
		if !ok {
			return apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: range %s is full", cidr))
		}
		svc.Spec.ClusterIP = ip.String()
	default:
		ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(spec.Child("clusterIP"), svc.Spec.ClusterIP, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
		case old != nil && old.Spec.ClusterIP == svc.Spec.ClusterIP:
		case !cidr.Contains(ip):
			errs = append(errs, field.Invalid(spec.Child("clusterIPs").Index(0), svc.Spec.ClusterIP, fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s", ip, ip, cidr)))
		case ips[ip]:
			errs = append(errs, field.Invalid(spec.Child("clusterIPs").Index(0), svc.Spec.ClusterIP, fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", ip)))
		}
	}
	if svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
	}
	if svc.Spec.Type != corev1.ServiceTypeExternalName {
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		if svc.Spec.IPFamilyPolicy == nil {
			svc.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
		}
	}
	wantNodePorts := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	oldPorts := map[string]int32{}
	if old != nil {
		for _, p := range old.Spec.Ports {
			oldPorts[string(p.Protocol)+"/"+fmt.Sprint(p.Port)] = p.NodePort
		}
	}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if !wantNodePorts {
			p.NodePort = 0
			continue
		}
		if p.NodePort == 0 {
			if prev := oldPorts[string(p.Protocol)+"/"+fmt.Sprint(p.Port)]; prev != 0 && !ports[prev] {
				p.NodePort = prev
			} else if port, ok := freePort(ports); ok {
				p.NodePort = port
			} else {
				return apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: range %d-%d is full", nodePortMin, nodePortMax))
			}
		} else if p.NodePort < nodePortMin || p.NodePort > nodePortMax {
			errs = append(errs, field.Invalid(spec.Child("ports").Index(i).Child("nodePort"), p.NodePort, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", nodePortMin, nodePortMax)))
		} else if ports[p.NodePort] {
			errs = append(errs, field.Invalid(spec.Child("ports").Index(i).Child("nodePort"), p.NodePort, "provided port is already allocated"))
		}
		ports[p.NodePort] = true
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, errs)
	}
	return nil
}

// freeIP returns the first address of cidr after the reserved first one
// that is not taken.
func freeIP(cidr netip.Prefix, taken map[netip.Addr]bool) (netip.Addr, bool) {
	first := firstIP(cidr)
	for ip := first.Next(); cidr.Contains(ip); ip = ip.Next() {
		if !taken[ip] && cidr.Contains(ip.Next()) { // the last address is broadcast
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func freePort(taken map[int32]bool) (int32, bool) {
	for p := int32(nodePortMin); p <= nodePortMax; p++ {
		if !taken[p] {
			return p, true
		}
	}
	return 0, false
}

// withServiceAllocation wraps a service write so that the addresses are
// chosen and stored under the allocator's lock.
func (s *Server) withServiceAllocation(r *Resource, fn func() error) error {
	if r.GVK.Group != "" || r.Plural != "services" {
		return fn()
	}
	s.alloc.mu.Lock()
	defer s.alloc.mu.Unlock()
	return fn()
}

// EnsureKubernetesService keeps the kubernetes Service in default (the
// first service IP, port 443) and its Endpoints and EndpointSlice pointing
// at the API server at addr:port, as upstream's apiserver does at start.
// The server calls it once it listens.
func (s *Server) EnsureKubernetesService(ctx context.Context, addr netip.Addr, apiPort int) error {
	if !s.alloc.cidr.IsValid() {
		return fmt.Errorf("apiserver: no service CIDR for the kubernetes service")
	}
	svcs := s.services()
	now := metav1.NewTime(s.cfg.Now().Truncate(time.Second))
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: "kubernetes", Namespace: metav1.NamespaceDefault, UID: types.UID(uuid.NewUUID()), CreationTimestamp: now,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"},
		},
		Spec: corev1.ServiceSpec{
			Type:            corev1.ServiceTypeClusterIP,
			ClusterIP:       firstIP(s.alloc.cidr).String(),
			ClusterIPs:      []string{firstIP(s.alloc.cidr).String()},
			SessionAffinity: corev1.ServiceAffinityNone,
			IPFamilies:      []corev1.IPFamily{corev1.IPv4Protocol},
			IPFamilyPolicy:  ptr.To(corev1.IPFamilyPolicySingleStack),
			Ports: []corev1.ServicePort{{
				Name: "https", Protocol: corev1.ProtocolTCP, Port: 443, TargetPort: intstr.FromInt32(int32(apiPort)),
			}},
			InternalTrafficPolicy: ptr.To(corev1.ServiceInternalTrafficPolicyCluster),
		},
	}
	if _, err := svcs.store.Create(ctx, svc); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("apiserver: create the kubernetes service: %w", err)
	}
	ip := addr.String()
	port := int32(apiPort)
	eps := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault, Labels: map[string]string{"endpointslice.kubernetes.io/skip-mirror": "true"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: ip}},
			Ports:     []corev1.EndpointPort{{Name: "https", Port: port, Protocol: corev1.ProtocolTCP}},
		}},
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault, Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes", discoveryv1.LabelManagedBy: "labctl"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: &port, Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for _, item := range []struct {
		plural, group string
		obj           runtime.Object
		meta          *metav1.ObjectMeta
	}{{"endpoints", "", eps, &eps.ObjectMeta}, {"endpointslices", "discovery.k8s.io", slice, &slice.ObjectMeta}} {
		gv := schema.GroupVersion{Group: item.group, Version: "v1"}
		r, _ := s.reg.get(gv.WithResource(item.plural))
		want := item.obj
		_, err := r.store.Update(ctx, metav1.NamespaceDefault, "kubernetes", func(cur runtime.Object) (runtime.Object, error) {
			out := want.DeepCopyObject()
			m := cur.(metav1.Object)
			om := out.(metav1.Object)
			om.SetUID(m.GetUID())
			om.SetCreationTimestamp(m.GetCreationTimestamp())
			om.SetResourceVersion(m.GetResourceVersion())
			return out, nil
		})
		if apierrors.IsNotFound(err) {
			item.meta.UID, item.meta.CreationTimestamp = types.UID(uuid.NewUUID()), now
			_, err = r.store.Create(ctx, want)
		}
		if err != nil {
			return fmt.Errorf("apiserver: the kubernetes %s: %w", item.plural, err)
		}
	}
	return nil
}
