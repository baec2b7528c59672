package strategy

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// batch/v1: Jobs and CronJobs.

// The labels a Job's generated selector uses; the short ones are legacy.
const (
	legacyJobNameLabel       = "job-name"
	legacyControllerUIDLabel = "controller-uid"
)

func init() {
	gv := batchv1.SchemeGroupVersion
	register(gv.WithKind("Job"), &kind[*batchv1.Job]{
		defaults: defaultJob,
		prepareCreate: func(j *batchv1.Job) {
			if !ptr.Deref(j.Spec.ManualSelector, false) {
				generateJobSelector(j)
			}
			j.Status = batchv1.JobStatus{}
			j.Generation = 1
		},
		prepareUpdate: func(j, old *batchv1.Job) {
			j.Status = old.Status
			bumpGeneration(j, !apiequality.Semantic.DeepEqual(j.Spec, old.Spec))
		},
		prepareStatus: func(j, old *batchv1.Job) {
			j.Spec = old.Spec
		},
		validate: func(j *batchv1.Job) field.ErrorList {
			return validateJob(j, true)
		},
		validateUpdate: validateJobUpdate,
		validateStatus: func(j, old *batchv1.Job) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&j.ObjectMeta, &old.ObjectMeta)
			return append(allErrs, validateJobStatusUpdate(j, old)...)
		},
		fields: func(j *batchv1.Job, set fields.Set) {
			set["status.successful"] = strconv.Itoa(int(j.Status.Succeeded))
		},
	})

	register(gv.WithKind("CronJob"), &kind[*batchv1.CronJob]{
		defaults: defaultCronJob,
		prepareCreate: func(cj *batchv1.CronJob) {
			cj.Status = batchv1.CronJobStatus{}
			cj.Generation = 1
		},
		prepareUpdate: func(cj, old *batchv1.CronJob) {
			cj.Status = old.Status
			bumpGeneration(cj, !apiequality.Semantic.DeepEqual(cj.Spec, old.Spec))
		},
		prepareStatus: func(cj, old *batchv1.CronJob) {
			cj.Spec = old.Spec
		},
		validate: func(cj *batchv1.CronJob) field.ErrorList {
			allErrs := validateObjectMeta(&cj.ObjectMeta, true, nameIsDNSSubdomain)
			allErrs = append(allErrs, validateCronJobSpec(&cj.Spec, nil, specPath)...)
			// The controller appends an 11-character suffix (-<timestamp>)
			// to make the Jobs' names, which may have at most 63.
			if len(cj.Name) > validation.DNS1035LabelMaxLength-11 {
				allErrs = append(allErrs, field.Invalid(metadataPath.Child("name"), cj.Name, "must be no more than 52 characters"))
			}
			return allErrs
		},
		validateUpdate: func(cj, old *batchv1.CronJob) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&cj.ObjectMeta, &old.ObjectMeta)
			return append(allErrs, validateCronJobSpec(&cj.Spec, &old.Spec, specPath)...)
		},
	})
}

func defaultJob(j *batchv1.Job) {
	s := &j.Spec
	if s.Completions == nil && s.Parallelism == nil {
		s.Completions = ptr.To[int32](1)
		s.Parallelism = ptr.To[int32](1)
	}
	if s.Parallelism == nil {
		s.Parallelism = ptr.To[int32](1)
	}
	if s.BackoffLimit == nil {
		if s.BackoffLimitPerIndex != nil {
			s.BackoffLimit = ptr.To[int32](math.MaxInt32)
		} else {
			s.BackoffLimit = ptr.To[int32](6)
		}
	}
	if s.Template.Labels != nil && len(j.Labels) == 0 {
		j.Labels = s.Template.Labels
	}
	if s.CompletionMode == nil {
		s.CompletionMode = ptr.To(batchv1.NonIndexedCompletion)
	}
	if s.Suspend == nil {
		s.Suspend = ptr.To(false)
	}
	if s.PodReplacementPolicy == nil {
		if s.PodFailurePolicy != nil {
			s.PodReplacementPolicy = ptr.To(batchv1.Failed)
		} else {
			s.PodReplacementPolicy = ptr.To(batchv1.TerminatingOrFailed)
		}
	}
	if s.ManualSelector == nil {
		s.ManualSelector = ptr.To(false)
	}
	defaultJobSpecParts(s)
}

