package printers

import (
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Options controls how a table is generated.
type Options struct {
	// NoHeaders leaves the column definitions out of the table, as the API
	// server does for the noHeaders table option (metav1.TableOptions).
	NoHeaders bool

	// Now is the time AGE-like cells are measured against. Zero means
	// time.Now().
	Now time.Time

	// StorageClasses, when set, lists every StorageClass of the cluster. It is
	// used to find the effective default class when a single StorageClass is
	// printed: only the newest class annotated as default shows "(default)".
	// Without it a single StorageClass shows "(default)" whenever it carries
	// the annotation. For a StorageClassList the items of the list are used.
	StorageClasses func() ([]storagev1.StorageClass, error)

	// list is set by Table when it prints a list.
	list bool
}

// RowsFunc prints the items of one kind. It returns one row per item, in
// order, with Cells (one per column of the printer) and, when relevant,
// Conditions set; Table fills in each row's Object.
type RowsFunc func(items []runtime.Object, opts Options) ([]metav1.TableRow, error)

// Printer prints the objects of one kind.
type Printer struct {
	// Columns are all the columns of the kind, in order, wide (priority 1)
	// ones included.
	Columns []metav1.TableColumnDefinition
	// Rows prints items that are all of the kind's Go type (or, for the
	// default printer, any objects with metadata).
	Rows RowsFunc
}

// CellsFunc returns the cells of one object of type T.
type CellsFunc[T runtime.Object] func(obj T, opts Options) ([]interface{}, error)

// NewPrinter builds a Printer from a function printing a single object of
// type T. Items of another type are an error.
func NewPrinter[T runtime.Object](columns []metav1.TableColumnDefinition, cells CellsFunc[T]) *Printer {
	return &Printer{
		Columns: columns,
		Rows: func(items []runtime.Object, opts Options) ([]metav1.TableRow, error) {
			rows := make([]metav1.TableRow, 0, len(items))
			for _, item := range items {
				typed, ok := item.(T)
				if !ok {
					var want T
					return nil, fmt.Errorf("printers: cannot print %T with the printer for %T", item, want)
				}
				c, err := cells(typed, opts)
				if err != nil {
					return nil, err
				}
				rows = append(rows, metav1.TableRow{Cells: c})
			}
			return rows, nil
		},
	}
}

// Group versions of the tables and of the metadata objects in their rows.
var (
	TableGVK                 = metav1.SchemeGroupVersion.WithKind("Table")
	PartialObjectMetadataGVK = metav1.SchemeGroupVersion.WithKind("PartialObjectMetadata")
)

type registration struct {
	gvk     schema.GroupVersionKind
	printer *Printer
}

var registry = struct {
	sync.RWMutex
	byGVK  map[schema.GroupVersionKind]*Printer
	byType map[reflect.Type]registration
}{
	byGVK:  map[schema.GroupVersionKind]*Printer{},
	byType: map[reflect.Type]registration{},
}

// Register makes p the printer of gvk. item is a prototype of the kind's Go
// type (e.g. &corev1.Pod{}) and list, which may be nil, of its list type (e.g.
// &corev1.PodList{}); Table finds printers by the Go type of what it is
// given. A nil p registers the default printer for the kind. A later
// registration replaces an earlier one.
func Register(gvk schema.GroupVersionKind, item, list runtime.Object, p *Printer) {
	if p == nil {
		p = Default()
	}
	registry.Lock()
	defer registry.Unlock()
	registry.byGVK[gvk] = p
	if item != nil {
		registry.byType[reflect.TypeOf(item)] = registration{gvk: gvk, printer: p}
	}
	if list != nil {
		registry.byType[reflect.TypeOf(list)] = registration{gvk: gvk, printer: p}
	}
}

// For returns the printer registered for gvk. When there is none it returns
// the default printer and false.
func For(gvk schema.GroupVersionKind) (*Printer, bool) {
	registry.RLock()
	defer registry.RUnlock()
	if p, ok := registry.byGVK[gvk]; ok {
		return p, true
	}
	return Default(), false
}

// ForObject returns the printer and the kind registered for the Go type of
// obj, an object or a list. When there is none it returns the default
// printer, an empty kind and false.
func ForObject(obj runtime.Object) (*Printer, schema.GroupVersionKind, bool) {
	registry.RLock()
	defer registry.RUnlock()
	if r, ok := registry.byType[reflect.TypeOf(obj)]; ok {
		return r.printer, r.gvk, true
	}
	return Default(), schema.GroupVersionKind{}, false
}

// Kinds returns the kinds that have a registered printer, sorted.
func Kinds() []schema.GroupVersionKind {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]schema.GroupVersionKind, 0, len(registry.byGVK))
	for gvk := range registry.byGVK {
		out = append(out, gvk)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Table prints obj, a typed object or a typed list, as a Table. Each row's
// Object holds the PartialObjectMetadata of its item (which shares the
// item's labels, annotations and other metadata slices and maps: serialize
// it, do not change it); the table's ListMeta is taken from the list (or the
// resourceVersion of a single object). Table does not change obj.
func Table(obj runtime.Object, opts Options) (*metav1.Table, error) {
	if obj == nil {
		return nil, fmt.Errorf("printers: nil object")
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}

	var items []runtime.Object
	isList := meta.IsListType(obj)
	if isList {
		var err error
		if items, err = meta.ExtractList(obj); err != nil {
			return nil, fmt.Errorf("printers: %T: %w", obj, err)
		}
	} else {
		items = []runtime.Object{obj}
	}

	opts.list = isList
	p, _, ok := ForObject(obj)
	if !ok && isList && len(items) > 0 {
		// A list type nobody registered, of a registered item type.
		p, _, _ = ForObject(items[0])
	}

	rows, err := p.Rows(items, opts)
	if err != nil {
		return nil, err
	}
	if len(rows) != len(items) {
		return nil, fmt.Errorf("printers: %T: %d rows for %d items", obj, len(rows), len(items))
	}
	for i := range rows {
		partial, err := partialMetadata(items[i])
		if err != nil {
			return nil, err
		}
		rows[i].Object = runtime.RawExtension{Object: partial}
	}

	table := &metav1.Table{
		TypeMeta: metav1.TypeMeta{APIVersion: TableGVK.GroupVersion().String(), Kind: TableGVK.Kind},
		Rows:     rows,
	}
	if !opts.NoHeaders {
		table.ColumnDefinitions = append([]metav1.TableColumnDefinition(nil), p.Columns...)
	}
	if l, err := meta.ListAccessor(obj); err == nil {
		table.ResourceVersion = l.GetResourceVersion()
		table.Continue = l.GetContinue()
		table.RemainingItemCount = l.GetRemainingItemCount()
	} else if c, err := meta.CommonAccessor(obj); err == nil {
		table.ResourceVersion = c.GetResourceVersion()
	}
	return table, nil
}

func partialMetadata(obj runtime.Object) (*metav1.PartialObjectMetadata, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("printers: %T has no object metadata: %w", obj, err)
	}
	partial := meta.AsPartialObjectMetadata(m)
	partial.GetObjectKind().SetGroupVersionKind(PartialObjectMetadataGVK)
	return partial, nil
}

