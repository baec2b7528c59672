package strategy

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

var podGVK = v1.SchemeGroupVersion.WithKind("Pod")

// kubectlRunPod is what `kubectl run web --image=nginx` sends.
func kubectlRunPod() *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"run": "web"}},
		Spec: v1.PodSpec{
			Containers: []v1.Container{{Name: "web", Image: "nginx"}},
		},
	}
}

func TestPodDefaults(t *testing.T) {
	pod := kubectlRunPod()
	pod.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80}}
	pod.Spec.Containers[0].Resources.Limits = v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m")}
	pod.Spec.Containers[0].LivenessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Port: intstr.FromInt32(80)}}}
	pod.Spec.Containers[0].Env = []v1.EnvVar{{Name: "NODE", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}}
	pod.Spec.Volumes = []v1.Volume{{Name: "scratch"}, {Name: "conf", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "s"}}}}
	pod.Spec.DeprecatedServiceAccount = "builder"
	mustFor(t, podGVK).Default(pod)

	spec := pod.Spec
	c := spec.Containers[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"restartPolicy", spec.RestartPolicy, v1.RestartPolicyAlways},
		{"dnsPolicy", spec.DNSPolicy, v1.DNSClusterFirst},
		{"terminationGracePeriodSeconds", spec.TerminationGracePeriodSeconds, ptr.To[int64](30)},
		{"schedulerName", spec.SchedulerName, "default-scheduler"},
		{"securityContext", spec.SecurityContext, &v1.PodSecurityContext{}},
		{"enableServiceLinks", spec.EnableServiceLinks, ptr.To(true)},
		{"serviceAccountName", spec.ServiceAccountName, "builder"},
		{"serviceAccount", spec.DeprecatedServiceAccount, "builder"},
		{"terminationMessagePath", c.TerminationMessagePath, "/dev/termination-log"},
		{"terminationMessagePolicy", c.TerminationMessagePolicy, v1.TerminationMessageReadFile},
		{"imagePullPolicy", c.ImagePullPolicy, v1.PullAlways},
		{"port protocol", c.Ports[0].Protocol, v1.ProtocolTCP},
		{"requests from limits", c.Resources.Requests[v1.ResourceCPU], resource.MustParse("500m")},
		{"probe timeoutSeconds", c.LivenessProbe.TimeoutSeconds, int32(1)},
		{"probe periodSeconds", c.LivenessProbe.PeriodSeconds, int32(10)},
		{"probe successThreshold", c.LivenessProbe.SuccessThreshold, int32(1)},
		{"probe failureThreshold", c.LivenessProbe.FailureThreshold, int32(3)},
		{"httpGet path", c.LivenessProbe.HTTPGet.Path, "/"},
		{"httpGet scheme", c.LivenessProbe.HTTPGet.Scheme, v1.URISchemeHTTP},
		{"fieldRef apiVersion", c.Env[0].ValueFrom.FieldRef.APIVersion, "v1"},
		{"volume without source", spec.Volumes[0].VolumeSource, v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		{"secret defaultMode", spec.Volumes[1].Secret.DefaultMode, ptr.To[int32](0644)},
	}
	for _, c := range checks {
		if !apiequality.Semantic.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}

	// Defaults never override what is set.
	set := kubectlRunPod()
	set.Spec.RestartPolicy = v1.RestartPolicyNever
	set.Spec.Containers[0].ImagePullPolicy = v1.PullNever
	mustFor(t, podGVK).Default(set)
	if set.Spec.RestartPolicy != v1.RestartPolicyNever || set.Spec.Containers[0].ImagePullPolicy != v1.PullNever {
		t.Errorf("defaults overrode set values: %v, %v", set.Spec.RestartPolicy, set.Spec.Containers[0].ImagePullPolicy)
	}
}

func TestPodHostNetworkDefaultsHostPorts(t *testing.T) {
	pod := kubectlRunPod()
	pod.Spec.HostNetwork = true
	pod.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 8080}}
	checkErrs(t, create(t, podGVK, pod))
	if hp := pod.Spec.Containers[0].Ports[0].HostPort; hp != 8080 {
		t.Errorf("hostPort = %d, want 8080", hp)
	}
}

