package strategy

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func init() {
	register(v1.SchemeGroupVersion.WithKind("Pod"), &kind[*v1.Pod]{
		defaults:       defaultPod,
		prepareCreate:  preparePodCreate,
		prepareUpdate:  preparePodUpdate,
		prepareStatus:  preparePodStatusUpdate,
		validate:       validatePodCreate,
		validateUpdate: validatePodUpdate,
		validateStatus: validatePodStatusUpdate,
		fields:         podFields,
	})
}

func resourceZero() resource.Quantity { return resource.Quantity{} }

var validateAnnotations = apivalidation.ValidateAnnotations

// preparePodCreate: a new pod is Pending with its QoS class computed, at
// generation 1; a pod with scheduling gates says why it is not scheduled.
func preparePodCreate(pod *v1.Pod) {
	addDefaultTolerations(pod)
	pod.Generation = 1
	pod.Status = v1.PodStatus{Phase: v1.PodPending, QOSClass: podQOSClass(pod)}
	if len(pod.Spec.SchedulingGates) > 0 {
		pod.Status.Conditions = append(pod.Status.Conditions, v1.PodCondition{
			Type:    v1.PodScheduled,
			Status:  v1.ConditionFalse,
			Reason:  v1.PodReasonSchedulingGated,
			Message: "Scheduling is blocked due to non-empty scheduling gates",
		})
	}
}

func preparePodUpdate(pod, old *v1.Pod) {
	addDefaultTolerations(pod)
	pod.Status = old.Status
	bumpGeneration(pod, !apiequality.Semantic.DeepEqual(pod.Spec, old.Spec))
}

// defaultTolerationSeconds is the tolerationSeconds of the tolerations
// addDefaultTolerations adds (upstream's --default-not-ready-toleration-seconds
// and --default-unreachable-toleration-seconds).
const defaultTolerationSeconds int64 = 300

// addDefaultTolerations is upstream's DefaultTolerationSeconds admission
// (on creates and updates): a pod that does not tolerate the
// node.kubernetes.io/not-ready or unreachable NoExecute taints tolerates
// them for 300 s, so that the node lifecycle controller's taints evict it
// five minutes after its node fails.
func addDefaultTolerations(pod *v1.Pod) {
	notReady, unreachable := false, false
	for _, t := range pod.Spec.Tolerations {
		if t.Effect == v1.TaintEffectNoExecute || t.Effect == "" {
			notReady = notReady || t.Key == v1.TaintNodeNotReady || t.Key == ""
			unreachable = unreachable || t.Key == v1.TaintNodeUnreachable || t.Key == ""
		}
	}
	for _, add := range []struct {
		key  string
		have bool
	}{{v1.TaintNodeNotReady, notReady}, {v1.TaintNodeUnreachable, unreachable}} {
		if !add.have {
			seconds := defaultTolerationSeconds
			pod.Spec.Tolerations = append(pod.Spec.Tolerations, v1.Toleration{
				Key: add.key, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute, TolerationSeconds: &seconds,
			})
		}
	}
}

// preparePodStatusUpdate keeps the spec and the owner references (old
// kubelets corrupt them), keeps a QoS class the kubelet left out and the
// observed generations a client cleared.
func preparePodStatusUpdate(pod, old *v1.Pod) {
	pod.Spec = old.Spec
	pod.DeletionTimestamp = old.DeletionTimestamp
	pod.OwnerReferences = old.OwnerReferences
	if pod.Status.QOSClass == "" {
		pod.Status.QOSClass = old.Status.QOSClass
	}
	if pod.Status.ObservedGeneration == 0 {
		pod.Status.ObservedGeneration = old.Status.ObservedGeneration
	}
	oldGens := map[v1.PodConditionType][]int64{}
	for _, c := range old.Status.Conditions {
		oldGens[c.Type] = append(oldGens[c.Type], c.ObservedGeneration)
	}
	for i, c := range pod.Status.Conditions {
		var g int64
		if gens := oldGens[c.Type]; len(gens) > 0 {
			g, oldGens[c.Type] = gens[0], gens[1:]
		}
		if c.ObservedGeneration == 0 {
			pod.Status.Conditions[i].ObservedGeneration = g
		}
	}
	mirrorPodStatusIPs(&pod.Status)
}

