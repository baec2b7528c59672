package printers

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
)

const (
	// loadBalancerWidth is how many characters of load-balancer addresses
	// a narrow table shows.
	loadBalancerWidth = 16

	labelNodeRolePrefix = "node-role.kubernetes.io/"
	nodeLabelRole       = "kubernetes.io/role"

	betaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class"
)

var replicationControllerPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Desired", Type: "integer", Description: corev1.ReplicationControllerSpec{}.SwaggerDoc()["replicas"]},
	{Name: "Current", Type: "integer", Description: corev1.ReplicationControllerStatus{}.SwaggerDoc()["replicas"]},
	{Name: "Ready", Type: "integer", Description: corev1.ReplicationControllerStatus{}.SwaggerDoc()["readyReplicas"]},
	ageColumn,
	containersColumn,
	imagesColumn,
	{Name: "Selector", Type: "string", Priority: 1, Description: corev1.ReplicationControllerSpec{}.SwaggerDoc()["selector"]},
}, func(obj *corev1.ReplicationController, opts Options) ([]interface{}, error) {
	var containers []corev1.Container
	if obj.Spec.Template != nil {
		containers = obj.Spec.Template.Spec.Containers
	}
	names, images := containerCells(containers)
	return []interface{}{
		obj.Name, int64(replicas(obj.Spec.Replicas)), int64(obj.Status.Replicas), int64(obj.Status.ReadyReplicas),
		age(obj.CreationTimestamp, opts.Now),
		names, images, labels.FormatLabels(obj.Spec.Selector),
	}, nil
})

var servicePrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Type", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["type"]},
	{Name: "Cluster-IP", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["clusterIP"]},
	{Name: "External-IP", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["externalIPs"]},
	{Name: "Port(s)", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["ports"]},
	ageColumn,
	{Name: "Selector", Type: "string", Priority: 1, Description: corev1.ServiceSpec{}.SwaggerDoc()["selector"]},
}, func(obj *corev1.Service, opts Options) ([]interface{}, error) {
	clusterIP := none
	switch {
	case len(obj.Spec.ClusterIPs) > 0:
		clusterIP = obj.Spec.ClusterIPs[0]
	case obj.Spec.ClusterIP != "":
		clusterIP = obj.Spec.ClusterIP
	}
	ports := servicePorts(obj.Spec.Ports)
	if ports == "" {
		ports = none
	}
	// The API server prints wide tables, so load-balancer addresses are
	// never cut short.
	return []interface{}{
		obj.Name, string(obj.Spec.Type), clusterIP, serviceExternalIP(obj, true), ports,
		age(obj.CreationTimestamp, opts.Now),
		labels.FormatLabels(obj.Spec.Selector),
	}, nil
})

// loadBalancerAddresses lists the IPs (or, lacking one, the host names) of
// load-balancer ingress points, sorted and without duplicates; a narrow
// table cuts them to loadBalancerWidth characters.
func loadBalancerAddresses(ips, hostnames []string, wide bool) string {
	result := sets.New[string]()
	for i := range ips {
		if ips[i] != "" {
			result.Insert(ips[i])
		} else if hostnames[i] != "" {
			result.Insert(hostnames[i])
		}
	}
	r := strings.Join(sets.List(result), ",")
	if !wide && len(r) > loadBalancerWidth {
		r = r[0:(loadBalancerWidth-3)] + "..."
	}
	return r
}

func serviceExternalIP(svc *corev1.Service, wide bool) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(svc.Spec.ExternalIPs, ",")
		}
		return none
	case corev1.ServiceTypeLoadBalancer:
		ing := svc.Status.LoadBalancer.Ingress
		ips, hosts := make([]string, len(ing)), make([]string, len(ing))
		for i := range ing {
			ips[i], hosts[i] = ing[i].IP, ing[i].Hostname
		}
		lbIPs := loadBalancerAddresses(ips, hosts, wide)
		if len(svc.Spec.ExternalIPs) > 0 {
			var results []string
			if lbIPs != "" {
				results = append(results, strings.Split(lbIPs, ",")...)
			}
			results = append(results, svc.Spec.ExternalIPs...)
			return strings.Join(results, ",")
		}
		if lbIPs != "" {
			return lbIPs
		}
		return pending
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return unknown
}

