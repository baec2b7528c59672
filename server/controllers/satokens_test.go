package controllers_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"labctl/internal/apitest"
	"labctl/server/apiserver"
	"labctl/server/controllers"
)

// defaultServiceAccount creates the default service account in the
// default namespace, as the service account controller does: tests that
// run no controllers need it, since the ServiceAccount admission plugin
// refuses pods without it.
func defaultServiceAccount(tb testing.TB, cfg *rest.Config) {
	tb.Helper()
	cs := kubernetes.NewForConfigOrDie(cfg)
	_, err := cs.CoreV1().ServiceAccounts("default").Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		tb.Fatal(err)
	}
}

func TestServiceAccountTokenSecrets(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cfg := apitest.Start(t, func(c *apiserver.Config) { c.ServiceAccounts = apiserver.ServiceAccountConfig{Key: key} })
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	ctrlCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := controllers.Run(ctrlCtx, controllers.Config{REST: cfg, Identity: "a", RootCA: []byte("the CA"), ServiceAccountKey: key,
			LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond}); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { stop(); <-done })

	sa, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tokenSecret := func(name, saName string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{corev1.ServiceAccountNameKey: saName}},
			Type:       corev1.SecretTypeServiceAccountToken,
		}
	}
	if _, err := cs.CoreV1().Secrets("default").Create(ctx, tokenSecret("builder-token", "builder"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var secret *corev1.Secret
	eventually(t, "the token secret filled", func() error {
		secret, err = cs.CoreV1().Secrets("default").Get(ctx, "builder-token", metav1.GetOptions{})
		if err == nil && len(secret.Data["token"]) == 0 {
			return errString("no token yet")
		}
		return err
	})
	if string(secret.Data["ca.crt"]) != "the CA" || string(secret.Data["namespace"]) != "default" ||
		secret.Annotations[corev1.ServiceAccountUIDKey] != string(sa.UID) {
		t.Errorf("token secret %+v", secret)
	}
	token := string(secret.Data["token"])
	review := func() authenticationv1.TokenReviewStatus {
		t.Helper()
		rev, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return rev.Status
	}
	if st := review(); !st.Authenticated || st.User.Username != "system:serviceaccount:default:builder" || st.User.UID != string(sa.UID) {
		t.Errorf("review of the legacy token: %+v", st)
	}

	// A token secret for a service account that does not exist goes.
	if _, err := cs.CoreV1().Secrets("default").Create(ctx, tokenSecret("ghost-token", "ghost"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ghost's token secret deleted", func() error {
		_, err := cs.CoreV1().Secrets("default").Get(ctx, "ghost-token", metav1.GetOptions{})
		if err == nil {
			return errString("still there")
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})

	// Emptied, the token comes back (the same claims: the same token
	// need not be; it must authenticate).
	secret.Data = nil
	if _, err := cs.CoreV1().Secrets("default").Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the token secret filled again", func() error {
		s, err := cs.CoreV1().Secrets("default").Get(ctx, "builder-token", metav1.GetOptions{})
		if err == nil && len(s.Data["token"]) == 0 {
			return errString("no token yet")
		}
		if err == nil {
			token = string(s.Data["token"])
		}
		return err
	})
	if st := review(); !st.Authenticated {
		t.Errorf("review of the new legacy token: %+v", st)
	}

	// The service account goes, and its token secret with it.
	if err := cs.CoreV1().ServiceAccounts("default").Delete(ctx, "builder", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// (Refused for the missing service account, or, once the controller
	// has been, for the missing secret.)
	if st := review(); st.Authenticated || (st.Error != `[invalid bearer token, serviceaccounts "builder" not found]` && st.Error != "[invalid bearer token, token has been invalidated]") {
		t.Errorf("review after the service account went: %+v", st)
	}
	eventually(t, "the token secret deleted with its service account", func() error {
		_, err := cs.CoreV1().Secrets("default").Get(ctx, "builder-token", metav1.GetOptions{})
		if err == nil {
			return errString("still there")
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}
