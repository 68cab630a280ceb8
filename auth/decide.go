package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/berth-registry/berth/fsm/resource"
)

// IdentityKind says how a caller signed in.
type IdentityKind int

const (
	// Anonymous sent no credentials (or a token without a subject).
	Anonymous IdentityKind = iota
	// UserIdentity signed in with a User's password.
	UserIdentity
	// RobotIdentity signed in with a Robot's secret.
	RobotIdentity
)

func (k IdentityKind) String() string {
	switch k {
	case UserIdentity:
		return "user"
	case RobotIdentity:
		return "robot"
	}
	return "anonymous"
}

// Identity is who a request acts as, once authenticated.
type Identity struct {
	Kind IdentityKind
	Name string // empty for Anonymous
	// ClusterAdmin may do everything everywhere (a User with
	// spec.clusterAdmin, or the admin token).
	ClusterAdmin bool
	// Namespace and Role confine a robot: it acts only in Namespace,
	// with at most the more powerful of Role and any role its namespace
	// gives it as a member.
	Namespace string
	Role      string
	// Federated marks a user an OIDC provider vouched for: the name is
	// the provider's, and no User resource need exist (one with the same
	// name may disable the user or make them a cluster admin).
	Federated bool
}

// Subject is the token's sub claim for this identity: "" for anonymous,
// the user's name, or "robot:" and the robot's name, so a robot and a user
// of the same name are never confused.
func (id Identity) Subject() string {
	switch id.Kind {
	case UserIdentity:
		if id.Federated {
			return "oidc:" + id.Name
		}
		return id.Name
	case RobotIdentity:
		return "robot:" + id.Name
	}
	return ""
}

// Namespaces reads namespaces from the state the decision is made at (in
// a node, an FSM view at the read index, so a removed member is refused
// on every node as soon as the change is acknowledged).
type Namespaces interface {
	// Namespace returns the namespace's spec; ok is false when there is
	// no such namespace. An error (a stored document that no longer
	// decodes) makes the decision refuse.
	Namespace(name string) (spec resource.NamespaceSpec, ok bool, err error)
}

// NamespaceOf is the namespace that owns a repository: its first path
// component ("team-a" for "team-a/app/api"; a single-component name such
// as "team-a" belongs to the namespace of the same name).
func NamespaceOf(repository string) string {
	ns, _, _ := strings.Cut(repository, "/")
	return ns
}

// NamespaceActions lists what id may do in namespace ns, in the order of
// the role table: cluster admins everything (even in a namespace not yet
// created), members what their role allows, robots only in their own
// namespace, and anyone pull in a public namespace. Actions on a
// namespace that does not exist are refused to all but cluster admins.
func NamespaceActions(id Identity, ns string, nss Namespaces) ([]string, error) {
	if id.ClusterAdmin && id.Kind != Anonymous {
		return Actions(), nil
	}
	spec, ok, err := nss.Namespace(ns)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	}
	if !ok {
		return nil, nil
	}
	role := ""
	switch id.Kind {
	case UserIdentity:
		role, _ = spec.RoleOf(id.Name, false)
	case RobotIdentity:
		if id.Namespace == ns {
			member, _ := spec.RoleOf(id.Name, true)
			role = higherRole(id.Role, member)
		}
	}
	allowed := RoleActions(role)
	if spec.Public && !slices.Contains(allowed, ActionPull) {
		allowed = append([]string{ActionPull}, allowed...)
	}
	return allowed, nil
}

// Can says whether id may do action in namespace ns.
func Can(id Identity, ns, action string, nss Namespaces) (bool, error) {
	allowed, err := NamespaceActions(id, ns, nss)
	return slices.Contains(allowed, action), err
}

// Decide turns the scopes a token request asks for into the access the
// token grants: for each scope, the actions asked for that id may do
// ("*" asks for every repository action: pull, push, delete). A scope of
// which nothing is granted is left out, as Distribution's token spec
// asks, rather than refusing the request: the registry answers the
// client's later request with 401 or 403. The catalog (registry:catalog:*)
// is for cluster admins only, since it lists every namespace.
//
// An error means the state could not be read; grant nothing then.
func Decide(id Identity, scopes []Scope, nss Namespaces) ([]Access, error) {
	granted := []Access{}
	for _, sc := range scopes {
		switch sc.Type {
		case TypeRegistry:
			if sc.Name == CatalogName && id.ClusterAdmin && id.Kind != Anonymous && sc.Has(ActionAll) {
				granted = append(granted, Access{Type: TypeRegistry, Name: CatalogName, Actions: []string{ActionAll}})
			}
		case TypeRepository:
			if sc.Class != "" {
				continue // plugin repositories and the like: Berth serves images
			}
			allowed, err := NamespaceActions(id, NamespaceOf(sc.Name), nss)
			if err != nil {
				return nil, err
			}
			var acts []string
			for _, a := range repositoryActions {
				if sc.Has(a) && slices.Contains(allowed, a) {
					acts = append(acts, a)
				}
			}
			if len(acts) > 0 {
				granted = append(granted, Access{Type: TypeRepository, Name: sc.Name, Actions: acts})
			}
		}
	}
	return granted, nil
}