// defaultJobSpecParts applies the defaults of the parts of a job spec that
// a CronJob's job template gets too.
func defaultJobSpecParts(s *batchv1.JobSpec) {
	if s.PodFailurePolicy != nil {
		for i := range s.PodFailurePolicy.Rules {
			for j := range s.PodFailurePolicy.Rules[i].OnPodConditions {
				if c := &s.PodFailurePolicy.Rules[i].OnPodConditions[j]; c.Status == "" {
					c.Status = v1.ConditionTrue
				}
			}
		}
	}
	defaultPodTemplateSpec(&s.Template)
}

func defaultCronJob(cj *batchv1.CronJob) {
	s := &cj.Spec
	if s.ConcurrencyPolicy == "" {
		s.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if s.Suspend == nil {
		s.Suspend = ptr.To(false)
	}
	if s.SuccessfulJobsHistoryLimit == nil {
		s.SuccessfulJobsHistoryLimit = ptr.To[int32](3)
	}
	if s.FailedJobsHistoryLimit == nil {
		s.FailedJobsHistoryLimit = ptr.To[int32](1)
	}
	defaultJobSpecParts(&s.JobTemplate.Spec)
}

// generateJobSelector labels the pod template with the job's name and uid
// and selects on the uid: the pods of this job and no other.
func generateJobSelector(j *batchv1.Job) {
	t := &j.Spec.Template
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	for _, k := range []string{legacyJobNameLabel, batchv1.JobNameLabel} {
		if _, ok := t.Labels[k]; !ok {
			t.Labels[k] = j.Name
		}
	}
	for _, k := range []string{legacyControllerUIDLabel, batchv1.ControllerUidLabel} {
		if _, ok := t.Labels[k]; !ok {
			t.Labels[k] = string(j.UID)
		}
	}
	if j.Spec.Selector == nil {
		j.Spec.Selector = &metav1.LabelSelector{}
	}
	if j.Spec.Selector.MatchLabels == nil {
		j.Spec.Selector.MatchLabels = map[string]string{}
	}
	if _, ok := j.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel]; !ok {
		j.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] = string(j.UID)
	}
}

// validateHasLabel: the template has label key with the expected value.
func validateHasLabel(m metav1.ObjectMeta, fldPath *field.Path, key, expected string) field.ErrorList {
	actual, ok := m.Labels[key]
	if !ok {
		return field.ErrorList{field.Required(fldPath.Child("labels").Key(key), fmt.Sprintf("must be '%s'", expected))}
	}
	if actual != expected {
		return field.ErrorList{field.Invalid(fldPath.Child("labels").Key(key), m.Labels, fmt.Sprintf("must be '%s'", expected))}
	}
	return nil
}

// validateGeneratedSelector: unless the selector is manual, the template
// carries the generated labels and the selector selects them.
func validateGeneratedSelector(j *batchv1.Job, prefixedLabels bool) field.ErrorList {
	if ptr.Deref(j.Spec.ManualSelector, false) || j.Spec.Selector == nil {
		return nil
	}
	var allErrs field.ErrorList
	if j.UID == "" {
		allErrs = append(allErrs, field.Required(metadataPath.Child("uid"), ""))
	}
	tm := field.NewPath("spec", "template", "metadata")
	allErrs = append(allErrs, validateHasLabel(j.Spec.Template.ObjectMeta, tm, legacyControllerUIDLabel, string(j.UID))...)
	allErrs = append(allErrs, validateHasLabel(j.Spec.Template.ObjectMeta, tm, legacyJobNameLabel, j.Name)...)
	expected := labels.Set{legacyControllerUIDLabel: string(j.UID), legacyJobNameLabel: j.Name}
	if prefixedLabels {
		allErrs = append(allErrs, validateHasLabel(j.Spec.Template.ObjectMeta, tm, batchv1.ControllerUidLabel, string(j.UID))...)
		allErrs = append(allErrs, validateHasLabel(j.Spec.Template.ObjectMeta, tm, batchv1.JobNameLabel, j.Name)...)
		expected[batchv1.ControllerUidLabel] = string(j.UID)
		expected[batchv1.JobNameLabel] = j.Name
	}
	if selector, err := metav1.LabelSelectorAsSelector(j.Spec.Selector); err == nil && !selector.Matches(expected) {
		allErrs = append(allErrs, field.Invalid(specPath.Child("selector"), j.Spec.Selector, "`selector` not auto-generated"))
	}
	return allErrs
}

