package strategy

import (
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// discovery.k8s.io/v1: EndpointSlices.

const (
	maxEndpointSliceEndpoints = 1000
	maxEndpointAddresses      = 100
	maxEndpointSlicePorts     = 20000
	maxTopologyLabels         = 16
	maxEndpointHints          = 8
)

var supportedAddressTypes = sets.New(discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN)

func init() {
	register(discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"), &kind[*discoveryv1.EndpointSlice]{
		defaults: func(es *discoveryv1.EndpointSlice) {
			for i := range es.Ports {
				p := &es.Ports[i]
				if p.Name == nil {
					p.Name = ptr.To("")
				}
				if p.Protocol == nil {
					p.Protocol = ptr.To(v1.ProtocolTCP)
				}
			}
		},
		prepareCreate: func(es *discoveryv1.EndpointSlice) {
			es.Generation = 1
		},
		prepareUpdate: func(es, old *discoveryv1.EndpointSlice) {
			// Anything but the metadata changing, or the labels, is a new
			// generation (a slice has no status).
			a, b := es.DeepCopy(), old.DeepCopy()
			a.ObjectMeta, b.ObjectMeta = metav1.ObjectMeta{}, metav1.ObjectMeta{}
			bumpGeneration(es, !apiequality.Semantic.DeepEqual(a, b) || !apiequality.Semantic.DeepEqual(es.Labels, old.Labels))
		},
		validate: func(es *discoveryv1.EndpointSlice) field.ErrorList {
			return validateEndpointSlice(es, nil)
		},
		validateUpdate: func(es, old *discoveryv1.EndpointSlice) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&es.ObjectMeta, &old.ObjectMeta)
			allErrs = append(allErrs, validateEndpointSlice(es, old)...)
			return append(allErrs, validateImmutable(es.AddressType, old.AddressType, field.NewPath("addressType"))...)
		},
	})
}

func validateEndpointSlice(es, old *discoveryv1.EndpointSlice) field.ErrorList {
	var allErrs field.ErrorList
	if old == nil || old.AddressType != es.AddressType {
		if es.AddressType == "" {
			allErrs = append(allErrs, field.Required(field.NewPath("addressType"), ""))
		} else if !supportedAddressTypes.Has(es.AddressType) {
			allErrs = append(allErrs, field.NotSupported(field.NewPath("addressType"), es.AddressType, sets.List(supportedAddressTypes)))
		}
	}
	allErrs = append(allErrs, validateObjectMeta(&es.ObjectMeta, true, nameIsDNSSubdomain)...)
	ep := field.NewPath("endpoints")
	if len(es.Endpoints) > maxEndpointSliceEndpoints {
		allErrs = append(allErrs, field.TooMany(ep, len(es.Endpoints), maxEndpointSliceEndpoints))
	}
	for i, e := range es.Endpoints {
		p := ep.Index(i)
		ap := p.Child("addresses")
		if len(e.Addresses) == 0 {
			allErrs = append(allErrs, field.Required(ap, "must contain at least 1 address"))
		} else if len(e.Addresses) > maxEndpointAddresses {
			allErrs = append(allErrs, field.TooMany(ap, len(e.Addresses), maxEndpointAddresses))
		}
		for j, a := range e.Addresses {
			allErrs = append(allErrs, validateSliceAddress(es.AddressType, a, ap.Index(j))...)
		}
		if e.NodeName != nil {
			allErrs = append(allErrs, validateName(*e.NodeName, nameIsDNSSubdomain, p.Child("nodeName"))...)
		}
		tp := p.Child("deprecatedTopology")
		if len(e.DeprecatedTopology) > maxTopologyLabels {
			allErrs = append(allErrs, field.TooMany(tp, len(e.DeprecatedTopology), maxTopologyLabels))
		}
		allErrs = append(allErrs, validateLabelsAt(e.DeprecatedTopology, tp)...)
		if e.Hostname != nil {
			allErrs = append(allErrs, validateDNS1123Label(*e.Hostname, p.Child("hostname"))...)
		}
		if e.Hints != nil {
			hp := p.Child("hints", "forZones")
			if len(e.Hints.ForZones) > maxEndpointHints {
				allErrs = append(allErrs, field.TooMany(hp, len(e.Hints.ForZones), maxEndpointHints))
			}
			zones := sets.New[string]()
			for j, z := range e.Hints.ForZones {
				if zones.Has(z.Name) {
					allErrs = append(allErrs, field.Duplicate(hp.Index(j), z.Name))
				}
				zones.Insert(z.Name)
				for _, msg := range validation.IsValidLabelValue(z.Name) {
					allErrs = append(allErrs, field.Invalid(hp.Index(j).Child("name"), z.Name, msg))
				}
			}
		}
	}
	pp := field.NewPath("ports")
	if len(es.Ports) > maxEndpointSlicePorts {
		allErrs = append(allErrs, field.TooMany(pp, len(es.Ports), maxEndpointSlicePorts))
	}
	names := sets.New[string]()
	for i, port := range es.Ports {
		p := pp.Index(i)
		name := ptr.Deref(port.Name, "")
		if name != "" {
			allErrs = append(allErrs, validateDNS1123Label(name, p.Child("name"))...)
		}
		if names.Has(name) {
			allErrs = append(allErrs, field.Duplicate(p.Child("name"), port.Name))
		} else {
			names.Insert(name)
		}
		if port.Protocol == nil {
			allErrs = append(allErrs, field.Required(p.Child("protocol"), ""))
		} else if !supportedPortProtocols.Has(*port.Protocol) {
			allErrs = append(allErrs, field.NotSupported(p.Child("protocol"), *port.Protocol, sets.List(supportedPortProtocols)))
		}
		if port.AppProtocol != nil {
			allErrs = append(allErrs, validateQualifiedName(*port.AppProtocol, p.Child("appProtocol"))...)
		}
	}
	return allErrs
}

// validateSliceAddress checks an address of the slice's address type;
// addresses of unknown types are not checked.
func validateSliceAddress(t discoveryv1.AddressType, a string, fldPath *field.Path) field.ErrorList {
	switch t {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		ip := parseIPSloppy(a)
		want := "IPv4"
		if t == discoveryv1.AddressTypeIPv6 {
			want = "IPv6"
		}
		if ip == nil || (t == discoveryv1.AddressTypeIPv4) != (ip.To4() != nil) {
			return field.ErrorList{field.Invalid(fldPath, a, "must be a valid "+want+" address")}
		}
		return validateNonSpecialIP(a, fldPath)
	case discoveryv1.AddressTypeFQDN:
		return validation.IsFullyQualifiedDomainName(fldPath, a)
	}
	return nil
}
