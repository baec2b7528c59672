package apiserver

import (
	"bytes"
	"net/http"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"labctl/server/storage"
)

// A protobuf list is written from the stored bytes of its items, without
// decoding them: decoding 500 ConfigMaps and encoding them again was most
// of the server's time for such a list, and client-go asks for protobuf.
//
// The store keeps each object as upstream keeps it in etcd: the protobuf
// envelope (the "k8s\x00" magic, then a runtime.Unknown with the object's
// apiVersion and kind and its message in raw), without a
// resourceVersion. The list answer is the same envelope around the list's
// message, whose field 1 is the ListMeta and field 2 each item (every
// built-in list is laid out so). An item is its stored message followed by
// one more field 1 (ObjectMeta) holding only field 6 (resourceVersion):
// protobuf merges a repeated embedded message into the first, so the item
// decodes as the stored object with its resourceVersion set, exactly as
// the decoded path answers it (TestProtobufListMatchesDecoded).

// Field numbers of the messages spliced here (k8s.io/apimachinery's
// generated.proto files).
const (
	unknownTypeMeta   protowire.Number = 1 // runtime.Unknown.typeMeta
	unknownRaw        protowire.Number = 2 // runtime.Unknown.raw
	typeMetaAPIVer    protowire.Number = 1 // runtime.TypeMeta.apiVersion
	typeMetaKind      protowire.Number = 2 // runtime.TypeMeta.kind
	listMetadata      protowire.Number = 1 // <Kind>List.metadata
	listItems         protowire.Number = 2 // <Kind>List.items
	objectMetadata    protowire.Number = 1 // <Kind>.metadata
	objectMetaVersion protowire.Number = 6 // ObjectMeta.resourceVersion
)

// protobufMagic starts every Kubernetes protobuf body.
var protobufMagic = []byte("k8s\x00")

// rawListable tells whether the list the request asks for can be written
// from the stored bytes: a protobuf answer of the object itself (no
// Table), of a built-in kind served as stored (no conversion), with no
// selector to evaluate.
func (c *call) rawListable(opts storage.ListOptions) bool {
	return c.acc.info.MediaType == runtime.ContentTypeProtobuf && c.acc.as == "" &&
		c.res.conv == nil && c.res.custom == nil && c.r.Method == http.MethodGet &&
		(opts.Labels == nil || opts.Labels.Empty()) && (opts.Fields == nil || opts.Fields.Empty())
}

// protobufList builds the protobuf answer for a list of kind gvk's items
// from the stored bytes. ok is false when an item is not stored as a gvk
// protobuf envelope (the caller then answers from decoded objects).
func protobufList(l *storage.RawList, gvk schema.GroupVersionKind) (body []byte, ok bool) {
	apiVersion := gvk.GroupVersion().String()
	lm := metav1.ListMeta{ResourceVersion: l.ResourceVersion, Continue: l.Continue}
	meta, err := lm.Marshal()
	if err != nil {
		return nil, false
	}
	msgs := make([][]byte, len(l.Items))
	revs := make([]string, len(l.Items))
	size := protowire.SizeTag(listMetadata) + protowire.SizeBytes(len(meta))
	for i, kv := range l.Items {
		msg, ok := storedMessage(kv.Value, apiVersion, gvk.Kind)
		if !ok {
			return nil, false
		}
		msgs[i], revs[i] = msg, strconv.FormatInt(kv.ModRevision, 10)
		size += protowire.SizeTag(listItems) + protowire.SizeBytes(len(msg)+versionFieldSize(revs[i]))
	}
	typeMeta := runtime.TypeMeta{APIVersion: apiVersion, Kind: gvk.Kind + "List"}
	tm, err := typeMeta.Marshal()
	if err != nil {
		return nil, false
	}
	total := len(protobufMagic) + protowire.SizeTag(unknownTypeMeta) + protowire.SizeBytes(len(tm)) +
		protowire.SizeTag(unknownRaw) + protowire.SizeBytes(size)
	b := make([]byte, 0, total)
	b = append(b, protobufMagic...)
	b = protowire.AppendTag(b, unknownTypeMeta, protowire.BytesType)
	b = protowire.AppendBytes(b, tm)
	b = protowire.AppendTag(b, unknownRaw, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	b = protowire.AppendTag(b, listMetadata, protowire.BytesType)
	b = protowire.AppendBytes(b, meta)
	for i, msg := range msgs {
		b = protowire.AppendTag(b, listItems, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(msg)+versionFieldSize(revs[i])))
		b = append(b, msg...)
		b = appendVersionField(b, revs[i])
	}
	return b, true
}

// versionFieldSize is the size of appendVersionField's bytes for rv.
func versionFieldSize(rv string) int {
	inner := protowire.SizeTag(objectMetaVersion) + protowire.SizeBytes(len(rv))
	return protowire.SizeTag(objectMetadata) + protowire.SizeBytes(inner)
}

// appendVersionField appends an ObjectMeta holding only resourceVersion rv.
func appendVersionField(b []byte, rv string) []byte {
	inner := protowire.SizeTag(objectMetaVersion) + protowire.SizeBytes(len(rv))
	b = protowire.AppendTag(b, objectMetadata, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	b = protowire.AppendTag(b, objectMetaVersion, protowire.BytesType)
	return protowire.AppendString(b, rv)
}

// storedMessage returns the object message inside a stored protobuf
// envelope, if the envelope says apiVersion and kind.
func storedMessage(stored []byte, apiVersion, kind string) ([]byte, bool) {
	rest, found := bytes.CutPrefix(stored, protobufMagic)
	if !found {
		return nil, false
	}
	var raw []byte
	typeOK := false
	ok := bytesFields(rest, func(num protowire.Number, v []byte) {
		switch num {
		case unknownTypeMeta:
			typeOK = typeMetaIs(v, apiVersion, kind)
		case unknownRaw:
			raw = v
		}
	})
	return raw, ok && typeOK && raw != nil
}

// typeMetaIs tells whether a runtime.TypeMeta message names apiVersion and
// kind.
func typeMetaIs(b []byte, apiVersion, kind string) bool {
	versionOK, kindOK := false, false
	ok := bytesFields(b, func(num protowire.Number, v []byte) {
		switch num {
		case typeMetaAPIVer:
			versionOK = string(v) == apiVersion
		case typeMetaKind:
			kindOK = string(v) == kind
		}
	})
	return ok && versionOK && kindOK
}

// bytesFields calls fn with the number and value of each length-delimited
// field of message b, skipping the other fields; false when b is not a
// well-formed message.
func bytesFields(b []byte, fn func(num protowire.Number, v []byte)) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return false
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		fn(num, v)
	}
	return true
}

// writeProtobufList answers the list from the stored bytes when it can;
// false means the caller answers from decoded objects.
func (c *call) writeProtobufList(opts storage.ListOptions) (bool, error) {
	raw, err := c.res.store.ListRaw(c.ctx, opts)
	if err != nil {
		return false, err
	}
	body, ok := protobufList(raw, c.res.GVK)
	if !ok {
		return false, nil
	}
	c.writeWarnings()
	h := c.w.Header()
	h.Set("Content-Type", runtime.ContentTypeProtobuf)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.w.WriteHeader(http.StatusOK)
	if _, err := c.w.Write(body); err != nil {
		c.s.cfg.Logger.Debug("write response", "err", err)
	}
	return true, nil
}
