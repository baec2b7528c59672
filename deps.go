//go:build labctl_pin

// This file pins the modules that labctl is built on before every one of them is
// imported by working code, so that later work finds them at agreed versions in
// go.mod. It is compiled only with the labctl_pin build tag and adds nothing to
// the binary; drop an import here once real code imports the module.
package main

import _ "go.etcd.io/etcd/client/v3"

// The kubelet's streaming server and the stats summary's types.
import (
	_ "k8s.io/cri-streaming/pkg/streaming/portforward"
	_ "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	_ "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)
