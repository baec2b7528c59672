package controllers

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The service account controller keeps a ServiceAccount named default in
// every active namespace, as upstream's does: pods that name none run as
// it.
func newServiceAccounts(cs kubernetes.Interface, f informerSet, log *slog.Logger) controller {
	p := newPerNamespace("serviceaccount", f, log)
	p.kept = keptFactory(cs, "default")
	sas := p.kept.Core().V1().ServiceAccounts()
	p.watchKept(sas.Informer(), "default")
	p.sync = func(ctx context.Context, ns *corev1.Namespace) error {
		if _, err := sas.Lister().ServiceAccounts(ns.Name).Get("default"); err == nil {
			return nil
		}
		_, err := cs.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) { // the namespace is going
			return nil
		}
		return err
	}
	return p
}
