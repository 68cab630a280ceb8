package auth

import "slices"

// Roles. The four namespace roles are what a Namespace's members get;
// cluster-admin is a property of a User (spec.clusterAdmin) or the admin
// token, not a member role.
const (
	RoleAdmin        = "admin"
	RoleMaintainer   = "maintainer"
	RoleDeveloper    = "developer"
	RoleGuest        = "guest"
	RoleClusterAdmin = "cluster-admin"
)

// Actions beyond the repository actions of a token scope: applying the
// namespace's resources and running garbage collection on it go through
// the admin API, but are decided by the same table.
const (
	ActionApply = "apply"
	ActionGC    = "gc"
)

// allActions are every action the table knows, in the order of the docs.
var allActions = []string{ActionPull, ActionPush, ActionDelete, ActionApply, ActionGC}

// repositoryActions are the actions a repository scope can grant.
var repositoryActions = []string{ActionDelete, ActionPull, ActionPush}

// roleTable is the one place that says what each role may do. README and
// docs/design.md print it; TestRoleTable pins it.
var roleTable = map[string][]string{
	RoleClusterAdmin: allActions,
	RoleAdmin:        allActions,
	RoleMaintainer:   {ActionPull, ActionPush, ActionDelete},
	RoleDeveloper:    {ActionPull, ActionPush},
	RoleGuest:        {ActionPull},
}

// rank orders the namespace roles, most powerful first.
var rank = []string{RoleAdmin, RoleMaintainer, RoleDeveloper, RoleGuest}

// RoleActions lists what a role may do; nil for an unknown role.
func RoleActions(role string) []string {
	return slices.Clone(roleTable[role])
}

// RoleAllows says whether role may do action.
func RoleAllows(role, action string) bool {
	return slices.Contains(roleTable[role], action)
}

// higherRole returns the more powerful of two namespace roles; an empty
// or unknown role loses to any known one.
func higherRole(a, b string) string {
	ia, ib := slices.Index(rank, a), slices.Index(rank, b)
	switch {
	case ia < 0:
		return b
	case ib < 0:
		return a
	case ib < ia:
		return b
	}
	return a
}

// Actions lists every action the role table knows, in the order of the
// docs: pull, push, delete, apply, gc.
func Actions() []string { return slices.Clone(allActions) }

// NamespaceRoles lists the namespace roles, most powerful first.
func NamespaceRoles() []string { return slices.Clone(rank) }
