package strategy

import (
	"fmt"
	"net"
	"strings"

	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// networking.k8s.io/v1: Ingresses, IngressClasses and NetworkPolicies.

const (
	ingressClassAnnotation       = "kubernetes.io/ingress.class"
	maxLenIngressClassController = 250
)

func init() {
	gv := networkingv1.SchemeGroupVersion
	register(gv.WithKind("Ingress"), &kind[*networkingv1.Ingress]{
		prepareCreate: func(ing *networkingv1.Ingress) {
			ing.Status = networkingv1.IngressStatus{}
			ing.Generation = 1
		},
		prepareUpdate: func(ing, old *networkingv1.Ingress) {
			ing.Status = old.Status
			bumpGeneration(ing, !apiequality.Semantic.DeepEqual(ing.Spec, old.Spec))
		},
		prepareStatus: func(ing, old *networkingv1.Ingress) {
			ing.Spec = old.Spec
		},
		validate: func(ing *networkingv1.Ingress) field.ErrorList {
			allErrs := validateIngress(ing)
			if v, ok := ing.Annotations[ingressClassAnnotation]; ok && ing.Spec.IngressClassName != nil && v != *ing.Spec.IngressClassName {
				allErrs = append(allErrs, field.Invalid(field.NewPath("annotations").Child(ingressClassAnnotation), v, "must match `ingressClassName` when both are specified"))
			}
			return allErrs
		},
		validateUpdate: func(ing, old *networkingv1.Ingress) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&ing.ObjectMeta, &old.ObjectMeta)
			return append(allErrs, validateIngress(ing)...)
		},
		validateStatus: func(ing, old *networkingv1.Ingress) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&ing.ObjectMeta, &old.ObjectMeta)
			return append(allErrs, validateIngressLoadBalancerStatus(&ing.Status.LoadBalancer, statusPath.Child("loadBalancer"))...)
		},
	})

	register(gv.WithKind("IngressClass"), &kind[*networkingv1.IngressClass]{
		clusterScoped: true,
		defaults: func(ic *networkingv1.IngressClass) {
			if p := ic.Spec.Parameters; p != nil && p.Scope == nil {
				p.Scope = ptr.To(networkingv1.IngressClassParametersReferenceScopeCluster)
			}
		},
		prepareCreate: func(ic *networkingv1.IngressClass) {
			ic.Generation = 1
		},
		prepareUpdate: func(ic, old *networkingv1.IngressClass) {
			bumpGeneration(ic, !apiequality.Semantic.DeepEqual(ic.Spec, old.Spec))
		},
		validate: validateIngressClass,
		validateUpdate: func(ic, old *networkingv1.IngressClass) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&ic.ObjectMeta, &old.ObjectMeta)
			allErrs = append(allErrs, validateImmutable(ic.Spec.Controller, old.Spec.Controller, specPath.Child("controller"))...)
			return append(allErrs, validateIngressClass(ic)...)
		},
	})

	register(gv.WithKind("NetworkPolicy"), &kind[*networkingv1.NetworkPolicy]{
		defaults: defaultNetworkPolicy,
		prepareCreate: func(np *networkingv1.NetworkPolicy) {
			np.Generation = 1
		},
		prepareUpdate: func(np, old *networkingv1.NetworkPolicy) {
			bumpGeneration(np, !apiequality.Semantic.DeepEqual(np.Spec, old.Spec))
		},
		validate: func(np *networkingv1.NetworkPolicy) field.ErrorList {
			allErrs := validateObjectMeta(&np.ObjectMeta, true, nameIsDNSSubdomain)
			return append(allErrs, validateNetworkPolicySpec(&np.Spec)...)
		},
		validateUpdate: func(np, old *networkingv1.NetworkPolicy) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&np.ObjectMeta, &old.ObjectMeta)
			return append(allErrs, validateNetworkPolicySpec(&np.Spec)...)
		},
	})
}