// validateJob: jobs are named like ReplicationControllers (DNS subdomain).
func validateJob(j *batchv1.Job, prefixedLabels bool) field.ErrorList {
	allErrs := validateObjectMeta(&j.ObjectMeta, true, nameIsDNSSubdomain)
	allErrs = append(allErrs, validateGeneratedSelector(j, prefixedLabels)...)
	allErrs = append(allErrs, validateJobSpecWithSelector(&j.Spec, specPath)...)
	if ptr.Deref(j.Spec.CompletionMode, "") == batchv1.IndexedCompletion && ptr.Deref(j.Spec.Completions, 0) > 0 {
		host := fmt.Sprintf("%s-%d", j.Name, *j.Spec.Completions-1)
		if errs := validation.IsDNS1123Label(host); len(errs) > 0 {
			allErrs = append(allErrs, field.Invalid(metadataPath.Child("name"), j.Name, fmt.Sprintf("will not able to create pod with invalid DNS label: %s", host)))
		}
	}
	return allErrs
}

func validateJobSpecWithSelector(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateJobSpec(spec, fldPath)
	if spec.Selector == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("selector"), ""))
	} else {
		allErrs = append(allErrs, validateLabelSelector(spec.Selector, fldPath.Child("selector"))...)
	}
	if selector, err := metav1.LabelSelectorAsSelector(spec.Selector); err == nil && !selector.Matches(labels.Set(spec.Template.Labels)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("template", "metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
	}
	return allErrs
}

const (
	maxParallelismForIndexedJob   = 100000
	maxFailedIndexesForIndexedJob = 100_000
	maxPodFailurePolicyRules      = 20
	maxOnExitCodesValues          = 255
	maxOnPodConditionsPatterns    = 20
	maxManagedByLength            = 63
	maxSuccessPolicyRules         = 20
)

var (
	supportedPodFailurePolicyActions = sets.New(batchv1.PodFailurePolicyActionCount, batchv1.PodFailurePolicyActionFailIndex,
		batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyActionIgnore)
	supportedOnExitCodesOperators = sets.New(batchv1.PodFailurePolicyOnExitCodesOpIn, batchv1.PodFailurePolicyOnExitCodesOpNotIn)
	supportedConditionStatuses    = sets.New(v1.ConditionFalse, v1.ConditionTrue, v1.ConditionUnknown)
	supportedPodReplacement       = sets.New(batchv1.Failed, batchv1.TerminatingOrFailed)
)