func TestImagePullPolicy(t *testing.T) {
	tests := []struct {
		image string
		want  v1.PullPolicy
	}{
		{"nginx", v1.PullAlways},
		{"nginx:latest", v1.PullAlways},
		{"nginx:1.27", v1.PullIfNotPresent},
		{"docker.io/library/nginx", v1.PullAlways},
		{"registry.local:5000/team/app", v1.PullAlways},
		{"registry.local:5000/team/app:v2", v1.PullIfNotPresent},
		{"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", v1.PullIfNotPresent},
		{"nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", v1.PullAlways},
		{"NGINX", v1.PullIfNotPresent}, // does not parse
		{"", v1.PullIfNotPresent},
	}
	for _, tt := range tests {
		if got := defaultPullPolicy(tt.image); got != tt.want {
			t.Errorf("defaultPullPolicy(%q) = %s, want %s", tt.image, got, tt.want)
		}
	}
}

func TestPodValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1.Pod)
		want   []want
	}{
		{"kubectl run", func(*v1.Pod) {}, nil},
		{"typical pod", func(p *v1.Pod) {
			c := &p.Spec.Containers[0]
			c.Ports = []v1.ContainerPort{{Name: "http", ContainerPort: 80}}
			c.Env = []v1.EnvVar{{Name: "MODE", Value: "prod"}, {Name: "my.var-1", Value: "x"}}
			c.Resources = v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("128Mi")},
			}
			c.VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
			c.ReadinessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Port: intstr.FromString("http")}}}
			p.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
			p.Spec.InitContainers = []v1.Container{{Name: "init", Image: "busybox", Command: []string{"true"}}}
		}, nil},
		{"bad name", func(p *v1.Pod) { p.Name = "Web_1" }, []want{inv("metadata.name")}},
		{"no containers", func(p *v1.Pod) { p.Spec.Containers = nil }, []want{req("spec.containers")}},
		{"bad container name", func(p *v1.Pod) { p.Spec.Containers[0].Name = "Web" }, []want{invd("spec.containers[0].name", "RFC 1123 label")}},
		{"no container name", func(p *v1.Pod) { p.Spec.Containers[0].Name = "" }, []want{req("spec.containers[0].name")}},
		{"duplicate containers", func(p *v1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "web", Image: "redis"})
		}, []want{dup("spec.containers[1].name")}},
		{"init container named like a container", func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "web", Image: "busybox"}}
		}, []want{dup("spec.initContainers[0].name")}},
		{"no image", func(p *v1.Pod) { p.Spec.Containers[0].Image = "" }, []want{req("spec.containers[0].image")}},
		{"image with blanks", func(p *v1.Pod) { p.Spec.Containers[0].Image = "nginx " }, []want{invd("spec.containers[0].image", "must not have leading or trailing whitespace")}},
		{"port 0", func(p *v1.Pod) { p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 0}} }, []want{req("spec.containers[0].ports[0].containerPort")}},
		{"port too big", func(p *v1.Pod) { p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 70000}} },
			[]want{invd("spec.containers[0].ports[0].containerPort", "must be between 1 and 65535, inclusive")}},
		{"bad protocol", func(p *v1.Pod) {
			p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, Protocol: "HTTP"}}
		}, []want{unsup("spec.containers[0].ports[0].protocol")}},
		{"duplicate port names", func(p *v1.Pod) {
			p.Spec.Containers[0].Ports = []v1.ContainerPort{{Name: "http", ContainerPort: 80}, {Name: "http", ContainerPort: 81}}
		}, []want{dup("spec.containers[0].ports[1].name")}},
		{"bad port name", func(p *v1.Pod) {
			p.Spec.Containers[0].Ports = []v1.ContainerPort{{Name: "HTTP", ContainerPort: 80}}
		}, []want{
			invd("spec.containers[0].ports[0].name", "must contain only alpha-numeric characters"),
			invd("spec.containers[0].ports[0].name", "must contain at least one letter"),
		}},
		{"host port conflict", func(p *v1.Pod) {
			p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: 8080}, {ContainerPort: 81, HostPort: 8080}}
		}, []want{dup("spec.containers[0].ports[1].hostPort")}},
		{"bad env name", func(p *v1.Pod) { p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "A=B"}} }, []want{inv("spec.containers[0].env[0].name")}},
		{"no env name", func(p *v1.Pod) { p.Spec.Containers[0].Env = []v1.EnvVar{{Value: "x"}} }, []want{req("spec.containers[0].env[0].name")}},
		{"env value and valueFrom", func(p *v1.Pod) {
			p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "A", Value: "x", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "s"}, Key: "k"}}}}
		}, []want{invd("spec.containers[0].env[0].valueFrom", "may not be specified when `value` is not empty")}},
		{"bad downward API field", func(p *v1.Pod) {
			p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "A", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.bogus"}}}}
		}, []want{invd("spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", "error converting fieldPath: field label not supported: spec.bogus")}},
		{"downward API field not for env", func(p *v1.Pod) {
			p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "A", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.phase"}}}}
		}, []want{unsup("spec.containers[0].env[0].valueFrom.fieldRef.fieldPath")}},
		{"downward API label", func(p *v1.Pod) {
			p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "A", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}}}
		}, nil},
		{"duplicate volumes", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "v"}, {Name: "v"}}
		}, []want{dup("spec.volumes[1].name")}},
		{"two volume types", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "v", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}, HostPath: &v1.HostPathVolumeSource{Path: "/tmp"}}}}
		}, []want{forbd("spec.volumes[0].hostPath", "may not specify more than 1 volume type")}},
		{"configMap volume without name", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "v", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{}}}}
		}, []want{req("spec.volumes[0].configMap.name")}},
		{"mount of a missing volume", func(p *v1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}, []want{notFound("spec.containers[0].volumeMounts[0].name")}},
		{"mount path twice", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "a"}, {Name: "b"}}
			p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "a", MountPath: "/d"}, {Name: "b", MountPath: "/d"}}
		}, []want{invd("spec.containers[0].volumeMounts[1].mountPath", "must be unique")}},
		{"bad restartPolicy", func(p *v1.Pod) { p.Spec.RestartPolicy = "Sometimes" }, []want{unsup("spec.restartPolicy")}},
		{"bad dnsPolicy", func(p *v1.Pod) { p.Spec.DNSPolicy = "Google" }, []want{unsup("spec.dnsPolicy")}},
		{"dnsPolicy None without config", func(p *v1.Pod) { p.Spec.DNSPolicy = v1.DNSNone }, []want{req("spec.dnsConfig")}},
		{"requests above limits", func(p *v1.Pod) {
			p.Spec.Containers[0].Resources = v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("1Gi")},
				Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("512Mi")},
			}
		}, []want{invd("spec.containers[0].resources.requests", "must be less than or equal to memory limit of 512Mi")}},
		{"negative request", func(p *v1.Pod) {
			p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse("-1")}
		}, []want{invd("spec.containers[0].resources.requests[cpu]", "must be greater than or equal to 0")}},
		{"unknown resource", func(p *v1.Pod) {
			p.Spec.Containers[0].Resources.Requests = v1.ResourceList{"gpu": resource.MustParse("1")}
		}, []want{
			invd("spec.containers[0].resources.requests[gpu]", "must be a standard resource type or fully qualified"),
			invd("spec.containers[0].resources.requests[gpu]", "must be a standard resource for containers"),
		}},
		{"probe without handler", func(p *v1.Pod) { p.Spec.Containers[0].LivenessProbe = &v1.Probe{} },
			[]want{reqd("spec.containers[0].livenessProbe", "must specify a handler type")}},
		{"probe with two handlers", func(p *v1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{
				Exec:      &v1.ExecAction{Command: []string{"true"}},
				TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(80)},
			}}
		}, []want{forbd("spec.containers[0].readinessProbe.tcpSocket", "may not specify more than 1 handler type")}},
		{"liveness successThreshold", func(p *v1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(80)}}, SuccessThreshold: 2}
		}, []want{invd("spec.containers[0].livenessProbe.successThreshold", "must be 1")}},
		{"probe on a plain init container", func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "init", Image: "busybox", ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}}}}
		}, []want{forb("spec.initContainers[0].readinessProbe")}},
		{"bad toleration", func(p *v1.Pod) {
			p.Spec.Tolerations = []v1.Toleration{{Operator: v1.TolerationOpEqual, Value: "x"}}
		}, []want{inv("spec.tolerations[0].operator")}},
		{"bad nodeSelector", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "s s d"} }, []want{inv("spec.nodeSelector")}},
		{"activeDeadlineSeconds 0", func(p *v1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](0) }, []want{inv("spec.activeDeadlineSeconds")}},
		{"ephemeral containers on create", func(p *v1.Pod) {
			p.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
		}, []want{forbd("spec.ephemeralContainers", "cannot be set on create")}},
		{"bad serviceAccountName", func(p *v1.Pod) { p.Spec.ServiceAccountName = "Builder" }, []want{inv("spec.serviceAccountName")}},
		{"bad runAsUser", func(p *v1.Pod) {
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{RunAsUser: ptr.To[int64](-1)}
		}, []want{inv("spec.containers[0].securityContext.runAsUser")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := kubectlRunPod()
			tt.mutate(pod)
			checkErrs(t, create(t, podGVK, pod), tt.want...)
		})
	}
}