func servicePorts(ports []corev1.ServicePort) string {
	pieces := make([]string, len(ports))
	for i, p := range ports {
		if p.NodePort > 0 {
			pieces[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			pieces[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return strings.Join(pieces, ",")
}

var endpointsPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Endpoints", Type: "string", Description: corev1.Endpoints{}.SwaggerDoc()["subsets"]},
	ageColumn,
}, func(obj *corev1.Endpoints, opts Options) ([]interface{}, error) {
	return []interface{}{obj.Name, formatEndpoints(obj), age(obj.CreationTimestamp, opts.Now)}, nil
})

// formatEndpoints lists up to three ip:port pairs (or bare IPs for subsets
// without ports) and tells how many more there are.
func formatEndpoints(ep *corev1.Endpoints) string {
	if len(ep.Subsets) == 0 {
		return none
	}
	const max = 3
	var list []string
	more := false
	count := 0
	for _, ss := range ep.Subsets {
		if len(ss.Ports) == 0 {
			// Headless services may have no ports.
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				if len(list) == max {
					more = true
					break
				}
				list = append(list, a.IP)
			}
			continue
		}
		for _, port := range ss.Ports {
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				if len(list) == max {
					more = true
					break
				}
				list = append(list, net.JoinHostPort(a.IP, strconv.Itoa(int(port.Port))))
			}
		}
	}
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, count-max)
	}
	return ret
}

var nodePrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Status", Type: "string", Description: "The status of the node"},
	{Name: "Roles", Type: "string", Description: "The roles of the node"},
	ageColumn,
	{Name: "Version", Type: "string", Description: corev1.NodeSystemInfo{}.SwaggerDoc()["kubeletVersion"]},
	{Name: "Internal-IP", Type: "string", Priority: 1, Description: corev1.NodeStatus{}.SwaggerDoc()["addresses"]},
	{Name: "External-IP", Type: "string", Priority: 1, Description: corev1.NodeStatus{}.SwaggerDoc()["addresses"]},
	{Name: "OS-Image", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["osImage"]},
	{Name: "Kernel-Version", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["kernelVersion"]},
	{Name: "Container-Runtime", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["containerRuntimeVersion"]},
}, func(obj *corev1.Node, opts Options) ([]interface{}, error) {
	// Only the Ready condition makes the status; the last one of its type
	// wins.
	var ready *corev1.NodeCondition
	for i := range obj.Status.Conditions {
		if obj.Status.Conditions[i].Type == corev1.NodeReady {
			ready = &obj.Status.Conditions[i]
		}
	}
	var status []string
	switch {
	case ready == nil:
		status = append(status, "Unknown")
	case ready.Status == corev1.ConditionTrue:
		status = append(status, string(corev1.NodeReady))
	default:
		status = append(status, "Not"+string(corev1.NodeReady))
	}
	if obj.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}
	roles := strings.Join(nodeRoles(obj), ",")
	if roles == "" {
		roles = none
	}
	info := obj.Status.NodeInfo
	orUnknown := func(s string) string {
		if s == "" {
			return unknown
		}
		return s
	}
	return []interface{}{
		obj.Name, strings.Join(status, ","), roles, age(obj.CreationTimestamp, opts.Now), info.KubeletVersion,
		nodeAddress(obj, corev1.NodeInternalIP), nodeAddress(obj, corev1.NodeExternalIP),
		orUnknown(info.OSImage), orUnknown(info.KernelVersion), orUnknown(info.ContainerRuntimeVersion),
	}, nil
})

// nodeRoles finds the roles of a node in its node-role.kubernetes.io/<role>
// labels and its kubernetes.io/role=<role> label, sorted.
func nodeRoles(node *corev1.Node) []string {
	roles := sets.New[string]()
	for k, v := range node.Labels {
		switch {
		case strings.HasPrefix(k, labelNodeRolePrefix):
			if role := strings.TrimPrefix(k, labelNodeRolePrefix); role != "" {
				roles.Insert(role)
			}
		case k == nodeLabelRole && v != "":
			roles.Insert(v)
		}
	}
	return sets.List(roles)
}