// validateJobSpec checks a job spec without its selector (a CronJob's job
// template has none).
func validateJobSpec(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, f := range []struct {
		name string
		v    *int32
	}{{"parallelism", spec.Parallelism}, {"completions", spec.Completions}, {"backoffLimit", spec.BackoffLimit},
		{"ttlSecondsAfterFinished", spec.TTLSecondsAfterFinished}, {"backoffLimitPerIndex", spec.BackoffLimitPerIndex}} {
		if f.v != nil {
			allErrs = append(allErrs, validateNonnegative(int64(*f.v), fldPath.Child(f.name))...)
		}
		if f.name == "completions" && spec.ActiveDeadlineSeconds != nil {
			allErrs = append(allErrs, validateNonnegative(*spec.ActiveDeadlineSeconds, fldPath.Child("activeDeadlineSeconds"))...)
		}
	}
	if spec.MaxFailedIndexes != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.MaxFailedIndexes), fldPath.Child("maxFailedIndexes"))...)
		if spec.BackoffLimitPerIndex == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
		}
	}
	if spec.ManagedBy != nil {
		allErrs = append(allErrs, validation.IsDomainPrefixedPath(fldPath.Child("managedBy"), *spec.ManagedBy)...)
		if len(*spec.ManagedBy) > maxManagedByLength {
			allErrs = append(allErrs, field.TooLongMaxLength(fldPath.Child("managedBy"), *spec.ManagedBy, maxManagedByLength))
		}
	}
	indexed := ptr.Deref(spec.CompletionMode, batchv1.NonIndexedCompletion) == batchv1.IndexedCompletion
	if spec.CompletionMode != nil {
		if *spec.CompletionMode != batchv1.NonIndexedCompletion && *spec.CompletionMode != batchv1.IndexedCompletion {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("completionMode"), spec.CompletionMode, []batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}))
		}
		if indexed {
			if spec.Completions == nil {
				allErrs = append(allErrs, field.Required(fldPath.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
			}
			if spec.Parallelism != nil && *spec.Parallelism > maxParallelismForIndexedJob {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("parallelism"), *spec.Parallelism,
					fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxParallelismForIndexedJob, batchv1.IndexedCompletion)))
			}
			if spec.Completions != nil && spec.MaxFailedIndexes != nil && *spec.MaxFailedIndexes > *spec.Completions {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("maxFailedIndexes"), *spec.MaxFailedIndexes, "must be less than or equal to completions"))
			}
			if spec.MaxFailedIndexes != nil && *spec.MaxFailedIndexes > maxFailedIndexesForIndexedJob {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("maxFailedIndexes"), *spec.MaxFailedIndexes, fmt.Sprintf("must be less than or equal to %d", maxFailedIndexesForIndexedJob)))
			}
		}
	}
	if !indexed {
		if spec.BackoffLimitPerIndex != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("backoffLimitPerIndex"), *spec.BackoffLimitPerIndex, "requires indexed completion mode"))
		}
		if spec.MaxFailedIndexes != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("maxFailedIndexes"), *spec.MaxFailedIndexes, "requires indexed completion mode"))
		}
	}
	if spec.PodFailurePolicy != nil {
		allErrs = append(allErrs, validatePodFailurePolicy(spec, fldPath.Child("podFailurePolicy"))...)
	}
	if spec.SuccessPolicy != nil {
		if !indexed {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("successPolicy"), *spec.SuccessPolicy, "requires indexed completion mode"))
		} else {
			allErrs = append(allErrs, validateSuccessPolicy(spec, fldPath.Child("successPolicy"))...)
		}
	}
	if p := spec.PodReplacementPolicy; p != nil {
		if spec.PodFailurePolicy != nil {
			if *p != batchv1.Failed {
				allErrs = append(allErrs, field.NotSupported(fldPath.Child("podReplacementPolicy"), *p, []batchv1.PodReplacementPolicy{batchv1.Failed}))
			}
		} else if !supportedPodReplacement.Has(*p) {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("podReplacementPolicy"), *p, sets.List(supportedPodReplacement)))
		}
	}
	tp := fldPath.Child("template")
	allErrs = append(allErrs, validatePodTemplateSpec(&spec.Template, tp)...)
	rp := tp.Child("spec", "restartPolicy")
	switch rpv := spec.Template.Spec.RestartPolicy; {
	case rpv == v1.RestartPolicyAlways || rpv == "":
		allErrs = append(allErrs, field.Required(rp, fmt.Sprintf("valid values: %q, %q", v1.RestartPolicyOnFailure, v1.RestartPolicyNever)))
	case rpv != v1.RestartPolicyOnFailure && rpv != v1.RestartPolicyNever:
		allErrs = append(allErrs, field.NotSupported(rp, rpv, []v1.RestartPolicy{v1.RestartPolicyOnFailure, v1.RestartPolicyNever}))
	case spec.PodFailurePolicy != nil && rpv != v1.RestartPolicyNever:
		allErrs = append(allErrs, field.Invalid(rp, rpv, fmt.Sprintf("only %q is supported when podFailurePolicy is specified", v1.RestartPolicyNever)))
	}
	return allErrs
}

