package coredns

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The API objects of the add-on, in kube-system.
const (
	// ServiceName names the cluster DNS Service, its Endpoints and its
	// EndpointSlice, as upstream's kube-dns.
	ServiceName = "kube-dns"
	// ConfigMapName names the ConfigMap whose Corefile key, when present,
	// replaces the default Corefile.
	ConfigMapName = "coredns"
	// CorefileKey is that ConfigMap's key.
	CorefileKey = "Corefile"

	// addonAnnotation marks the Service and Endpoints labctl keeps, so
	// that Remove leaves a kube-dns of another CoreDNS alone.
	addonAnnotation = "labctl.io/addon"
	addonName       = "coredns"
	// managedBy is the EndpointSlice's managed-by label, as on the
	// kubernetes service's slice.
	managedBy = "labctl"
)

// kubeDNS is the kube-dns Service and its endpoints: the cluster DNS
// address, served by CoreDNS at the node IP.
type kubeDNS struct {
	clusterDNS, listen   netip.Addr
	dnsPort, metricsPort int
}

// labels are upstream's kube-dns Service labels.
func (k kubeDNS) labels() map[string]string {
	return map[string]string{"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}
}

func (k kubeDNS) service() *corev1.Service {
	family := corev1.IPv4Protocol
	if k.clusterDNS.Is6() {
		family = corev1.IPv6Protocol
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: ServiceName, Namespace: metav1.NamespaceSystem, Labels: k.labels(),
			Annotations: map[string]string{"prometheus.io/port": "9153", "prometheus.io/scrape": "true", addonAnnotation: addonName},
		},
		Spec: corev1.ServiceSpec{
			Type:           corev1.ServiceTypeClusterIP,
			ClusterIP:      k.clusterDNS.String(),
			ClusterIPs:     []string{k.clusterDNS.String()},
			IPFamilies:     []corev1.IPFamily{family},
			IPFamilyPolicy: ptr.To(corev1.IPFamilyPolicySingleStack),
			Ports: []corev1.ServicePort{
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(int32(k.dnsPort))},
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(int32(k.dnsPort))},
				{Name: "metrics", Protocol: corev1.ProtocolTCP, Port: 9153, TargetPort: intstr.FromInt32(int32(k.metricsPort))},
			},
		},
	}
}

func (k kubeDNS) endpoints() *corev1.Endpoints {
	labels := k.labels()
	// labctl writes the slice itself: nothing is to mirror it.
	labels["endpointslice.kubernetes.io/skip-mirror"] = "true"
	return &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{
			Name: ServiceName, Namespace: metav1.NamespaceSystem, Labels: labels,
			Annotations: map[string]string{addonAnnotation: addonName},
		},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: k.listen.String()}},
			Ports: []corev1.EndpointPort{
				{Name: "dns", Port: int32(k.dnsPort), Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", Port: int32(k.dnsPort), Protocol: corev1.ProtocolTCP},
				{Name: "metrics", Port: int32(k.metricsPort), Protocol: corev1.ProtocolTCP},
			},
		}},
	}
}

func (k kubeDNS) slice() *discoveryv1.EndpointSlice {
	labels := k.labels()
	labels[discoveryv1.LabelServiceName] = ServiceName
	labels[discoveryv1.LabelManagedBy] = managedBy
	addrType := discoveryv1.AddressTypeIPv4
	if k.listen.Is6() {
		addrType = discoveryv1.AddressTypeIPv6
	}
	port := func(name string, p int, proto corev1.Protocol) discoveryv1.EndpointPort {
		return discoveryv1.EndpointPort{Name: ptr.To(name), Port: ptr.To(int32(p)), Protocol: ptr.To(proto)}
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: ServiceName, Namespace: metav1.NamespaceSystem, Labels: labels},
		AddressType: addrType,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{k.listen.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
		}},
		Ports: []discoveryv1.EndpointPort{
			port("dns", k.dnsPort, corev1.ProtocolUDP),
			port("dns-tcp", k.dnsPort, corev1.ProtocolTCP),
			port("metrics", k.metricsPort, corev1.ProtocolTCP),
		},
	}
}

// ensure creates or corrects the Service, the Endpoints and the
// EndpointSlice, and writes nothing when they are as they should be.
func (k kubeDNS) ensure(ctx context.Context, cs kubernetes.Interface) error {
	return errors.Join(k.ensureService(ctx, cs), k.ensureEndpoints(ctx, cs), k.ensureSlice(ctx, cs))
}