func validateIngress(ing *networkingv1.Ingress) field.ErrorList {
	allErrs := validateObjectMeta(&ing.ObjectMeta, true, nameIsDNSSubdomain)
	spec := &ing.Spec
	if len(spec.Rules) == 0 && spec.DefaultBackend == nil {
		allErrs = append(allErrs, field.Invalid(specPath, spec.Rules, "either `defaultBackend` or `rules` must be specified"))
	}
	if spec.DefaultBackend != nil {
		allErrs = append(allErrs, validateIngressBackend(spec.DefaultBackend, specPath.Child("defaultBackend"))...)
	}
	rulesPath := specPath.Child("rules")
	for i, r := range spec.Rules {
		p := rulesPath.Index(i)
		if r.Host != "" {
			if parseIPSloppy(r.Host) != nil {
				allErrs = append(allErrs, field.Invalid(p.Child("host"), r.Host, "must be a DNS name, not an IP address"))
			}
			allErrs = append(allErrs, validateIngressHost(r.Host, p.Child("host"))...)
		}
		if r.HTTP != nil {
			hp := p.Child("http")
			if len(r.HTTP.Paths) == 0 {
				allErrs = append(allErrs, field.Required(hp.Child("paths"), ""))
			}
			for j := range r.HTTP.Paths {
				allErrs = append(allErrs, validateHTTPIngressPath(&r.HTTP.Paths[j], hp.Child("paths").Index(j))...)
			}
		}
	}
	for i, tls := range spec.TLS {
		p := specPath.Child("tls").Index(i)
		for j, h := range tls.Hosts {
			allErrs = append(allErrs, validateIngressHost(h, p.Child("hosts").Index(j))...)
		}
		if tls.SecretName != "" {
			allErrs = append(allErrs, validateName(tls.SecretName, nameIsDNSSubdomain, p.Child("secretName"))...)
		}
	}
	if spec.IngressClassName != nil {
		allErrs = append(allErrs, validateName(*spec.IngressClassName, nameIsDNSSubdomain, specPath.Child("ingressClassName"))...)
	}
	return allErrs
}

// validateIngressHost: a DNS subdomain, or a wildcard one (*.example.com).
func validateIngressHost(host string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if strings.Contains(host, "*") {
		for _, msg := range validation.IsWildcardDNS1123Subdomain(host) {
			allErrs = append(allErrs, field.Invalid(fldPath, host, msg))
		}
		return allErrs
	}
	return validateDNS1123Subdomain(host, fldPath)
}

var (
	supportedPathTypes   = sets.New(networkingv1.PathTypeExact, networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific)
	invalidPathSequences = []string{"//", "/./", "/../", "%2f", "%2F"}
	invalidPathSuffixes  = []string{"/..", "/."}
)

func validateHTTPIngressPath(p *networkingv1.HTTPIngressPath, fldPath *field.Path) field.ErrorList {
	if p.PathType == nil {
		return field.ErrorList{field.Required(fldPath.Child("pathType"), "pathType must be specified")}
	}
	var allErrs field.ErrorList
	pp := fldPath.Child("path")
	switch *p.PathType {
	case networkingv1.PathTypeExact, networkingv1.PathTypePrefix:
		if !strings.HasPrefix(p.Path, "/") {
			allErrs = append(allErrs, field.Invalid(pp, p.Path, "must be an absolute path"))
		}
		if p.Path != "" {
			for _, seq := range invalidPathSequences {
				if strings.Contains(p.Path, seq) {
					allErrs = append(allErrs, field.Invalid(pp, p.Path, fmt.Sprintf("must not contain '%s'", seq)))
				}
			}
			for _, suf := range invalidPathSuffixes {
				if strings.HasSuffix(p.Path, suf) {
					allErrs = append(allErrs, field.Invalid(pp, p.Path, fmt.Sprintf("cannot end with '%s'", suf)))
				}
			}
		}
	case networkingv1.PathTypeImplementationSpecific:
		if p.Path != "" && !strings.HasPrefix(p.Path, "/") {
			allErrs = append(allErrs, field.Invalid(pp, p.Path, "must be an absolute path"))
		}
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("pathType"), *p.PathType, sets.List(supportedPathTypes)))
	}
	return append(allErrs, validateIngressBackend(&p.Backend, fldPath.Child("backend"))...)
}

func validateIngressBackend(b *networkingv1.IngressBackend, fldPath *field.Path) field.ErrorList {
	switch {
	case b.Resource != nil && b.Service != nil:
		return field.ErrorList{field.Invalid(fldPath, "", "cannot set both resource and service backends")}
	case b.Resource != nil:
		return validateTypedLocalObjectReference(b.Resource.APIGroup, b.Resource.Kind, b.Resource.Name, fldPath.Child("resource"))
	case b.Service != nil:
		var allErrs field.ErrorList
		sp := fldPath.Child("service")
		if b.Service.Name == "" {
			allErrs = append(allErrs, field.Required(sp.Child("name"), ""))
		} else {
			allErrs = append(allErrs, validateName(b.Service.Name, nameIsDNS1035Label, sp.Child("name"))...)
		}
		hasName, hasNumber := b.Service.Port.Name != "", b.Service.Port.Number != 0
		switch {
		case hasName && hasNumber:
			allErrs = append(allErrs, field.Invalid(fldPath, "", "cannot set both port name & port number"))
		case hasName:
			for _, msg := range validation.IsValidPortName(b.Service.Port.Name) {
				allErrs = append(allErrs, field.Invalid(sp.Child("port", "name"), b.Service.Port.Name, msg))
			}
		case hasNumber:
			for _, msg := range validation.IsValidPortNum(int(b.Service.Port.Number)) {
				allErrs = append(allErrs, field.Invalid(sp.Child("port", "number"), b.Service.Port.Number, msg))
			}
		default:
			allErrs = append(allErrs, field.Required(fldPath, "port name or number is required"))
		}
		return allErrs
	}
	return field.ErrorList{field.Invalid(fldPath, "", "resource or service backend is required")}
}