func TestPodCreateResetsStatus(t *testing.T) {
	pod := kubectlRunPod()
	pod.Generation = 7
	pod.Status = v1.PodStatus{Phase: v1.PodRunning, PodIP: "10.0.0.9", Message: "hi"}
	checkErrs(t, create(t, podGVK, pod))
	if pod.Generation != 1 {
		t.Errorf("generation = %d, want 1", pod.Generation)
	}
	want := v1.PodStatus{Phase: v1.PodPending, QOSClass: v1.PodQOSBestEffort}
	if !apiequality.Semantic.DeepEqual(pod.Status, want) {
		t.Errorf("status = %+v, want %+v", pod.Status, want)
	}
}

func TestPodSchedulingGatedCondition(t *testing.T) {
	pod := kubectlRunPod()
	pod.Spec.SchedulingGates = []v1.PodSchedulingGate{{Name: "example.com/wait"}}
	checkErrs(t, create(t, podGVK, pod))
	if len(pod.Status.Conditions) != 1 || pod.Status.Conditions[0].Reason != v1.PodReasonSchedulingGated {
		t.Errorf("conditions = %+v", pod.Status.Conditions)
	}
}

func TestPodQOSClass(t *testing.T) {
	rl := func(cpu, mem string) v1.ResourceList {
		l := v1.ResourceList{}
		if cpu != "" {
			l[v1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[v1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	tests := []struct {
		name     string
		requests v1.ResourceList
		limits   v1.ResourceList
		want     v1.PodQOSClass
	}{
		{"nothing", nil, nil, v1.PodQOSBestEffort},
		{"requests only", rl("100m", ""), nil, v1.PodQOSBurstable},
		{"limits equal requests", rl("1", "1Gi"), rl("1", "1Gi"), v1.PodQOSGuaranteed},
		{"limits only (requests defaulted)", nil, rl("1", "1Gi"), v1.PodQOSGuaranteed},
		{"cpu limit only", nil, rl("1", ""), v1.PodQOSBurstable},
		{"requests below limits", rl("500m", "1Gi"), rl("1", "1Gi"), v1.PodQOSBurstable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := kubectlRunPod()
			pod.Spec.Containers[0].Resources = v1.ResourceRequirements{Requests: tt.requests, Limits: tt.limits}
			checkErrs(t, create(t, podGVK, pod))
			if pod.Status.QOSClass != tt.want {
				t.Errorf("QoS class = %s, want %s", pod.Status.QOSClass, tt.want)
			}
		})
	}
}

// storedPod is a pod as the server stored it after a create.
func storedPod(t *testing.T) *v1.Pod {
	pod := kubectlRunPod()
	checkErrs(t, create(t, podGVK, pod))
	pod.ResourceVersion = "10"
	pod.UID = "uid-1"
	return pod
}

func TestPodUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1.Pod)
		want   []want
		bumped bool
	}{
		{"labels only", func(p *v1.Pod) { p.Labels["tier"] = "front" }, nil, false},
		{"new image", func(p *v1.Pod) { p.Spec.Containers[0].Image = "nginx:1.27" }, nil, true},
		{"added toleration", func(p *v1.Pod) {
			p.Spec.Tolerations = []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}
		}, nil, true},
		{"active deadline set", func(p *v1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](60) }, nil, true},
		{"port added", func(p *v1.Pod) {
			p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, Protocol: v1.ProtocolTCP}}
		}, []want{forbd("spec", "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")}, true},
		{"container added", func(p *v1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "sidecar", Image: "busybox"})
		}, []want{forbd("spec.containers", "pod updates may not add or remove containers")}, true},
		{"image removed", func(p *v1.Pod) { p.Spec.Containers[0].Image = "" }, []want{req("spec.containers[0].image"), req("spec.containers[0].image")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := storedPod(t)
			pod := old.DeepCopy()
			pod.Status.Phase = v1.PodSucceeded // a client may not change status here
			tt.mutate(pod)
			checkErrs(t, update(t, podGVK, pod, old), tt.want...)
			wantGen := old.Generation
			if tt.bumped {
				wantGen++
			}
			if pod.Generation != wantGen {
				t.Errorf("generation = %d, want %d", pod.Generation, wantGen)
			}
			if pod.Status.Phase != v1.PodPending {
				t.Errorf("status.phase = %s: the update changed status", pod.Status.Phase)
			}
		})
	}
}