// podQOSClass computes the QoS class from cpu and memory requests and
// limits: Guaranteed when every container limits both and requests equal
// limits, BestEffort when nothing is set, Burstable otherwise.
func podQOSClass(pod *v1.Pod) v1.PodQOSClass {
	requests, limits := v1.ResourceList{}, v1.ResourceList{}
	guaranteed := true
	add := func(list v1.ResourceList, name v1.ResourceName, q resource.Quantity) {
		if cur, ok := list[name]; ok {
			cur.Add(q)
			list[name] = cur
		} else {
			list[name] = q.DeepCopy()
		}
	}
	supported := func(n v1.ResourceName) bool { return n == v1.ResourceCPU || n == v1.ResourceMemory }
	consider := func(r v1.ResourceRequirements) {
		for name, q := range r.Requests {
			if supported(name) && q.Cmp(zeroQuantity) == 1 {
				add(requests, name, q)
			}
		}
		found := sets.New[v1.ResourceName]()
		for name, q := range r.Limits {
			if supported(name) && q.Cmp(zeroQuantity) == 1 {
				found.Insert(name)
				add(limits, name, q)
			}
		}
		if !found.HasAll(v1.ResourceCPU, v1.ResourceMemory) {
			guaranteed = false
		}
	}
	if r := pod.Spec.Resources; r != nil && (hasCPUOrMemory(r.Requests) || hasCPUOrMemory(r.Limits)) {
		consider(*r)
	} else {
		for _, c := range pod.Spec.InitContainers {
			consider(c.Resources)
		}
		for _, c := range pod.Spec.Containers {
			consider(c.Resources)
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return v1.PodQOSBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
				break
			}
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}

func hasCPUOrMemory(list v1.ResourceList) bool {
	_, cpu := list[v1.ResourceCPU]
	_, mem := list[v1.ResourceMemory]
	return cpu || mem
}

// validatePodMetadataAndSpec is what a pod must meet on create and update.
func validatePodMetadataAndSpec(pod *v1.Pod) field.ErrorList {
	allErrs := validateObjectMeta(&pod.ObjectMeta, true, nameIsDNSSubdomain)
	allErrs = append(allErrs, validatePodSpecificAnnotations(pod.Annotations, &pod.Spec, metadataPath.Child("annotations"))...)
	allErrs = append(allErrs, validatePodSpec(&pod.Spec, &pod.ObjectMeta, specPath, podOptions{resourceIsPod: true})...)
	if pod.Spec.ServiceAccountName == "" {
		for vi, vol := range pod.Spec.Volumes {
			if vol.Projected == nil {
				continue
			}
			for si, src := range vol.Projected.Sources {
				if src.ServiceAccountToken != nil {
					allErrs = append(allErrs, field.Forbidden(specPath.Child("volumes").Index(vi).Child("projected", "sources").Index(si).Child("serviceAccountToken"),
						"must not be specified when serviceAccountName is not set"))
				}
			}
		}
	}
	for i := range pod.Spec.Containers {
		allErrs = append(allErrs, validateContainerOnlyForPod(&pod.Spec.Containers[i], specPath.Child("containers").Index(i))...)
	}
	for i := range pod.Spec.InitContainers {
		allErrs = append(allErrs, validateContainerOnlyForPod(&pod.Spec.InitContainers[i], specPath.Child("initContainers").Index(i))...)
	}
	return allErrs
}

func validatePodCreate(pod *v1.Pod) field.ErrorList {
	allErrs := validatePodMetadataAndSpec(pod)
	if len(pod.Spec.EphemeralContainers) > 0 {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("ephemeralContainers"), "cannot be set on create"))
	}
	if pod.Spec.NodeName != "" && len(pod.Spec.SchedulingGates) != 0 {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("nodeName"), "cannot be set until all schedulingGates have been cleared"))
	}
	return allErrs
}

