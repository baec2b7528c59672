// Package openapi publishes the OpenAPI documents of the API server:
//
//	/openapi/v2                    Swagger 2.0, JSON or protobuf (Accept:
//	                               application/com.github.proto-openapi.spec.v2@v1.0+protobuf)
//	/openapi/v3                    index: {"paths": {"apis/apps/v1": {"serverRelativeURL": ...?hash=...}}}
//	/openapi/v3/api/v1             OpenAPI 3.0 of one group-version, JSON or protobuf
//	/openapi/v3/apis/<group>/<version>
//
// kubectl 1.27 and 1.28 and helm read /openapi/v2 for client-side
// validation and kubectl explain; kubectl 1.29 and later read /openapi/v3:
// a PATCH operation carrying x-kubernetes-group-version-kind and a
// fieldValidation parameter tells them the server validates fields itself
// (they then send fieldValidation=Strict), and explain finds kinds by the
// x-kubernetes-group-version-kind of components.schemas.
//
// # Definitions
//
// zz_generated.openapi.go holds GetOpenAPIDefinitions: the schemas of every
// type of k8s.io/api and of the apimachinery types they use (meta/v1,
// runtime, intstr, resource, version), written by kube-openapi's
// openapi-gen from the +k8s:openapi-gen=true tags of those packages. It is
// checked in; regenerate it after changing the k8s.io/api,
// k8s.io/apimachinery or k8s.io/kube-openapi versions in go.mod:
//
//	go generate ./server/openapi
//
// which runs ./gen (see there). It works offline once openapi-gen's
// modules are in the module cache.
//
// # Documents
//
// New takes the served resources (Resource: kind, plural, scope, verbs,
// subresources) and a runtime.Scheme holding their Go types. For each
// resource it describes the operations kube-apiserver has, on the same
// paths (/api/v1/namespaces/{namespace}/pods/{name},
// /apis/apps/v1/deployments, ...), with the same operation ids, the
// x-kubernetes-action and x-kubernetes-group-version-kind extensions and
// the query parameters (dryRun, fieldManager, fieldValidation, force, ...).
// kube-openapi's builder (v2) and builder3 (v3) assemble the documents
// with the definitions the operations reach; definitions are named
// io.k8s.api.core.v1.Pod and so on, and carry the group-version-kinds the
// scheme registers for their type.
//
// Documents are built on their first request (or by Warm), one at a time,
// and kept only gzip-compressed, as they are sent to clients that accept
// gzip (client-go does); ETags answer conditional requests. The v3 index
// needs the hash of every group-version document, so its first request
// builds them all. For the built-in resources of kube-apiserver a build of
// everything takes about 0.7 s and leaves some 2 MB of heap; the build's
// transient memory is handed back to the OS at once (see
// Config.KeepFreedMemory). Update replaces the resources at run time: the
// v2 document and the v3 documents of the group-versions that changed are
// rebuilt on their next request.
//
// Kinds the scheme does not know are custom resources: their schema is
// Resource.Schema (or a permissive object) named like the apiextensions
// server names them (com.example.stable.v1.CronTab).
package openapi

//go:generate go run ./gen