func TestPodUpdateMessageShowsTheChange(t *testing.T) {
	old := storedPod(t)
	pod := old.DeepCopy()
	pod.Spec.RestartPolicy = v1.RestartPolicyNever
	errs := update(t, podGVK, pod, old)
	if len(errs) != 1 || !strings.Contains(errs[0].Detail, `- "restartPolicy": "Always"`) || !strings.Contains(errs[0].Detail, `+ "restartPolicy": "Never"`) {
		t.Errorf("errors = %v, want one whose detail shows the restartPolicy change", errs)
	}
}

func TestPodStatusUpdate(t *testing.T) {
	s := mustFor(t, podGVK)
	old := storedPod(t)
	pod := old.DeepCopy()
	pod.Spec.Containers[0].Image = "redis" // ignored on /status
	pod.Labels["x"] = "y"                  // metadata may change
	pod.Status.Phase = v1.PodRunning
	pod.Status.PodIP = "10.244.0.5"
	pod.Status.QOSClass = ""
	s.PrepareForStatusUpdate(pod, old)
	checkErrs(t, s.ValidateStatusUpdate(pod, old))
	if pod.Spec.Containers[0].Image != "nginx" {
		t.Errorf("status update changed the spec: image %s", pod.Spec.Containers[0].Image)
	}
	if pod.Labels["x"] != "y" || pod.Status.Phase != v1.PodRunning || pod.Status.QOSClass != v1.PodQOSBestEffort {
		t.Errorf("status update lost changes: labels %v, status %+v", pod.Labels, pod.Status)
	}
	if len(pod.Status.PodIPs) != 1 || pod.Status.PodIPs[0].IP != "10.244.0.5" {
		t.Errorf("podIPs = %v, want the podIP", pod.Status.PodIPs)
	}
	if f := s.Fields(pod); f["status.phase"] != "Running" || f["status.podIP"] != "10.244.0.5" {
		t.Errorf("fields = %v", f)
	}

	bad := pod.DeepCopy()
	bad.Spec.NodeName = "node-1"
	bad.Status.PodIPs = []v1.PodIP{{IP: "10.244.0.5"}, {IP: "10.244.0.6"}}
	checkErrs(t, s.ValidateStatusUpdate(bad, old),
		forb("status.nodeName"),
		invd("status.podIPs", "may specify no more than one IP for each IP family"))
}

