package images

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// PullPolicy is a container's imagePullPolicy, with the API's values.
type PullPolicy string

// The pull policies, as the Kubernetes API spells them.
const (
	PullAlways       PullPolicy = "Always"
	PullIfNotPresent PullPolicy = "IfNotPresent"
	PullNever        PullPolicy = "Never"
)

// DefaultPullPolicy is the policy the API server gives a container that
// names none: Always when the image's tag is latest or it has neither tag
// nor digest, IfNotPresent otherwise (also for a name that does not parse,
// as upstream does).
func DefaultPullPolicy(image string) PullPolicy {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return PullIfNotPresent
	}
	tag := ""
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	_, digested := named.(reference.Digested)
	if tag == "latest" || (tag == "" && !digested) {
		return PullAlways
	}
	return PullIfNotPresent
}

// ShouldPull tells, as upstream's kubelet does, whether an image must be
// pulled under policy when it is (or is not) present on the node. An empty
// policy means the default for the image, which the caller resolves with
// DefaultPullPolicy first.
func ShouldPull(policy PullPolicy, present bool) bool {
	switch policy {
	case PullNever:
		return false
	case PullAlways:
		return true
	case PullIfNotPresent:
		return !present
	}
	return false
}

// Normalize returns the full name containerd stores an image under:
// `nginx` is docker.io/library/nginx:latest, `me/app:1` is
// docker.io/me/app:1, `nginx@sha256:...` is docker.io/library/nginx@sha256:...
// (a digest and no tag gets no tag), `registry.local:5000/app` is
// registry.local:5000/app:latest.
func Normalize(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("couldn't parse image name %q: %w", image, err)
	}
	return reference.TagNameOnly(named).String(), nil
}

// Familiar returns the short form of a full image name, as docker shows it
// (docker.io/library/nginx:latest is nginx:latest); a name that does not
// parse comes back as it is.
func Familiar(name string) string {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name
	}
	return reference.FamiliarString(named)
}

// splitName returns the registry host and the repository path of a full
// image name (docker.io/library/nginx:1 is "docker.io", "library/nginx").
func splitName(name string) (host, repo string, err error) {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", "", err
	}
	return reference.Domain(named), reference.Path(named), nil
}

// repoOf returns the repository of a full image name without tag or
// digest (docker.io/library/nginx for docker.io/library/nginx:1).
func repoOf(name string) string {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name
	}
	return named.Name()
}

// applyDefaultImageTag adds :latest to an image with neither tag nor
// digest, keeping the name as written otherwise, as upstream's kubelet does
// before it looks the image up.
func applyDefaultImageTag(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("couldn't parse image name %q: %w", image, err)
	}
	_, tagged := named.(reference.Tagged)
	_, digested := named.(reference.Digested)
	if !tagged && !digested && !strings.HasSuffix(image, ":latest") {
		image += ":latest"
	}
	return image, nil
}
