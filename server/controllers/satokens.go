package controllers

import (
	"bytes"
	"context"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"labctl/server/authn"
)

// The tokens controller looks after the Secrets of type
// kubernetes.io/service-account-token, as upstream's does since 1.24 (it
// no longer makes them; users do, naming the service account in the
// kubernetes.io/service-account.name annotation):
//
//   - It fills the Secret's data: token (a long-lived token signed with
//     the service account key, which the API accepts while the Secret
//     holds it), ca.crt (the cluster CA) and namespace, and records the
//     service account's UID in kubernetes.io/service-account.uid.
//   - A Secret whose service account does not exist, or no longer has the
//     recorded UID, is deleted.
//   - When a service account goes, its token Secrets go with it.
//
// Without a service account key it does nothing.

// tokensKey is one item of work: a Secret, or a ServiceAccount that went.
type tokensKey struct {
	secret          bool
	namespace, name string
	uid             types.UID // the service account's, when it went
}

type serviceAccountTokens struct {
	cs      kubernetes.Interface
	issuer  *authn.TokenIssuer
	rootCA  []byte
	secrets informers.SharedInformerFactory // token Secrets only
	secretL corelisters.SecretLister
	saL     corelisters.ServiceAccountLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[tokensKey]
	log     *slog.Logger
}

func newServiceAccountTokens(cs kubernetes.Interface, f informerSet, cfg Config) controller {
	log := cfg.Logger.With("controller", "serviceaccount-token")
	c := &serviceAccountTokens{cs: cs, rootCA: cfg.RootCA, log: log}
	if cfg.ServiceAccountKey == nil {
		return c
	}
	issuer, err := authn.NewTokenIssuer(authn.LegacyIssuer, cfg.ServiceAccountKey, nil)
	if err != nil {
		log.Error("the tokens controller cannot start", "err", err)
		return c
	}
	c.issuer = issuer
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[tokensKey](),
		workqueue.TypedRateLimitingQueueConfig[tokensKey]{Name: "serviceaccount_tokens"})
	c.secrets = informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "type=" + string(corev1.SecretTypeServiceAccountToken)
	}))
	secretInf := c.secrets.Core().V1().Secrets()
	saInf := f.Core().V1().ServiceAccounts()
	c.secretL, c.saL = secretInf.Lister(), saInf.Lister()
	c.synced = []cache.InformerSynced{secretInf.Informer().HasSynced, saInf.Informer().HasSynced}
	enqueueSecret := func(obj any) {
		if s, ok := obj.(*corev1.Secret); ok {
			c.queue.Add(tokensKey{secret: true, namespace: s.Namespace, name: s.Name})
		}
	}
	// c.secrets starts in run, after the manager registers the handlers.
	f.addEventHandler(secretInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueSecret,
		UpdateFunc: func(_, obj any) { enqueueSecret(obj) },
	})
	f.addEventHandler(saInf.Informer(), cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if sa, ok := deletedObject[*corev1.ServiceAccount](obj); ok {
				c.queue.Add(tokensKey{namespace: sa.Namespace, name: sa.Name, uid: sa.UID})
			}
		},
	})
	return c
}

func (c *serviceAccountTokens) name() string { return "serviceaccount-token" }

func (c *serviceAccountTokens) run(ctx context.Context) {
	if c.issuer == nil {
		return
	}
	c.secrets.Start(ctx.Done())
	defer c.secrets.Shutdown()
	runWorkers(ctx, c.queue, c.synced, 2, c.log, c.sync)
}

func (c *serviceAccountTokens) sync(ctx context.Context, key tokensKey) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if key.secret {
		return c.syncSecret(ctx, key)
	}
	return c.syncServiceAccountGone(ctx, key)
}

// serviceAccount returns the service account name in ns with the UID uid
// (any when ""), from the cache or, on a miss, from the API; nil when
// there is none.
func (c *serviceAccountTokens) serviceAccount(ctx context.Context, ns, name string, uid types.UID) (*corev1.ServiceAccount, error) {
	sa, err := c.saL.ServiceAccounts(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && uid != "" && sa.UID != uid) {
		// The cache may be behind a service account just created.
		sa, err = c.cs.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	case uid != "" && sa.UID != uid:
		return nil, nil
	}
	return sa, nil
}

func (c *serviceAccountTokens) syncSecret(ctx context.Context, key tokensKey) error {
	cached, err := c.secretL.Secrets(key.namespace).Get(key.name)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if cached.Type != corev1.SecretTypeServiceAccountToken || cached.DeletionTimestamp != nil {
		return nil
	}
	saName := cached.Annotations[corev1.ServiceAccountNameKey]
	sa, err := c.serviceAccount(ctx, key.namespace, saName, types.UID(cached.Annotations[corev1.ServiceAccountUIDKey]))
	if err != nil {
		return err
	}
	if sa == nil {
		c.log.Info("deleting a token secret whose service account does not exist", "secret", key.namespace+"/"+key.name, "serviceaccount", saName)
		return c.deleteSecret(ctx, cached)
	}
	// Fill it from the live Secret, not the cache.
	secret, err := c.cs.CoreV1().Secrets(key.namespace).Get(ctx, key.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	needsCA := len(c.rootCA) > 0 && !bytes.Equal(secret.Data[corev1.ServiceAccountRootCAKey], c.rootCA)
	needsNamespace := len(secret.Data[corev1.ServiceAccountNamespaceKey]) == 0
	needsToken := len(secret.Data[corev1.ServiceAccountTokenKey]) == 0
	if !needsCA && !needsNamespace && !needsToken {
		return nil
	}
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	if needsCA {
		secret.Data[corev1.ServiceAccountRootCAKey] = c.rootCA
	}
	if needsNamespace {
		secret.Data[corev1.ServiceAccountNamespaceKey] = []byte(secret.Namespace)
	}
	if needsToken {
		token, err := c.issuer.LegacyToken(sa, secret)
		if err != nil {
			return err
		}
		secret.Data[corev1.ServiceAccountTokenKey] = []byte(token)
	}
	secret.Annotations[corev1.ServiceAccountNameKey] = sa.Name
	secret.Annotations[corev1.ServiceAccountUIDKey] = string(sa.UID)
	_, err = c.cs.CoreV1().Secrets(key.namespace).Update(ctx, secret, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// syncServiceAccountGone deletes the token Secrets of a service account
// that was deleted, unless it is back with the same UID.
func (c *serviceAccountTokens) syncServiceAccountGone(ctx context.Context, key tokensKey) error {
	if sa, err := c.serviceAccount(ctx, key.namespace, key.name, key.uid); err != nil || sa != nil {
		return err
	}
	secrets, err := c.secretL.Secrets(key.namespace).List(labels.Everything())
	if err != nil {
		return err
	}
	for _, s := range secrets {
		if s.Type != corev1.SecretTypeServiceAccountToken || s.Annotations[corev1.ServiceAccountNameKey] != key.name {
			continue
		}
		if uid := s.Annotations[corev1.ServiceAccountUIDKey]; uid != "" && key.uid != "" && types.UID(uid) != key.uid {
			continue
		}
		if err := c.deleteSecret(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// deleteSecret deletes that Secret (by UID) if it is still there.
func (c *serviceAccountTokens) deleteSecret(ctx context.Context, s *corev1.Secret) error {
	err := c.cs.CoreV1().Secrets(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}
