package printers

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// now is the clock of every test.
var now = time.Date(2026, time.March, 4, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

func agoPtr(d time.Duration) *metav1.Time {
	t := ago(d)
	return &t
}

func ptr[T any](v T) *T { return &v }

func opts() Options { return Options{Now: now} }

// rowCells prints obj, a single object, and returns the cells of its row.
func rowCells(t *testing.T, obj runtime.Object) []interface{} {
	t.Helper()
	table, err := Table(obj, opts())
	if err != nil {
		t.Fatalf("Table(%T): %v", obj, err)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("Table(%T): %d rows, want 1", obj, len(table.Rows))
	}
	if n := len(table.ColumnDefinitions); n != len(table.Rows[0].Cells) {
		t.Fatalf("Table(%T): %d columns but %d cells", obj, n, len(table.Rows[0].Cells))
	}
	return table.Rows[0].Cells
}

func checkCells(t *testing.T, got, want []interface{}) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cells differ\n got: %s\nwant: %s", show(got), show(want))
	}
}

func show(cells []interface{}) string {
	s := "["
	for i, c := range cells {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%#v", c)
	}
	return s + "]"
}