const (
	mirrorPodAnnotation     = v1.MirrorPodAnnotationKey
	podDeletionCostKey      = "controller.kubernetes.io/pod-deletion-cost"
	seccompPodAnnotation    = "seccomp.security.alpha.kubernetes.io/pod"
	seccompContainerPrefix  = "container.seccomp.security.alpha.kubernetes.io/"
	appArmorContainerPrefix = "container.apparmor.security.beta.kubernetes.io/"
)

// validatePodSpecificAnnotations checks the annotations kubelet and the
// controllers read: mirror pods, pod deletion cost, legacy seccomp and
// AppArmor profiles.
func validatePodSpecificAnnotations(annotations map[string]string, spec *v1.PodSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if value, ok := annotations[mirrorPodAnnotation]; ok && spec.NodeName == "" {
		allErrs = append(allErrs, field.Invalid(fldPath.Key(mirrorPodAnnotation), value, "must set spec.nodeName if mirror pod annotation is set"))
	}
	if value, ok := annotations[podDeletionCostKey]; ok {
		if _, err := strconv.ParseInt(value, 10, 32); err != nil || strings.TrimSpace(value) != value {
			allErrs = append(allErrs, field.Invalid(fldPath.Key(podDeletionCostKey), value, "must be a 32bit integer"))
		}
	}
	for _, k := range sortedKeys(annotations) {
		value := annotations[k]
		switch {
		case k == seccompPodAnnotation || strings.HasPrefix(k, seccompContainerPrefix):
			allErrs = append(allErrs, validateSeccompProfileAnnotation(value, fldPath.Child(k))...)
		case strings.HasPrefix(k, appArmorContainerPrefix):
			name := strings.TrimPrefix(k, appArmorContainerPrefix)
			found := false
			visitContainers(spec, specPath, func(c *v1.Container, _ *field.Path) {
				found = found || c.Name == name
			})
			if !found {
				allErrs = append(allErrs, field.Invalid(fldPath.Key(k), name, "container not found"))
			}
			if value != "" && value != "runtime/default" && value != "unconfined" && !strings.HasPrefix(value, "localhost/") {
				allErrs = append(allErrs, field.Invalid(fldPath.Key(k), value, fmt.Sprintf("invalid AppArmor profile name: %q", value)))
			}
		}
	}
	return allErrs
}

func validateSeccompProfileAnnotation(p string, fldPath *field.Path) field.ErrorList {
	switch {
	case p == "runtime/default", p == "docker/default", p == "unconfined":
		return nil
	case strings.HasPrefix(p, "localhost/"):
		return validateLocalDescendingPath(strings.TrimPrefix(p, "localhost/"), fldPath)
	}
	return field.ErrorList{field.Invalid(fldPath, p, "must be a valid seccomp profile")}
}

// updatablePodSpecFields is how upstream lists what a pod update may change.
var updatablePodSpecFields = []string{
	"`spec.containers[*].image`",
	"`spec.initContainers[*].image`",
	"`spec.activeDeadlineSeconds`",
	"`spec.tolerations` (only additions to existing tolerations)",
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
}