func validatePodFailurePolicy(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	rulesPath := fldPath.Child("rules")
	if len(spec.PodFailurePolicy.Rules) > maxPodFailurePolicyRules {
		allErrs = append(allErrs, field.TooMany(rulesPath, len(spec.PodFailurePolicy.Rules), maxPodFailurePolicyRules))
	}
	containers := sets.New[string]()
	for _, c := range spec.Template.Spec.Containers {
		containers.Insert(c.Name)
	}
	for _, c := range spec.Template.Spec.InitContainers {
		containers.Insert(c.Name)
	}
	for i, rule := range spec.PodFailurePolicy.Rules {
		p := rulesPath.Index(i)
		ap := p.Child("action")
		switch {
		case rule.Action == "":
			allErrs = append(allErrs, field.Required(ap, fmt.Sprintf("valid values: %q", sets.List(supportedPodFailurePolicyActions))))
		case rule.Action == batchv1.PodFailurePolicyActionFailIndex:
			if spec.BackoffLimitPerIndex == nil {
				allErrs = append(allErrs, field.Invalid(ap, rule.Action, "requires the backoffLimitPerIndex to be set"))
			}
		case !supportedPodFailurePolicyActions.Has(rule.Action):
			allErrs = append(allErrs, field.NotSupported(ap, rule.Action, sets.List(supportedPodFailurePolicyActions)))
		}
		if oc := rule.OnExitCodes; oc != nil {
			op := p.Child("onExitCodes")
			switch {
			case oc.Operator == "":
				allErrs = append(allErrs, field.Required(op.Child("operator"), fmt.Sprintf("valid values: %q", sets.List(supportedOnExitCodesOperators))))
			case !supportedOnExitCodesOperators.Has(oc.Operator):
				allErrs = append(allErrs, field.NotSupported(op.Child("operator"), oc.Operator, sets.List(supportedOnExitCodesOperators)))
			}
			if oc.ContainerName != nil && !containers.Has(*oc.ContainerName) {
				allErrs = append(allErrs, field.Invalid(op.Child("containerName"), *oc.ContainerName, "must be one of the container or initContainer names in the pod template"))
			}
			vp := op.Child("values")
			if len(oc.Values) == 0 {
				allErrs = append(allErrs, field.Invalid(vp, oc.Values, "at least one value is required"))
			} else if len(oc.Values) > maxOnExitCodesValues {
				allErrs = append(allErrs, field.TooMany(vp, len(oc.Values), maxOnExitCodesValues))
			}
			seen := sets.New[int32]()
			ordered := true
			for j, v := range oc.Values {
				if oc.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && v == 0 {
					allErrs = append(allErrs, field.Invalid(vp.Index(j), v, "must not be 0 for the In operator"))
				}
				if seen.Has(v) {
					allErrs = append(allErrs, field.Duplicate(vp.Index(j), v))
				}
				seen.Insert(v)
				if j > 0 && oc.Values[j-1] > v {
					ordered = false
				}
			}
			if !ordered {
				allErrs = append(allErrs, field.Invalid(vp, oc.Values, "must be ordered"))
			}
		}
		if len(rule.OnPodConditions) > 0 {
			cp := p.Child("onPodConditions")
			if len(rule.OnPodConditions) > maxOnPodConditionsPatterns {
				allErrs = append(allErrs, field.TooMany(cp, len(rule.OnPodConditions), maxOnPodConditionsPatterns))
			}
			for j, pat := range rule.OnPodConditions {
				pp := cp.Index(j)
				allErrs = append(allErrs, validateQualifiedName(string(pat.Type), pp.Child("type"))...)
				switch {
				case pat.Status == "":
					allErrs = append(allErrs, field.Required(pp.Child("status"), fmt.Sprintf("valid values: %q", sets.List(supportedConditionStatuses))))
				case !supportedConditionStatuses.Has(pat.Status):
					allErrs = append(allErrs, field.NotSupported(pp.Child("status"), pat.Status, sets.List(supportedConditionStatuses)))
				}
			}
		}
		if rule.OnExitCodes != nil && len(rule.OnPodConditions) > 0 {
			allErrs = append(allErrs, field.Invalid(p, field.OmitValueType{}, "specifying both OnExitCodes and OnPodConditions is not supported"))
		}
		if rule.OnExitCodes == nil && len(rule.OnPodConditions) == 0 {
			allErrs = append(allErrs, field.Invalid(p, field.OmitValueType{}, "specifying one of OnExitCodes and OnPodConditions is required"))
		}
	}
	return allErrs
}