func (k kubeDNS) ensureService(ctx context.Context, cs kubernetes.Interface) error {
	want := k.service()
	svcs := cs.CoreV1().Services(metav1.NamespaceSystem)
	cur, err := svcs.Get(ctx, ServiceName, metav1.GetOptions{})
	if err == nil && (cur.Spec.ClusterIP != want.Spec.ClusterIP || cur.Spec.Type != want.Spec.Type) {
		// The cluster IP cannot change: replace the Service.
		err = svcs.Delete(ctx, ServiceName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("replace service %s/%s, whose cluster IP is %s rather than %s: %w",
				metav1.NamespaceSystem, ServiceName, cur.Spec.ClusterIP, want.Spec.ClusterIP, err)
		}
		err = apierrors.NewNotFound(corev1.Resource("services"), ServiceName)
	}
	if apierrors.IsNotFound(err) {
		if _, err := svcs.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create service %s/%s at %s (is that address taken by another service? free it, or give labctl server another --cluster-dns): %w",
				metav1.NamespaceSystem, ServiceName, want.Spec.ClusterIP, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read service %s/%s: %w", metav1.NamespaceSystem, ServiceName, err)
	}
	if hasAll(cur.Labels, want.Labels) && hasAll(cur.Annotations, want.Annotations) &&
		cur.Spec.Selector == nil && equality.Semantic.DeepEqual(cur.Spec.Ports, want.Spec.Ports) {
		return nil
	}
	upd := cur.DeepCopy()
	upd.Labels = merged(upd.Labels, want.Labels)
	upd.Annotations = merged(upd.Annotations, want.Annotations)
	upd.Spec.Selector, upd.Spec.Ports = nil, want.Spec.Ports
	if _, err := svcs.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update service %s/%s: %w", metav1.NamespaceSystem, ServiceName, err)
	}
	return nil
}

func (k kubeDNS) ensureEndpoints(ctx context.Context, cs kubernetes.Interface) error {
	want := k.endpoints()
	eps := cs.CoreV1().Endpoints(metav1.NamespaceSystem)
	cur, err := eps.Get(ctx, ServiceName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := eps.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create endpoints %s/%s: %w", metav1.NamespaceSystem, ServiceName, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read endpoints %s/%s: %w", metav1.NamespaceSystem, ServiceName, err)
	}
	if hasAll(cur.Labels, want.Labels) && hasAll(cur.Annotations, want.Annotations) &&
		equality.Semantic.DeepEqual(cur.Subsets, want.Subsets) {
		return nil
	}
	upd := cur.DeepCopy()
	upd.Labels = merged(upd.Labels, want.Labels)
	upd.Annotations = merged(upd.Annotations, want.Annotations)
	upd.Subsets = want.Subsets
	if _, err := eps.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update endpoints %s/%s: %w", metav1.NamespaceSystem, ServiceName, err)
	}
	return nil
}

func (k kubeDNS) ensureSlice(ctx context.Context, cs kubernetes.Interface) error {
	want := k.slice()
	slices := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem)
	cur, err := slices.Get(ctx, ServiceName, metav1.GetOptions{})
	if err == nil && cur.AddressType != want.AddressType {
		// The address type cannot change: replace the slice.
		err = slices.Delete(ctx, ServiceName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("replace endpointslice %s/%s: %w", metav1.NamespaceSystem, ServiceName, err)
		}
		err = apierrors.NewNotFound(discoveryv1.Resource("endpointslices"), ServiceName)
	}
	if apierrors.IsNotFound(err) {
		if _, err := slices.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create endpointslice %s/%s: %w", metav1.NamespaceSystem, ServiceName, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read endpointslice %s/%s: %w", metav1.NamespaceSystem, ServiceName, err)
	}
	if hasAll(cur.Labels, want.Labels) && equality.Semantic.DeepEqual(cur.Endpoints, want.Endpoints) &&
		equality.Semantic.DeepEqual(cur.Ports, want.Ports) {
		return nil
	}
	upd := cur.DeepCopy()
	upd.Labels = merged(upd.Labels, want.Labels)
	upd.Endpoints, upd.Ports = want.Endpoints, want.Ports
	if _, err := slices.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update endpointslice %s/%s: %w", metav1.NamespaceSystem, ServiceName, err)
	}
	return nil
}

// Remove deletes the kube-dns Service, Endpoints and EndpointSlice that
// Run keeps, for a server started with --disable coredns; it leaves alone
// a kube-dns that another CoreDNS deployment made, and the coredns
// ConfigMap.
func Remove(ctx context.Context, cs kubernetes.Interface) error {
	var errs []error
	ns := metav1.NamespaceSystem
	del := func(kind string, meta *metav1.ObjectMeta, delete func(metav1.DeleteOptions) error) {
		err := delete(metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &meta.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", kind, ns, ServiceName, err))
		}
	}
	if s, err := cs.DiscoveryV1().EndpointSlices(ns).Get(ctx, ServiceName, metav1.GetOptions{}); err == nil && s.Labels[discoveryv1.LabelManagedBy] == managedBy {
		del("endpointslice", &s.ObjectMeta, func(o metav1.DeleteOptions) error {
			return cs.DiscoveryV1().EndpointSlices(ns).Delete(ctx, ServiceName, o)
		})
	} else if err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	if e, err := cs.CoreV1().Endpoints(ns).Get(ctx, ServiceName, metav1.GetOptions{}); err == nil && e.Annotations[addonAnnotation] == addonName {
		del("endpoints", &e.ObjectMeta, func(o metav1.DeleteOptions) error {
			return cs.CoreV1().Endpoints(ns).Delete(ctx, ServiceName, o)
		})
	} else if err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	if s, err := cs.CoreV1().Services(ns).Get(ctx, ServiceName, metav1.GetOptions{}); err == nil && s.Annotations[addonAnnotation] == addonName {
		del("service", &s.ObjectMeta, func(o metav1.DeleteOptions) error {
			return cs.CoreV1().Services(ns).Delete(ctx, ServiceName, o)
		})
	} else if err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// hasAll reports whether m holds every key of want with its value.
func hasAll(m, want map[string]string) bool {
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func merged(m, add map[string]string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, add)
	return out
}