// validatePodUpdate allows a pod update to change only images, the active
// deadline (down), tolerations (additions), scheduling gates (removals) and,
// while the pod is gated, node selector and node affinity additions.
func validatePodUpdate(pod, old *v1.Pod) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&pod.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validatePodMetadataAndSpec(pod)...)
	allErrs = append(allErrs, validatePodSpecificAnnotationUpdates(pod, old, metadataPath.Child("annotations"))...)

	errs, stop := validateContainerUpdates(pod.Spec.Containers, old.Spec.Containers, specPath.Child("containers"))
	allErrs = append(allErrs, errs...)
	if stop {
		return allErrs
	}
	errs, stop = validateContainerUpdates(pod.Spec.InitContainers, old.Spec.InitContainers, specPath.Child("initContainers"))
	allErrs = append(allErrs, errs...)
	if stop {
		return allErrs
	}

	adsPath := specPath.Child("activeDeadlineSeconds")
	if pod.Spec.ActiveDeadlineSeconds != nil {
		n := *pod.Spec.ActiveDeadlineSeconds
		if n < 0 || n > math.MaxInt32 {
			return append(allErrs, field.Invalid(adsPath, n, validation.InclusiveRangeError(0, math.MaxInt32)))
		}
		if old.Spec.ActiveDeadlineSeconds != nil && *old.Spec.ActiveDeadlineSeconds < n {
			return append(allErrs, field.Invalid(adsPath, n, "must be less than or equal to previous value"))
		}
	} else if old.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Invalid(adsPath, pod.Spec.ActiveDeadlineSeconds, "must not update from a positive integer to nil value"))
	}

	allErrs = append(allErrs, validateOnlyAddedTolerations(pod.Spec.Tolerations, old.Spec.Tolerations, specPath.Child("tolerations"))...)
	allErrs = append(allErrs, validateOnlyDeletedSchedulingGates(pod.Spec.SchedulingGates, old.Spec.SchedulingGates, specPath.Child("schedulingGates"))...)

	if apiequality.Semantic.DeepEqual(pod.Spec, old.Spec) {
		return allErrs
	}
	munged := *pod.Spec.DeepCopy()
	for i := range munged.Containers {
		munged.Containers[i].Image = old.Spec.Containers[i].Image
	}
	for i := range munged.InitContainers {
		munged.InitContainers[i].Image = old.Spec.InitContainers[i].Image
	}
	munged.ActiveDeadlineSeconds = old.Spec.ActiveDeadlineSeconds
	munged.SchedulingGates = old.Spec.SchedulingGates
	munged.Tolerations = old.Spec.Tolerations
	if o := old.Spec.TerminationGracePeriodSeconds; o != nil && *o < 0 &&
		munged.TerminationGracePeriodSeconds != nil && *munged.TerminationGracePeriodSeconds == 1 {
		munged.TerminationGracePeriodSeconds = o
	}
	if len(old.Spec.SchedulingGates) > 0 {
		// A gated pod may get node selector and node affinity additions.
		if !apiequality.Semantic.DeepEqual(munged.NodeSelector, old.Spec.NodeSelector) {
			for k, v := range old.Spec.NodeSelector {
				if nv, ok := munged.NodeSelector[k]; !ok || nv != v {
					allErrs = append(allErrs, field.Invalid(specPath.Child("nodeSelector"), munged.NodeSelector, "only additions to spec.nodeSelector are allowed (no mutations or deletions)"))
					break
				}
			}
			munged.NodeSelector = old.Spec.NodeSelector
		}
		var oldNA, newNA *v1.NodeAffinity
		if old.Spec.Affinity != nil {
			oldNA = old.Spec.Affinity.NodeAffinity
		}
		if munged.Affinity != nil {
			newNA = munged.Affinity.NodeAffinity
		}
		if !apiequality.Semantic.DeepEqual(oldNA, newNA) {
			switch {
			case munged.Affinity == nil && oldNA == nil:
			case munged.Affinity == nil:
				munged.Affinity = &v1.Affinity{NodeAffinity: oldNA}
			case old.Spec.Affinity == nil && munged.Affinity.PodAffinity == nil && munged.Affinity.PodAntiAffinity == nil:
				munged.Affinity = nil
			default:
				munged.Affinity.NodeAffinity = oldNA
			}
		}
	}
	if !apiequality.Semantic.DeepEqual(munged, old.Spec) {
		allErrs = append(allErrs, field.Forbidden(specPath, fmt.Sprintf("pod updates may not change fields other than %s\n%v",
			strings.Join(updatablePodSpecFields, ","), specDiff(old.Spec, munged))))
	}
	return allErrs
}

func validateContainerUpdates(newC, oldC []v1.Container, fldPath *field.Path) (field.ErrorList, bool) {
	if len(newC) != len(oldC) {
		return field.ErrorList{field.Forbidden(fldPath, "pod updates may not add or remove containers")}, true
	}
	var allErrs field.ErrorList
	for i, c := range newC {
		if c.Image == "" {
			allErrs = append(allErrs, field.Required(fldPath.Index(i).Child("image"), ""))
		}
		if len(strings.TrimSpace(c.Image)) != len(c.Image) {
			allErrs = append(allErrs, field.Invalid(fldPath.Index(i).Child("image"), c.Image, "must not have leading or trailing whitespace"))
		}
	}
	return allErrs, false
}

