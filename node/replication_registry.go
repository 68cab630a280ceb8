package node

import (
	"context"
	"fmt"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
	"github.com/berth-registry/berth/node/secrets"
)

// registryRef is the Registry resource a replication policy names,
// resolved: its spec, its generation (part of a running policy's key, so
// an edited Registry restarts the policy) and an HTTP client with its TLS
// settings. Mirror, push and proxy policies resolve their Registry here,
// so the same mistake reads the same in each.
type registryRef struct {
	spec resource.RegistrySpec
	gen  int64
	http *http.Client
}

// resolveRegistry finds and checks the Registry called name at v; apply
// says what the missing resource needs for this kind of policy.
func resolveRegistry(v *fsm.View, name, apply string) (registryRef, error) {
	doc, ok := v.Resource("Registry", name)
	if !ok {
		return registryRef{}, fmt.Errorf("no such resource: Registry %q does not exist: apply it (%s)", name, apply)
	}
	_, reg, err := resource.DecodeRegistry(doc.Document)
	if err != nil {
		return registryRef{}, fmt.Errorf("registry resource %q: %w", name, err)
	}
	if !reg.Enabled {
		return registryRef{}, fmt.Errorf("registry resource %q is disabled (spec.enabled: false)", name)
	}
	hc, err := registryHTTPClient(reg)
	if err != nil {
		return registryRef{}, fmt.Errorf("registry resource %q: %w", name, err)
	}
	return registryRef{spec: reg, gen: doc.Generation, http: hc}, nil
}

// basicCredentials reads the username and password secrets of a
// Registry's basic credentials. sum is a digest of both: it tells a
// rotated secret apart in a policy's key without holding the secret.
func basicCredentials(ctx context.Context, res *secrets.Resolver, registry string, c *resource.Credentials) (user, pass []byte, sum string, err error) {
	if user, err = res.Resolve(ctx, resource.SecretRef{Name: c.SecretRef.Name, Key: "username"}); err != nil {
		return nil, nil, "", fmt.Errorf("registry resource %q credentials: %w", registry, err)
	}
	if pass, err = res.Resolve(ctx, resource.SecretRef{Name: c.SecretRef.Name, Key: "password"}); err != nil {
		return nil, nil, "", fmt.Errorf("registry resource %q credentials: %w", registry, err)
	}
	both := append(append(append([]byte{}, user...), 0), pass...)
	return user, pass, digest.FromBytes(both).String(), nil
}
