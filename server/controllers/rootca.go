package controllers

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// rootCAName is the ConfigMap that carries the cluster CA into every
// namespace, for pods to verify the API server with.
const rootCAName = "kube-root-ca.crt"

// The root CA publisher keeps kube-root-ca.crt, with the cluster CA under
// ca.crt, in every active namespace, putting it back when it is changed or
// deleted, as upstream's root-ca-cert-publisher does.
func newRootCA(cs kubernetes.Interface, f informerSet, ca []byte, log *slog.Logger) controller {
	p := newPerNamespace("root-ca-cert-publisher", f, log)
	p.kept = keptFactory(cs, rootCAName)
	cms := p.kept.Core().V1().ConfigMaps()
	p.watchKept(cms.Informer(), rootCAName)
	want := map[string]string{"ca.crt": string(ca)}
	annotations := map[string]string{"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}
	p.sync = func(ctx context.Context, ns *corev1.Namespace) error {
		cm, err := cms.Lister().ConfigMaps(ns.Name).Get(rootCAName)
		switch {
		case apierrors.IsNotFound(err):
			_, err = cs.CoreV1().ConfigMaps(ns.Name).Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: rootCAName, Annotations: annotations},
				Data:       want,
			}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return nil
			}
			return err
		case err != nil:
			return err
		case len(cm.Data) == 1 && cm.Data["ca.crt"] == want["ca.crt"]:
			return nil
		}
		cm = cm.DeepCopy()
		cm.Data = want
		_, err = cs.CoreV1().ConfigMaps(ns.Name).Update(ctx, cm, metav1.UpdateOptions{})
		return err
	}
	return p
}