func validateOnlyAddedTolerations(newT, oldT []v1.Toleration, fldPath *field.Path) field.ErrorList {
	for _, o := range oldT {
		found := false
		for _, n := range newT {
			c := o
			c.TolerationSeconds = n.TolerationSeconds
			if apiequality.Semantic.DeepEqual(c, n) {
				found = true
				break
			}
		}
		if !found {
			return field.ErrorList{field.Forbidden(fldPath, "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return validateTolerations(newT, fldPath)
}

func validateOnlyDeletedSchedulingGates(newG, oldG []v1.PodSchedulingGate, fldPath *field.Path) field.ErrorList {
	old := sets.New[string]()
	for _, g := range oldG {
		old.Insert(g.Name)
	}
	var allErrs field.ErrorList
	for i, g := range newG {
		if !old.Has(g.Name) {
			allErrs = append(allErrs, field.Forbidden(fldPath.Index(i).Child("name"), fmt.Sprintf("only deletion is allowed, but found new scheduling gate '%s'", g.Name)))
		}
	}
	return allErrs
}

// validatePodSpecificAnnotationUpdates forbids adding, changing or removing
// the mirror-pod and AppArmor annotations.
func validatePodSpecificAnnotationUpdates(pod, old *v1.Pod, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, k := range sortedKeys(old.Annotations) {
		if nv, ok := pod.Annotations[k]; ok && nv == old.Annotations[k] {
			continue
		}
		if strings.HasPrefix(k, appArmorContainerPrefix) {
			allErrs = append(allErrs, field.Forbidden(fldPath.Key(k), "may not remove or update AppArmor annotations"))
		}
		if k == mirrorPodAnnotation {
			allErrs = append(allErrs, field.Forbidden(fldPath.Key(k), "may not remove or update mirror pod annotation"))
		}
	}
	for _, k := range sortedKeys(pod.Annotations) {
		if _, ok := old.Annotations[k]; ok {
			continue
		}
		if strings.HasPrefix(k, appArmorContainerPrefix) {
			allErrs = append(allErrs, field.Forbidden(fldPath.Key(k), "may not add AppArmor annotations"))
		}
		if k == mirrorPodAnnotation {
			allErrs = append(allErrs, field.Forbidden(fldPath.Key(k), "may not add mirror pod annotation"))
		}
	}
	return allErrs
}

// validatePodStatusUpdate checks a status update (what kubelet and the
// scheduler write).
func validatePodStatusUpdate(pod, old *v1.Pod) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&pod.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validatePodSpecificAnnotationUpdates(pod, old, metadataPath.Child("annotations"))...)
	system := sets.New(v1.PodScheduled, v1.PodReady, v1.PodInitialized)
	for i, c := range pod.Status.Conditions {
		if !system.Has(c.Type) {
			allErrs = append(allErrs, validateQualifiedName(string(c.Type), metadataPath.Child("conditions").Index(i).Child("Type"))...)
		}
	}
	if pod.Spec.NodeName != old.Spec.NodeName {
		allErrs = append(allErrs, field.Forbidden(statusPath.Child("nodeName"), "may not be changed directly"))
	}
	if n := pod.Status.NominatedNodeName; n != old.Status.NominatedNodeName && n != "" {
		allErrs = append(allErrs, validateName(n, nameIsDNSSubdomain, statusPath.Child("nominatedNodeName"))...)
	}
	allErrs = append(allErrs, validateImmutable(pod.Status.QOSClass, old.Status.QOSClass, statusPath.Child("qosClass"))...)
	allErrs = append(allErrs, validateContainerStateTransition(pod.Status.ContainerStatuses, old.Status.ContainerStatuses, statusPath.Child("containerStatuses"), old.Spec.RestartPolicy, nil)...)
	allErrs = append(allErrs, validateContainerStateTransition(pod.Status.InitContainerStatuses, old.Status.InitContainerStatuses, statusPath.Child("initContainerStatuses"), old.Spec.RestartPolicy, old.Spec.InitContainers)...)
	allErrs = append(allErrs, validateContainerStateTransition(pod.Status.EphemeralContainerStatuses, old.Status.EphemeralContainerStatuses, statusPath.Child("ephemeralContainerStatuses"), v1.RestartPolicyNever, nil)...)
	ips := make([]string, 0, len(pod.Status.PodIPs))
	for _, ip := range pod.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	allErrs = append(allErrs, validateIPList(ips, statusPath.Child("podIPs"))...)
	if len(pod.Status.HostIPs) > 0 {
		hips := make([]string, 0, len(pod.Status.HostIPs))
		for _, ip := range pod.Status.HostIPs {
			hips = append(hips, ip.IP)
		}
		if pod.Status.HostIP != hips[0] {
			allErrs = append(allErrs, field.Invalid(statusPath.Child("hostIPs").Index(0).Child("ip"), hips[0], "must be equal to `hostIP`"))
		}
		allErrs = append(allErrs, validateIPList(hips, statusPath.Child("hostIPs"))...)
	}
	return allErrs
}

// validateIPList checks a pod's (or host's) IPs: valid, at most one per
// family, no duplicates.
func validateIPList(ips []string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for i, ip := range ips {
		allErrs = append(allErrs, validation.IsValidIP(fldPath.Index(i), ip)...)
	}
	if len(allErrs) > 0 || len(ips) < 2 {
		return allErrs
	}
	if len(ips) > 2 || isIPv6String(ips[0]) == isIPv6String(ips[1]) {
		allErrs = append(allErrs, field.Invalid(fldPath, ips, "may specify no more than one IP for each IP family"))
	}
	seen := sets.New[string]()
	for i, ip := range ips {
		if seen.Has(ip) {
			allErrs = append(allErrs, field.Duplicate(fldPath.Index(i), ip))
		}
		seen.Insert(ip)
	}
	return allErrs
}

// validateContainerStateTransition: a container that terminated and may not
// restart stays terminated. initContainers, when given, lets restartable
// (sidecar) init containers restart.
func validateContainerStateTransition(newS, oldS []v1.ContainerStatus, fldPath *field.Path, policy v1.RestartPolicy, initContainers []v1.Container) field.ErrorList {
	if policy == v1.RestartPolicyAlways {
		return nil
	}
	var allErrs field.ErrorList
	for i, o := range oldS {
		if o.State.Terminated == nil {
			continue
		}
		if o.State.Terminated.ExitCode != 0 && policy == v1.RestartPolicyOnFailure {
			continue
		}
		restartable := false
		for _, c := range initContainers {
			if c.Name == o.Name {
				restartable = c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
				break
			}
		}
		if restartable {
			continue
		}
		for _, n := range newS {
			if n.Name == o.Name && n.State.Terminated == nil {
				allErrs = append(allErrs, field.Forbidden(fldPath.Index(i).Child("state"), "may not be transitioned to non-terminated state"))
			}
		}
	}
	return allErrs
}

// podFields are the field selectors of pods.
func podFields(pod *v1.Pod, set fields.Set) {
	set["spec.nodeName"] = pod.Spec.NodeName
	set["spec.restartPolicy"] = string(pod.Spec.RestartPolicy)
	set["spec.schedulerName"] = pod.Spec.SchedulerName
	set["spec.serviceAccountName"] = pod.Spec.ServiceAccountName
	set["spec.hostNetwork"] = strconv.FormatBool(pod.Spec.HostNetwork)
	set["status.phase"] = string(pod.Status.Phase)
	podIP := ""
	if len(pod.Status.PodIPs) > 0 {
		podIP = pod.Status.PodIPs[0].IP
	} else {
		podIP = pod.Status.PodIP
	}
	set["status.podIP"] = podIP
	set["status.nominatedNodeName"] = pod.Status.NominatedNodeName
}
