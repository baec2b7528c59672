package storage

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

// ProtobufCodec stores objects of gv as Kubernetes protobuf, as upstream
// keeps them in etcd: smaller and faster to decode than JSON. Objects
// decode back into the type they are given.
func ProtobufCodec(scheme *runtime.Scheme, gv schema.GroupVersion) runtime.Codec {
	pb := protobuf.NewSerializer(scheme, scheme)
	enc := serializer.NewCodecFactory(scheme).EncoderForVersion(pb, gv)
	// Decoding straight with the protobuf serializer skips the format
	// sniffing a universal decoder does for every object of a list.
	return runtime.NewCodec(enc, pb)
}
