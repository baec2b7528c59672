package customresource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/util/jsonpath"
)

// tableConvertor renders objects as kubectl get shows them: NAME, then the
// version's additionalPrinterColumns (AGE alone when it has none, as
// upstream defaults them).
type tableConvertor struct {
	headers []metav1.TableColumnDefinition
	paths   []*jsonpath.JSONPath
}

var ageColumn = apiextensionsv1.CustomResourceColumnDefinition{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"}

func newTableConvertor(columns []apiextensionsv1.CustomResourceColumnDefinition) (*tableConvertor, error) {
	if len(columns) == 0 {
		columns = []apiextensionsv1.CustomResourceColumnDefinition{ageColumn}
	}
	t := &tableConvertor{headers: []metav1.TableColumnDefinition{{Name: "Name", Type: "string", Format: "name",
		Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]}}}
	for _, c := range columns {
		p := jsonpath.New(c.Name).AllowMissingKeys(true)
		if err := p.Parse("{" + c.JSONPath + "}"); err != nil {
			return nil, fmt.Errorf("column %q: unrecognized JSONPath %q: %w", c.Name, c.JSONPath, err)
		}
		desc := c.Description
		if desc == "" {
			desc = "Custom resource definition column (in JSONPath format): " + c.JSONPath
		}
		t.paths = append(t.paths, p)
		t.headers = append(t.headers, metav1.TableColumnDefinition{Name: c.Name, Type: c.Type, Format: c.Format, Description: desc, Priority: c.Priority})
	}
	return t, nil
}

// Table renders obj, an object or a list of the version's kind.
func (v *Version) Table(obj runtime.Object, noHeaders bool, now time.Time) (*metav1.Table, error) {
	t := v.table
	table := &metav1.Table{}
	if !noHeaders {
		table.ColumnDefinitions = t.headers
	}
	var items []runtime.Object
	if meta.IsListType(obj) {
		var err error
		if items, err = meta.ExtractList(obj); err != nil {
			return nil, err
		}
		if lm, err := meta.ListAccessor(obj); err == nil {
			table.ResourceVersion, table.Continue, table.RemainingItemCount = lm.GetResourceVersion(), lm.GetContinue(), lm.GetRemainingItemCount()
		}
	} else {
		items = []runtime.Object{obj}
		if m, err := meta.Accessor(obj); err == nil {
			table.ResourceVersion = m.GetResourceVersion()
		}
	}
	table.Rows = make([]metav1.TableRow, 0, len(items))
	var buf bytes.Buffer
	for _, item := range items {
		u, ok := item.(*unstructured.Unstructured)
		if !ok {
			return nil, fmt.Errorf("customresource: cannot print %T", item)
		}
		cells := make([]any, 1, 1+len(t.paths))
		cells[0] = u.GetName()
		for i, p := range t.paths {
			results, err := p.FindResults(u.Object)
			if err != nil || len(results) == 0 || len(results[0]) == 0 {
				cells = append(cells, nil)
				continue
			}
			value := results[0][0].Interface()
			typ := t.headers[i+1].Type
			if typ == "string" {
				buf.Reset()
				if err := p.PrintResults(&buf, []reflect.Value{reflect.ValueOf(value)}); err != nil {
					cells = append(cells, nil)
					continue
				}
				cells = append(cells, buf.String())
				continue
			}
			cells = append(cells, cell(typ, value, now))
		}
		table.Rows = append(table.Rows, metav1.TableRow{Cells: cells, Object: runtime.RawExtension{Object: item}})
	}
	return table, nil
}

// cell is a column's value in the column's type; nil (shown as <none>)
// when the value is of another type.
func cell(typ string, value any, now time.Time) any {
	switch typ {
	case "integer":
		switch n := value.(type) {
		case int64:
			return n
		case float64:
			return int64(n)
		case json.Number:
			if i, err := n.Int64(); err == nil {
				return i
			}
		}
	case "number":
		switch n := value.(type) {
		case int64:
			return float64(n)
		case float64:
			return n
		case json.Number:
			if f, err := n.Float64(); err == nil {
				return f
			}
		}
	case "boolean":
		if b, ok := value.(bool); ok {
			return b
		}
	case "date":
		if s, ok := value.(string); ok {
			var ts metav1.Time
			if err := ts.UnmarshalQueryParameter(s); err != nil {
				return "<invalid>"
			}
			if ts.IsZero() {
				return "<unknown>"
			}
			return duration.HumanDuration(now.Sub(ts.Time))
		}
	}
	return nil
}
