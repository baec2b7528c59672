package apiserver

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// newScheme holds every built-in type (as client-go registers them, and
// apiextensions.k8s.io/v1's CustomResourceDefinition) and
// the meta.k8s.io types the server answers with: Table, TableOptions and
// PartialObjectMetadata.
func newScheme() (*runtime.Scheme, serializer.CodecFactory, runtime.ParameterCodec) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err) // only a programming error: the types are compiled in
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		panic(err)
	}
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	if err := metav1.AddMetaToScheme(s); err != nil {
		panic(err)
	}
	return s, serializer.NewCodecFactory(s), runtime.NewParameterCodec(s)
}