func TestPodFields(t *testing.T) {
	pod := kubectlRunPod()
	pod.Spec.NodeName = "node-1"
	pod.Spec.HostNetwork = true
	pod.Status.NominatedNodeName = "node-2"
	mustFor(t, podGVK).Default(pod)
	got := mustFor(t, podGVK).Fields(pod)
	want := map[string]string{
		"metadata.name":            "web",
		"metadata.namespace":       "default",
		"spec.nodeName":            "node-1",
		"spec.restartPolicy":       "Always",
		"spec.schedulerName":       "default-scheduler",
		"spec.serviceAccountName":  "",
		"spec.hostNetwork":         "true",
		"status.phase":             "",
		"status.podIP":             "",
		"status.nominatedNodeName": "node-2",
	}
	if !apiequality.Semantic.DeepEqual(map[string]string(got), want) {
		t.Errorf("Fields() = %v, want %v", got, want)
	}
}

func TestPodTemplate(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("PodTemplate")
	pt := &v1.PodTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "t", Namespace: "default"},
		Template: v1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "web", Image: "nginx"}}},
		},
	}
	checkErrs(t, create(t, gvk, pt))
	if pt.Generation != 1 || pt.Template.Spec.RestartPolicy != v1.RestartPolicyAlways {
		t.Errorf("generation %d, restartPolicy %q", pt.Generation, pt.Template.Spec.RestartPolicy)
	}
	// A template's pods get no enableServiceLinks default: that is a pod's.
	if pt.Template.Spec.EnableServiceLinks != nil {
		t.Error("template got enableServiceLinks")
	}
	bad := pt.DeepCopy()
	bad.Template.Labels = map[string]string{"app": "a b"}
	bad.Template.Spec.Containers[0].Name = ""
	checkErrs(t, mustFor(t, gvk).Validate(bad), inv("template.labels"), req("template.spec.containers[0].name"))
}
