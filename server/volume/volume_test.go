package volume

import (
	"testing"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func class(name string, created time.Time, annotations map[string]string) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations, CreationTimestamp: metav1.NewTime(created)}}
}

func TestDefaultClass(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	def := map[string]string{DefaultClassAnnotation: "true"}
	beta := map[string]string{BetaDefaultClassAnnotation: "true"}
	for _, tc := range []struct {
		name    string
		classes []*storagev1.StorageClass
		want    string
	}{
		{"none", nil, ""},
		{"none marked", []*storagev1.StorageClass{class("a", t0, nil), class("b", t0, map[string]string{DefaultClassAnnotation: "false"})}, ""},
		{"one", []*storagev1.StorageClass{class("a", t0, nil), class("b", t0, def)}, "b"},
		{"beta annotation", []*storagev1.StorageClass{class("a", t0, beta)}, "a"},
		{"the newest", []*storagev1.StorageClass{class("old", t0, def), class("new", t0.Add(time.Second), beta)}, "new"},
		{"tie: first by name", []*storagev1.StorageClass{class("z", t0, def), class("m", t0, def)}, "m"},
	} {
		if got := DefaultClass(tc.classes); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