// nodeAddress is the node's first address of type t, or "<none>".
func nodeAddress(node *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range node.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return none
}

var namespacePrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Status", Type: "string", Description: "The status of the namespace"},
	ageColumn,
}, func(obj *corev1.Namespace, opts Options) ([]interface{}, error) {
	return []interface{}{obj.Name, string(obj.Status.Phase), age(obj.CreationTimestamp, opts.Now)}, nil
})

var secretPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Type", Type: "string", Description: corev1.Secret{}.SwaggerDoc()["type"]},
	{Name: "Data", Type: "string", Description: corev1.Secret{}.SwaggerDoc()["data"]},
	ageColumn,
}, func(obj *corev1.Secret, opts Options) ([]interface{}, error) {
	return []interface{}{obj.Name, string(obj.Type), int64(len(obj.Data)), age(obj.CreationTimestamp, opts.Now)}, nil
})

var configMapPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Data", Type: "string", Description: corev1.ConfigMap{}.SwaggerDoc()["data"]},
	ageColumn,
}, func(obj *corev1.ConfigMap, opts Options) ([]interface{}, error) {
	return []interface{}{obj.Name, int64(len(obj.Data) + len(obj.BinaryData)), age(obj.CreationTimestamp, opts.Now)}, nil
})

// serviceAccountPrinter: upstream dropped the SECRETS column once service
// accounts stopped getting token secrets; `kubectl get sa` shows NAME, AGE.
var serviceAccountPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	ageColumn,
}, func(obj *corev1.ServiceAccount, opts Options) ([]interface{}, error) {
	return []interface{}{obj.Name, age(obj.CreationTimestamp, opts.Now)}, nil
})

// accessModes prints access modes as kubectl does, always in the order
// RWO,ROX,RWX,RWOP.
func accessModes(modes []corev1.PersistentVolumeAccessMode) string {
	has := sets.New(modes...)
	var out []string
	for _, m := range []struct {
		mode  corev1.PersistentVolumeAccessMode
		short string
	}{
		{corev1.ReadWriteOnce, "RWO"},
		{corev1.ReadOnlyMany, "ROX"},
		{corev1.ReadWriteMany, "RWX"},
		{corev1.ReadWriteOncePod, "RWOP"},
	} {
		if has.Has(m.mode) {
			out = append(out, m.short)
		}
	}
	return strings.Join(out, ",")
}

var persistentVolumePrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Capacity", Type: "string", Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["capacity"]},
	{Name: "Access Modes", Type: "string", Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["accessModes"]},
	{Name: "Reclaim Policy", Type: "string", Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["persistentVolumeReclaimPolicy"]},
	{Name: "Status", Type: "string", Description: corev1.PersistentVolumeStatus{}.SwaggerDoc()["phase"]},
	{Name: "Claim", Type: "string", Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["claimRef"]},
	{Name: "StorageClass", Type: "string", Description: "StorageClass of the pv"},
	{Name: "VolumeAttributesClass", Type: "string", Description: "VolumeAttributesClass of the pv"},
	{Name: "Reason", Type: "string", Description: corev1.PersistentVolumeStatus{}.SwaggerDoc()["reason"]},
	ageColumn,
	{Name: "VolumeMode", Type: "string", Priority: 1, Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["volumeMode"]},
}, func(obj *corev1.PersistentVolume, opts Options) ([]interface{}, error) {
	claim := ""
	if ref := obj.Spec.ClaimRef; ref != nil {
		claim = ref.Namespace + "/" + ref.Name
	}
	capacity := obj.Spec.Capacity[corev1.ResourceStorage]
	phase := string(obj.Status.Phase)
	if obj.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	class, ok := obj.Annotations[betaStorageClassAnnotation]
	if !ok {
		class = obj.Spec.StorageClassName
	}
	vac := unset
	if obj.Spec.VolumeAttributesClassName != nil {
		vac = *obj.Spec.VolumeAttributesClassName
	}
	mode := unset
	if obj.Spec.VolumeMode != nil {
		mode = string(*obj.Spec.VolumeMode)
	}
	return []interface{}{
		obj.Name, capacity.String(), accessModes(obj.Spec.AccessModes), string(obj.Spec.PersistentVolumeReclaimPolicy),
		phase, claim, class, vac, obj.Status.Reason, age(obj.CreationTimestamp, opts.Now), mode,
	}, nil
})

var persistentVolumeClaimPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Status", Type: "string", Description: corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["phase"]},
	{Name: "Volume", Type: "string", Description: corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeName"]},
	{Name: "Capacity", Type: "string", Description: corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["capacity"]},
	{Name: "Access Modes", Type: "string", Description: corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["accessModes"]},
	{Name: "StorageClass", Type: "string", Description: "StorageClass of the pvc"},
	{Name: "VolumeAttributesClass", Type: "string", Description: "VolumeAttributesClass of the pvc"},
	ageColumn,
	{Name: "VolumeMode", Type: "string", Priority: 1, Description: corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeMode"]},
}, func(obj *corev1.PersistentVolumeClaim, opts Options) ([]interface{}, error) {
	phase := string(obj.Status.Phase)
	if obj.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	capacity, modes := "", ""
	if obj.Spec.VolumeName != "" {
		modes = accessModes(obj.Status.AccessModes)
		q := obj.Status.Capacity[corev1.ResourceStorage]
		capacity = q.String()
	}
	class, ok := obj.Annotations[betaStorageClassAnnotation]
	if !ok && obj.Spec.StorageClassName != nil {
		class = *obj.Spec.StorageClassName
	}
	vac := unset
	if obj.Spec.VolumeAttributesClassName != nil {
		vac = *obj.Spec.VolumeAttributesClassName
	}
	mode := unset
	if obj.Spec.VolumeMode != nil {
		mode = string(*obj.Spec.VolumeMode)
	}
	return []interface{}{
		obj.Name, phase, obj.Spec.VolumeName, capacity, modes, class, vac,
		age(obj.CreationTimestamp, opts.Now), mode,
	}, nil
})

var resourceQuotaPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Request", Type: "string", Description: "Request represents a minimum amount of cpu/memory that a container may consume."},
	{Name: "Limit", Type: "string", Description: "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."},
	ageColumn,
}, func(obj *corev1.ResourceQuota, opts Options) ([]interface{}, error) {
	names := make([]string, 0, len(obj.Status.Hard))
	for name := range obj.Status.Hard {
		names = append(names, string(name))
	}
	sort.Strings(names)
	var requests, limits []string
	for _, name := range names {
		used := obj.Status.Used[corev1.ResourceName(name)]
		hard := obj.Status.Hard[corev1.ResourceName(name)]
		text := fmt.Sprintf("%s: %s/%s", name, used.String(), hard.String())
		if pieces := strings.Split(name, "."); len(pieces) > 1 && pieces[0] == "limits" {
			limits = append(limits, text)
		} else {
			requests = append(requests, text)
		}
	}
	return []interface{}{
		obj.Name, strings.Join(requests, ", "), strings.Join(limits, ", "), age(obj.CreationTimestamp, opts.Now),
	}, nil
})

// Descriptions upstream takes from the extensions/v1beta1 types.
var (
	replicaSetSpecDoc   = extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()
	replicaSetStatusDoc = extensionsv1beta1.ReplicaSetStatus{}.SwaggerDoc()
	daemonSetSpecDoc    = extensionsv1beta1.DaemonSetSpec{}.SwaggerDoc()
	daemonSetStatusDoc  = extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()
	deploymentSpecDoc   = extensionsv1beta1.DeploymentSpec{}.SwaggerDoc()
	deploymentStatusDoc = extensionsv1beta1.DeploymentStatus{}.SwaggerDoc()
	networkPolicySpec   = extensionsv1beta1.NetworkPolicySpec{}.SwaggerDoc()
)