func validateSuccessPolicy(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	rulesPath := fldPath.Child("rules")
	rules := spec.SuccessPolicy.Rules
	if len(rules) == 0 {
		allErrs = append(allErrs, field.Required(rulesPath, "at least one rules must be specified when the successPolicy is specified"))
	}
	if len(rules) > maxSuccessPolicyRules {
		allErrs = append(allErrs, field.TooMany(rulesPath, len(rules), maxSuccessPolicyRules))
	}
	completions := ptr.Deref(spec.Completions, 0)
	for i, rule := range rules {
		p := rulesPath.Index(i)
		if rule.SucceededCount == nil && rule.SucceededIndexes == nil {
			allErrs = append(allErrs, field.Required(p, "at least one of succeededCount or succeededIndexes must be specified"))
		}
		var total int32
		if rule.SucceededIndexes != nil {
			var err error
			if total, err = validateIndexesFormat(*rule.SucceededIndexes, completions); err != nil {
				allErrs = append(allErrs, field.Invalid(p.Child("succeededIndexes"), *rule.SucceededIndexes, fmt.Sprintf("error parsing succeededIndexes: %s", err.Error())))
			}
		}
		if rule.SucceededCount != nil {
			cp := p.Child("succeededCount")
			allErrs = append(allErrs, validateNonnegative(int64(*rule.SucceededCount), cp)...)
			if *rule.SucceededCount > completions {
				allErrs = append(allErrs, field.Invalid(cp, *rule.SucceededCount, fmt.Sprintf("must be less than or equal to %d (the number of specified completions)", completions)))
			}
			if rule.SucceededIndexes != nil && *rule.SucceededCount > total {
				allErrs = append(allErrs, field.Invalid(cp, *rule.SucceededCount, fmt.Sprintf("must be less than or equal to %d (the number of indexes in the specified succeededIndexes field)", total)))
			}
		}
	}
	return allErrs
}

// validateIndexesFormat parses "1,3-5,7" style index sets below completions
// and counts the indexes.
func validateIndexesFormat(s string, completions int32) (int32, error) {
	if s == "" {
		return 0, nil
	}
	var last *int32
	var total int32
	for _, interval := range strings.Split(s, ",") {
		parts := strings.Split(interval, "-")
		if len(parts) > 2 {
			return 0, fmt.Errorf("the fragment %q violates the requirement that an index interval can have at most two parts separated by '-'", interval)
		}
		x, err := strconv.Atoi(parts[0])
		if err != nil {
			return 0, fmt.Errorf("cannot convert string to integer for index: %q", parts[0])
		}
		if x >= int(completions) {
			return 0, fmt.Errorf("too large index: %q", parts[0])
		}
		y := x
		if len(parts) == 2 {
			if y, err = strconv.Atoi(parts[1]); err != nil {
				return 0, fmt.Errorf("cannot convert string to integer for index: %q", parts[1])
			}
			if y >= int(completions) {
				return 0, fmt.Errorf("too large index: %q", parts[1])
			}
			if x >= y {
				return 0, fmt.Errorf("non-increasing order, previous: %d, current: %d", x, y)
			}
		}
		if last != nil && *last >= int32(x) {
			return 0, fmt.Errorf("non-increasing order, previous: %d, current: %d", *last, x)
		}
		total += int32(y - x + 1)
		yy := int32(y)
		last = &yy
	}
	return total, nil
}

