package printers

import (
	"fmt"
	"strconv"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	discoveryv1beta1 "k8s.io/api/discovery/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var ingressPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Class", Type: "string", Description: "The name of the IngressClass resource that should be used for additional configuration"},
	{Name: "Hosts", Type: "string", Description: "Hosts that incoming requests are matched against before the ingress rule"},
	{Name: "Address", Type: "string", Description: "Address is a list containing ingress points for the load-balancer"},
	{Name: "Ports", Type: "string", Description: "Ports of TLS configurations that open"},
	ageColumn,
}, func(obj *networkingv1.Ingress, opts Options) ([]interface{}, error) {
	class := none
	if obj.Spec.IngressClassName != nil {
		class = *obj.Spec.IngressClassName
	}
	ing := obj.Status.LoadBalancer.Ingress
	ips, hosts := make([]string, len(ing)), make([]string, len(ing))
	for i := range ing {
		ips[i], hosts[i] = ing[i].IP, ing[i].Hostname
	}
	ports := "80"
	if len(obj.Spec.TLS) != 0 {
		ports = "80, 443"
	}
	return []interface{}{
		obj.Name, class, ingressHosts(obj.Spec.Rules), loadBalancerAddresses(ips, hosts, true), ports,
		age(obj.CreationTimestamp, opts.Now),
	}, nil
})

// ingressHosts lists up to three rule hosts, "*" when no rule names one.
func ingressHosts(rules []networkingv1.IngressRule) string {
	const max = 3
	var list []string
	more := false
	for _, rule := range rules {
		if len(list) == max {
			more = true
		}
		if !more && rule.Host != "" {
			list = append(list, rule.Host)
		}
	}
	if len(list) == 0 {
		return "*"
	}
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, len(rules)-max)
	}
	return ret
}

var ingressClassPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Controller", Type: "string", Description: "Controller that is responsible for handling this class"},
	{Name: "Parameters", Type: "string", Description: "A reference to a resource with additional parameters"},
	ageColumn,
}, func(obj *networkingv1.IngressClass, opts Options) ([]interface{}, error) {
	parameters := none
	if p := obj.Spec.Parameters; p != nil {
		parameters = p.Kind
		if p.APIGroup != nil {
			parameters += "." + *p.APIGroup
		}
		parameters += "/" + p.Name
	}
	return []interface{}{obj.Name, obj.Spec.Controller, parameters, age(obj.CreationTimestamp, opts.Now)}, nil
})

var networkPolicyPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Pod-Selector", Type: "string", Description: networkPolicySpec["podSelector"]},
	ageColumn,
}, func(obj *networkingv1.NetworkPolicy, opts Options) ([]interface{}, error) {
	return []interface{}{obj.Name, metav1.FormatLabelSelector(&obj.Spec.PodSelector), age(obj.CreationTimestamp, opts.Now)}, nil
})

var endpointSlicePrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "AddressType", Type: "string", Description: discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["addressType"]},
	{Name: "Ports", Type: "string", Description: discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["ports"]},
	{Name: "Endpoints", Type: "string", Description: discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["endpoints"]},
	ageColumn,
}, func(obj *discoveryv1.EndpointSlice, opts Options) ([]interface{}, error) {
	const max = 3

	var ports []string
	morePorts := false
	for _, p := range obj.Ports {
		if len(ports) < max {
			num := "*"
			if p.Port != nil {
				num = strconv.Itoa(int(*p.Port))
			} else if p.Name != nil {
				num = *p.Name
			}
			ports = append(ports, num)
		} else if len(ports) == max {
			morePorts = true
		}
	}

	var addrs []string
	moreAddrs := false
	addrCount := 0
	for _, ep := range obj.Endpoints {
		for _, a := range ep.Addresses {
			if len(addrs) < max {
				addrs = append(addrs, a)
			} else if len(addrs) == max {
				moreAddrs = true
			}
			addrCount++
		}
	}

	return []interface{}{
		obj.Name, string(obj.AddressType),
		listWithMore(ports, morePorts, len(obj.Ports), max),
		listWithMore(addrs, moreAddrs, addrCount, max),
		age(obj.CreationTimestamp, opts.Now),
	}, nil
})