func validateTypedLocalObjectReference(apiGroup *string, kind, name string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if apiGroup != nil {
		for _, msg := range validation.IsDNS1123Subdomain(*apiGroup) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("apiGroup"), *apiGroup, msg))
		}
	}
	if kind == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("kind"), "kind is required"))
	} else {
		for _, msg := range content.IsPathSegmentName(kind) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("kind"), kind, msg))
		}
	}
	if name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), "name is required"))
	} else {
		for _, msg := range content.IsPathSegmentName(name) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("name"), name, msg))
		}
	}
	return allErrs
}

func validateIngressLoadBalancerStatus(s *networkingv1.IngressLoadBalancerStatus, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for i, ing := range s.Ingress {
		p := fldPath.Child("ingress").Index(i)
		if ing.IP != "" {
			allErrs = append(allErrs, validation.IsValidIP(p.Child("ip"), ing.IP)...)
		}
		if ing.Hostname != "" {
			allErrs = append(allErrs, validateDNS1123Subdomain(ing.Hostname, p.Child("hostname"))...)
			if parseIPSloppy(ing.Hostname) != nil {
				allErrs = append(allErrs, field.Invalid(p.Child("hostname"), ing.Hostname, "must be a DNS name, not an IP address"))
			}
		}
	}
	return allErrs
}

var supportedParamScopes = sets.New(networkingv1.IngressClassParametersReferenceScopeNamespace, networkingv1.IngressClassParametersReferenceScopeCluster)

func validateIngressClass(ic *networkingv1.IngressClass) field.ErrorList {
	allErrs := validateObjectMeta(&ic.ObjectMeta, false, nameIsDNSSubdomain)
	cp := specPath.Child("controller")
	if len(ic.Spec.Controller) > maxLenIngressClassController {
		allErrs = append(allErrs, field.TooLong(cp, ic.Spec.Controller, maxLenIngressClassController))
	}
	allErrs = append(allErrs, validation.IsDomainPrefixedPath(cp, ic.Spec.Controller)...)
	if p := ic.Spec.Parameters; p != nil {
		pp := specPath.Child("parameters")
		allErrs = append(allErrs, validateTypedLocalObjectReference(p.APIGroup, p.Kind, p.Name, pp)...)
		if p.Scope == nil {
			allErrs = append(allErrs, field.Required(pp.Child("scope"), ""))
		} else if !supportedParamScopes.Has(*p.Scope) {
			allErrs = append(allErrs, field.NotSupported(pp.Child("scope"), *p.Scope, sets.List(supportedParamScopes)))
		} else if *p.Scope == networkingv1.IngressClassParametersReferenceScopeNamespace {
			if p.Namespace == nil {
				allErrs = append(allErrs, field.Required(pp.Child("namespace"), "`parameters.scope` is set to 'Namespace'"))
			} else {
				allErrs = append(allErrs, validateName(*p.Namespace, nameIsDNSLabel, pp.Child("namespace"))...)
			}
		} else if p.Namespace != nil {
			allErrs = append(allErrs, field.Forbidden(pp.Child("namespace"), "`parameters.scope` is set to 'Cluster'"))
		}
	}
	return allErrs
}