// SetIncludeObject sets the Object of every row of table, which Table made
// from obj, as the API server does for the includeObject parameter:
//
//   - None: no object;
//   - Metadata or "": the item's PartialObjectMetadata (what Table put there);
//   - Object: the full item, a deep copy whose apiVersion and kind are set to
//     gvk; an empty gvk is taken from the item itself, else from the registry.
//
// Any other policy is an error (the API server answers 400 Bad Request).
func SetIncludeObject(table *metav1.Table, policy metav1.IncludeObjectPolicy, obj runtime.Object, gvk schema.GroupVersionKind) error {
	switch policy {
	case metav1.IncludeNone:
		for i := range table.Rows {
			table.Rows[i].Object = runtime.RawExtension{}
		}
		return nil
	case metav1.IncludeMetadata, "", metav1.IncludeObject:
	default:
		return fmt.Errorf("unrecognized includeObject value: %q", policy)
	}

	var items []runtime.Object
	if meta.IsListType(obj) {
		var err error
		if items, err = meta.ExtractList(obj); err != nil {
			return fmt.Errorf("printers: %T: %w", obj, err)
		}
	} else {
		items = []runtime.Object{obj}
	}
	if len(items) != len(table.Rows) {
		return fmt.Errorf("printers: table has %d rows for %d items", len(table.Rows), len(items))
	}
	for i, item := range items {
		if policy != metav1.IncludeObject {
			partial, err := partialMetadata(item)
			if err != nil {
				return err
			}
			table.Rows[i].Object = runtime.RawExtension{Object: partial}
			continue
		}
		kind := gvk
		if kind.Empty() {
			kind = item.GetObjectKind().GroupVersionKind()
		}
		if kind.Empty() {
			_, kind, _ = ForObject(item)
		}
		if kind.Empty() {
			return fmt.Errorf("printers: no kind known for %T", item)
		}
		out := item.DeepCopyObject()
		out.GetObjectKind().SetGroupVersionKind(kind)
		table.Rows[i].Object = runtime.RawExtension{Object: out}
	}
	return nil
}

var (
	defaultOnce    sync.Once
	defaultPrinter *Printer
)

// Default returns the printer for kinds without one of their own, the table
// of k8s.io/apiserver's default table convertor: the name and the creation
// time as an RFC 3339 timestamp in UTC, in a column of type "date". It prints
// any object with metadata, typed or unstructured.
func Default() *Printer {
	defaultOnce.Do(func() {
		defaultPrinter = &Printer{
			Columns: []metav1.TableColumnDefinition{
				{Name: "Name", Type: "string", Format: "name", Description: objectMetaDoc["name"]},
				{Name: "Created At", Type: "date", Description: objectMetaDoc["creationTimestamp"]},
			},
			Rows: func(items []runtime.Object, _ Options) ([]metav1.TableRow, error) {
				rows := make([]metav1.TableRow, 0, len(items))
				for _, item := range items {
					m, err := meta.Accessor(item)
					if err != nil {
						return nil, fmt.Errorf("printers: %T does not support being converted to a Table: %w", item, err)
					}
					rows = append(rows, metav1.TableRow{Cells: []interface{}{
						m.GetName(), m.GetCreationTimestamp().Time.UTC().Format(time.RFC3339),
					}})
				}
				return rows, nil
			},
		}
	})
	return defaultPrinter
}
