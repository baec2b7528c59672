// Package printers turns API objects into the server-side tables that
// `kubectl get` prints.
//
// kubectl asks the API server for
//
//	Accept: application/json;as=Table;v=v1;g=meta.k8s.io
//
// and prints the columns and cells it gets back without knowing anything
// about the kind. So what a student sees in the terminal is decided here, and
// it must match what a real cluster prints: the column names, types, formats
// and priorities and the text of every cell follow the upstream printers of
// kubernetes/kubernetes (pkg/printers/internalversion) and the generic table
// convertor of k8s.io/apiserver, rewritten over the external (v1) types of
// k8s.io/api.
//
// # Use
//
//	table, err := printers.Table(obj, printers.Options{NoHeaders: opts.NoHeaders})
//	...
//	err = printers.SetIncludeObject(table, opts.IncludeObject, obj, gvk)
//
// obj is a typed object (*corev1.Pod) or a typed list (*corev1.PodList).
// Like the real API server, every table carries all of a kind's columns,
// priority 1 ("wide") ones included; kubectl hides the priority-1 columns
// unless it is run with -o wide. Each row's object is the
// PartialObjectMetadata of its item (meta.k8s.io/v1), which is what the API
// server sends for includeObject=Metadata, the default; SetIncludeObject
// switches rows to None or to the full Object.
//
// Kinds without a printer of their own (Role, ClusterRole, LimitRange, custom
// resources, ...) get the default table of k8s.io/apiserver: Name and
// Created At (type "date", an RFC 3339 timestamp).
//
// # Registry
//
// Printers are registered per GroupVersionKind and per Go type. For and
// ForObject look them up; Register adds or replaces one, so later packages
// can add kinds (for example a CRD's additionalPrinterColumns).
//
// # Time
//
// Options.Now is the clock used for every AGE-like cell ("5m", "3d4h" as
// printed by k8s.io/apimachinery/pkg/util/duration.HumanDuration, or
// "<unknown>" for a zero time); it defaults to time.Now.
package printers
