package proxy

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"labctl/internal/apitest"
	"labctl/server/apiserver"
)

// Against labctl's own API server: the range it was given, and nothing
// created.
func TestDiscoverServiceCIDRs(t *testing.T) {
	want := netip.MustParsePrefix("10.96.0.0/12")
	rc := apitest.Start(t, func(c *apiserver.Config) { c.ServiceCIDR = want })
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DiscoverServiceCIDRs(bg, cs)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []netip.Prefix{want}) {
		t.Errorf("DiscoverServiceCIDRs = %v, want [%s]", got, want)
	}
	list, err := cs.CoreV1().Services("").List(bg, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		if s.Name == "labctl-proxy-service-cidr-probe" {
			t.Errorf("the dry run created %s/%s", s.Namespace, s.Name)
		}
	}
}

func TestDiscoverServiceCIDRsAnswers(t *testing.T) {
	invalid := func(msg string) error {
		return apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, "x",
			field.ErrorList{field.Invalid(field.NewPath("spec", "clusterIPs").Index(0), "0.0.0.1", msg)})
	}
	for _, c := range []struct {
		name    string
		answers []error // to the creates, in turn
		want    []netip.Prefix
		wantErr bool
		creates int
	}{
		{name: "upstream's message",
			answers: []error{invalid("failed to allocate IP 0.0.0.1: the provided IP (0.0.0.1) is not in the valid range. The range of valid IPs is 10.43.0.0/16")},
			want:    []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")}, creates: 1},
		{name: "several ranges",
			answers: []error{invalid("The range of valid IPs is 10.43.0.0/16, 10.44.0.0/24.")},
			want:    []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16"), netip.MustParsePrefix("10.44.0.0/24")}, creates: 1},
		{name: "a range holds the first address",
			answers: []error{nil, invalid("... The range of valid IPs is 0.0.0.0/8")},
			want:    []netip.Prefix{netip.MustParsePrefix("0.0.0.0/8")}, creates: 2},
		{name: "the server is busy, then answers",
			answers: []error{apierrors.NewServiceUnavailable("starting"), errors.New("connection refused"),
				invalid("The range of valid IPs is 10.43.0.0/16")},
			want: []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")}, creates: 3},
		{name: "forbidden", answers: []error{apierrors.NewForbidden(schema.GroupResource{Resource: "services"}, "x", errors.New("no"))},
			wantErr: true, creates: 1},
		{name: "another refusal", answers: []error{invalid("spec.ports: Required value"), invalid("spec.ports: Required value")},
			wantErr: true, creates: 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := fake.NewClientset()
			creates := 0
			cs.PrependReactor("create", "services", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if dry := a.(k8stesting.CreateActionImpl).CreateOptions.DryRun; !slices.Equal(dry, []string{metav1.DryRunAll}) {
					t.Errorf("a create with dryRun %v", dry)
				}
				creates++
				if creates > len(c.answers) {
					t.Fatalf("%d creates", creates)
				}
				return true, nil, c.answers[creates-1]
			})
			got, err := DiscoverServiceCIDRs(bg, cs)
			if (err != nil) != c.wantErr || !slices.Equal(got, c.want) {
				t.Errorf("DiscoverServiceCIDRs = %v, %v; want %v (error %t)", got, err, c.want, c.wantErr)
			}
			if creates != c.creates {
				t.Errorf("%d creates, want %d", creates, c.creates)
			}
		})
	}
}