// defaultNetworkPolicy: ports speak TCP, and a policy without policyTypes
// is an Ingress policy, and an Egress one too when it has egress rules.
func defaultNetworkPolicy(np *networkingv1.NetworkPolicy) {
	for i := range np.Spec.Ingress {
		defaultNetworkPolicyPorts(np.Spec.Ingress[i].Ports)
	}
	for i := range np.Spec.Egress {
		defaultNetworkPolicyPorts(np.Spec.Egress[i].Ports)
	}
	if len(np.Spec.PolicyTypes) == 0 {
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(np.Spec.Egress) != 0 {
			np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
}

func defaultNetworkPolicyPorts(ports []networkingv1.NetworkPolicyPort) {
	for i := range ports {
		if ports[i].Protocol == nil {
			ports[i].Protocol = ptr.To(v1.ProtocolTCP)
		}
	}
}

func validateNetworkPolicySpec(spec *networkingv1.NetworkPolicySpec) field.ErrorList {
	allErrs := validateLabelSelector(&spec.PodSelector, specPath.Child("podSelector"))
	for i, r := range spec.Ingress {
		p := specPath.Child("ingress").Index(i)
		for j := range r.Ports {
			allErrs = append(allErrs, validateNetworkPolicyPort(&r.Ports[j], p.Child("ports").Index(j))...)
		}
		for j := range r.From {
			allErrs = append(allErrs, validateNetworkPolicyPeer(&r.From[j], p.Child("from").Index(j))...)
		}
	}
	for i, r := range spec.Egress {
		p := specPath.Child("egress").Index(i)
		for j := range r.Ports {
			allErrs = append(allErrs, validateNetworkPolicyPort(&r.Ports[j], p.Child("ports").Index(j))...)
		}
		for j := range r.To {
			allErrs = append(allErrs, validateNetworkPolicyPeer(&r.To[j], p.Child("to").Index(j))...)
		}
	}
	tp := specPath.Child("policyTypes")
	if len(spec.PolicyTypes) > 2 {
		return append(allErrs, field.Invalid(tp, &spec.PolicyTypes, "may not specify more than two policyTypes"))
	}
	for i, t := range spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			allErrs = append(allErrs, field.NotSupported(tp.Index(i), t, []string{string(networkingv1.PolicyTypeIngress), string(networkingv1.PolicyTypeEgress)}))
		}
	}
	return allErrs
}

func validateNetworkPolicyPort(port *networkingv1.NetworkPolicyPort, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if port.Protocol != nil && !supportedPortProtocols.Has(*port.Protocol) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("protocol"), *port.Protocol, []string{string(v1.ProtocolTCP), string(v1.ProtocolUDP), string(v1.ProtocolSCTP)}))
	}
	switch {
	case port.Port == nil:
		if port.EndPort != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("endPort"), *port.EndPort, "may not be specified when `port` is not specified"))
		}
	case port.Port.Type == intstr.Int:
		for _, msg := range validation.IsValidPortNum(int(port.Port.IntVal)) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("port"), port.Port.IntVal, msg))
		}
		if port.EndPort != nil {
			if *port.EndPort < port.Port.IntVal {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("endPort"), port.Port.IntVal, "must be greater than or equal to `port`"))
			}
			for _, msg := range validation.IsValidPortNum(int(*port.EndPort)) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("endPort"), *port.EndPort, msg))
			}
		}
	default:
		if port.EndPort != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("endPort"), *port.EndPort, "may not be specified when `port` is non-numeric"))
		}
		for _, msg := range validation.IsValidPortName(port.Port.StrVal) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("port"), port.Port.StrVal, msg))
		}
	}
	return allErrs
}

func validateNetworkPolicyPeer(peer *networkingv1.NetworkPolicyPeer, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	n := 0
	if peer.PodSelector != nil {
		n++
		allErrs = append(allErrs, validateLabelSelector(peer.PodSelector, fldPath.Child("podSelector"))...)
	}
	if peer.NamespaceSelector != nil {
		n++
		allErrs = append(allErrs, validateLabelSelector(peer.NamespaceSelector, fldPath.Child("namespaceSelector"))...)
	}
	if peer.IPBlock != nil {
		n++
		allErrs = append(allErrs, validateIPBlock(peer.IPBlock, fldPath.Child("ipBlock"))...)
	}
	if n == 0 {
		allErrs = append(allErrs, field.Required(fldPath, "must specify a peer"))
	} else if n > 1 && peer.IPBlock != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath, "may not specify both ipBlock and another peer"))
	}
	return allErrs
}

func validateIPBlock(b *networkingv1.IPBlock, fldPath *field.Path) field.ErrorList {
	if b.CIDR == "" {
		return field.ErrorList{field.Required(fldPath.Child("cidr"), "")}
	}
	allErrs := validation.IsValidCIDR(fldPath.Child("cidr"), b.CIDR)
	_, cidr, err := net.ParseCIDR(b.CIDR)
	if err != nil || len(allErrs) > 0 {
		return allErrs
	}
	for i, e := range b.Except {
		p := fldPath.Child("except").Index(i)
		errs := validation.IsValidCIDR(p, e)
		allErrs = append(allErrs, errs...)
		if len(errs) > 0 {
			continue
		}
		_, ex, err := net.ParseCIDR(e)
		if err != nil {
			continue
		}
		cidrLen, _ := cidr.Mask.Size()
		exLen, _ := ex.Mask.Size()
		if !cidr.Contains(ex.IP) || cidrLen >= exLen {
			allErrs = append(allErrs, field.Invalid(p, e, "must be a strict subset of `cidr`"))
		}
	}
	return allErrs
}