// validateJobUpdate: the whole job validates, and selector, template,
// completion mode and the policies may not change. While a job is
// suspended and never started, its template's scheduling directives,
// labels and annotations may.
func validateJobUpdate(j, old *batchv1.Job) field.ErrorList {
	_, hadName := old.Spec.Template.Labels[batchv1.JobNameLabel]
	_, hadUID := old.Spec.Template.Labels[batchv1.ControllerUidLabel]
	allErrs := validateJob(j, hadName && hadUID)
	allErrs = append(allErrs, validateObjectMetaUpdate(&j.ObjectMeta, &old.ObjectMeta)...)
	spec, oldSpec := &j.Spec, &old.Spec
	if indexed := ptr.Deref(spec.CompletionMode, "") == batchv1.IndexedCompletion; !indexed {
		allErrs = append(allErrs, validateImmutable(spec.Completions, oldSpec.Completions, specPath.Child("completions"))...)
	} else if !apiequality.Semantic.DeepEqual(spec.Completions, oldSpec.Completions) && spec.Completions != nil &&
		(spec.Parallelism == nil || *spec.Completions != *spec.Parallelism) {
		allErrs = append(allErrs, field.Invalid(specPath.Child("completions"), spec.Completions, "can only be modified in tandem with spec.parallelism"))
	}
	allErrs = append(allErrs, validateImmutable(spec.Selector, oldSpec.Selector, specPath.Child("selector"))...)
	oldTemplate := &oldSpec.Template
	if ptr.Deref(oldSpec.Suspend, false) && old.Status.StartTime == nil {
		oldTemplate = oldSpec.Template.DeepCopy()
		t := &spec.Template
		switch {
		case t.Spec.Affinity == nil && oldTemplate.Spec.Affinity != nil:
			oldTemplate.Spec.Affinity.NodeAffinity = nil
			if *oldTemplate.Spec.Affinity == (v1.Affinity{}) {
				oldTemplate.Spec.Affinity = nil
			}
		case t.Spec.Affinity != nil && oldTemplate.Spec.Affinity == nil:
			oldTemplate.Spec.Affinity = &v1.Affinity{NodeAffinity: t.Spec.Affinity.NodeAffinity}
		case t.Spec.Affinity != nil && oldTemplate.Spec.Affinity != nil:
			oldTemplate.Spec.Affinity.NodeAffinity = t.Spec.Affinity.NodeAffinity
		}
		oldTemplate.Spec.NodeSelector = t.Spec.NodeSelector
		oldTemplate.Spec.Tolerations = t.Spec.Tolerations
		oldTemplate.Annotations = t.Annotations
		oldTemplate.Labels = t.Labels
		oldTemplate.Spec.SchedulingGates = t.Spec.SchedulingGates
	}
	allErrs = append(allErrs, validateImmutable(&spec.Template, oldTemplate, specPath.Child("template"))...)
	allErrs = append(allErrs, validateImmutable(spec.CompletionMode, oldSpec.CompletionMode, specPath.Child("completionMode"))...)
	allErrs = append(allErrs, validateImmutable(spec.PodFailurePolicy, oldSpec.PodFailurePolicy, specPath.Child("podFailurePolicy"))...)
	allErrs = append(allErrs, validateImmutable(spec.BackoffLimitPerIndex, oldSpec.BackoffLimitPerIndex, specPath.Child("backoffLimitPerIndex"))...)
	allErrs = append(allErrs, validateImmutable(spec.ManagedBy, oldSpec.ManagedBy, specPath.Child("managedBy"))...)
	allErrs = append(allErrs, validateImmutable(spec.SuccessPolicy, oldSpec.SuccessPolicy, specPath.Child("successPolicy"))...)
	return allErrs
}

func jobConditionTrue(conds []batchv1.JobCondition, t batchv1.JobConditionType) bool {
	for _, c := range conds {
		if c.Type == t && c.Status == v1.ConditionTrue {
			return true
		}
	}
	return false
}

// validateJobStatusUpdate checks the counters and, as upstream does for the
// transitions that changed, the finished-job invariants.
func validateJobStatusUpdate(j, old *batchv1.Job) field.ErrorList {
	s := j.Status
	allErrs := validateNonnegative(int64(s.Active), statusPath.Child("active"))
	allErrs = append(allErrs, validateNonnegative(int64(s.Succeeded), statusPath.Child("succeeded"))...)
	allErrs = append(allErrs, validateNonnegative(int64(s.Failed), statusPath.Child("failed"))...)
	if s.Ready != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*s.Ready), statusPath.Child("ready"))...)
	}
	if s.Terminating != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*s.Terminating), statusPath.Child("terminating"))...)
	}
	complete := jobConditionTrue(s.Conditions, batchv1.JobComplete)
	failed := jobConditionTrue(s.Conditions, batchv1.JobFailed)
	finished := complete || failed
	oldFinished := jobConditionTrue(old.Status.Conditions, batchv1.JobComplete) || jobConditionTrue(old.Status.Conditions, batchv1.JobFailed)
	if complete && failed {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("conditions"), field.OmitValueType{}, "cannot set Complete=True and Failed=true conditions"))
	}
	if (finished != oldFinished || s.Active != old.Status.Active) && s.Active > 0 && finished {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("active"), s.Active, "active>0 is invalid for finished job"))
	}
	if s.CompletionTime != nil && !complete {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("completionTime"), s.CompletionTime, "cannot set completionTime when there is no Complete=True condition"))
	}
	if s.StartTime != nil && s.CompletionTime != nil && s.CompletionTime.Before(s.StartTime) {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("completionTime"), s.CompletionTime, "completionTime cannot be set before startTime"))
	}
	for _, t := range []batchv1.JobConditionType{batchv1.JobFailed, batchv1.JobComplete, batchv1.JobFailureTarget} {
		if jobConditionTrue(old.Status.Conditions, t) && !jobConditionTrue(s.Conditions, t) {
			allErrs = append(allErrs, field.Invalid(statusPath.Child("conditions"), field.OmitValueType{}, fmt.Sprintf("cannot disable the terminal %s=True condition", string(t))))
		}
	}
	if s.Failed < old.Status.Failed {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("failed"), s.Failed, "cannot decrease the failed counter"))
	}
	if s.CompletionTime != nil && old.Status.CompletionTime != nil && !s.CompletionTime.Equal(old.Status.CompletionTime) {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("completionTime"), s.CompletionTime, "completionTime cannot be mutated"))
	}
	return allErrs
}

var validTimeZoneCharacters = regexp.MustCompile(`^[A-Za-z\.\-_0-9+]{1,14}$`)

func validateCronJobSpec(spec, old *batchv1.CronJobSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	sp := fldPath.Child("schedule")
	if spec.Schedule == "" {
		allErrs = append(allErrs, field.Required(sp, ""))
	} else {
		allowTZ := old != nil && strings.Contains(old.Schedule, "TZ")
		if err := parseCronSchedule(spec.Schedule); err != nil {
			allErrs = append(allErrs, field.Invalid(sp, spec.Schedule, err.Error()))
		}
		switch {
		case allowTZ && strings.Contains(spec.Schedule, "TZ") && spec.TimeZone != nil:
			allErrs = append(allErrs, field.Invalid(sp, spec.Schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
		case !allowTZ && strings.Contains(spec.Schedule, "TZ"):
			allErrs = append(allErrs, field.Invalid(sp, spec.Schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
		}
	}
	if spec.StartingDeadlineSeconds != nil {
		allErrs = append(allErrs, validateNonnegative(*spec.StartingDeadlineSeconds, fldPath.Child("startingDeadlineSeconds"))...)
	}
	if old == nil || !apiequality.Semantic.DeepEqual(old.TimeZone, spec.TimeZone) {
		allErrs = append(allErrs, validateTimeZone(spec.TimeZone, fldPath.Child("timeZone"))...)
	}
	cp := fldPath.Child("concurrencyPolicy")
	switch spec.ConcurrencyPolicy {
	case batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
	case "":
		allErrs = append(allErrs, field.Required(cp, ""))
	default:
		allErrs = append(allErrs, field.NotSupported(cp, spec.ConcurrencyPolicy, []batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}))
	}
	jp := fldPath.Child("jobTemplate")
	allErrs = append(allErrs, validateJobSpec(&spec.JobTemplate.Spec, jp.Child("spec"))...)
	if spec.JobTemplate.Spec.Selector != nil {
		allErrs = append(allErrs, field.Invalid(jp.Child("spec", "selector"), spec.JobTemplate.Spec.Selector, "`selector` will be auto-generated"))
	}
	if ptr.Deref(spec.JobTemplate.Spec.ManualSelector, false) {
		allErrs = append(allErrs, field.NotSupported(jp.Child("spec", "manualSelector"), spec.JobTemplate.Spec.ManualSelector, []string{"nil", "false"}))
	}
	if spec.SuccessfulJobsHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.SuccessfulJobsHistoryLimit), fldPath.Child("successfulJobsHistoryLimit"))...)
	}
	if spec.FailedJobsHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.FailedJobsHistoryLimit), fldPath.Child("failedJobsHistoryLimit"))...)
	}
	return allErrs
}

func validateTimeZone(tz *string, fldPath *field.Path) field.ErrorList {
	if tz == nil {
		return nil
	}
	if *tz == "" {
		return field.ErrorList{field.Invalid(fldPath, tz, "timeZone must be nil or non-empty string")}
	}
	for _, part := range strings.Split(*tz, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") || !validTimeZoneCharacters.MatchString(part) {
			return field.ErrorList{field.Invalid(fldPath, tz, fmt.Sprintf("unknown time zone %s", *tz))}
		}
	}
	var allErrs field.ErrorList
	if strings.EqualFold(*tz, "Local") {
		allErrs = append(allErrs, field.Invalid(fldPath, tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"))
	}
	if _, err := time.LoadLocation(*tz); err != nil {
		allErrs = append(allErrs, field.Invalid(fldPath, tz, err.Error()))
	}
	return allErrs
}
