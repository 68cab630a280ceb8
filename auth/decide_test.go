package auth

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/fsm/resource"
)

// fakeNamespaces is the state a decision reads, as a map.
type fakeNamespaces map[string]resource.NamespaceSpec

func (f fakeNamespaces) Namespace(name string) (resource.NamespaceSpec, bool, error) {
	if name == "broken" {
		return resource.NamespaceSpec{}, false, errors.New("stored document does not decode")
	}
	s, ok := f[name]
	return s, ok, nil
}

// state: team-a is private with one member per role and a robot member;
// team-b is private; public-ns is public without members.
var state = fakeNamespaces{
	"team-a": {Members: []resource.Member{
		{User: "ada", Role: "admin"}, {User: "max", Role: "maintainer"},
		{User: "dev", Role: "developer"}, {User: "gus", Role: "guest"},
		{Robot: "ci-team-a", Role: "guest"},
	}},
	"team-b":    {Members: []resource.Member{{User: "bob", Role: "admin"}}},
	"public-ns": {Public: true, Members: []resource.Member{{User: "dev", Role: "developer"}}},
}

func user(name string) Identity { return Identity{Kind: UserIdentity, Name: name} }

func TestRoleTable(t *testing.T) {
	want := map[string][]string{
		"cluster-admin": {"pull", "push", "delete", "apply", "gc"},
		"admin":         {"pull", "push", "delete", "apply", "gc"},
		"maintainer":    {"pull", "push", "delete"},
		"developer":     {"pull", "push"},
		"guest":         {"pull"},
		"owner":         nil,
		"":              nil,
	}
	for role, acts := range want {
		for _, a := range Actions() {
			if got := RoleAllows(role, a); got != slices.Contains(acts, a) {
				t.Errorf("RoleAllows(%q, %q) = %v", role, a, got)
			}
		}
		if got := RoleActions(role); !reflect.DeepEqual(got, acts) {
			t.Errorf("RoleActions(%q) = %v, want %v", role, got, acts)
		}
	}
	if !reflect.DeepEqual(NamespaceRoles(), resource.Roles) {
		t.Errorf("auth's roles %v and the Namespace resource's %v differ", NamespaceRoles(), resource.Roles)
	}
	// The table cannot be changed through what it returns.
	RoleActions("guest")[0] = "push"
	Actions()[0] = "x"
	if !RoleAllows("guest", "pull") || RoleAllows("guest", "push") || Actions()[0] != "pull" {
		t.Error("the role table was changed through a returned slice")
	}
}

// Every role × action in a member's namespace, through NamespaceActions
// and Can.
func TestNamespaceActionsByRole(t *testing.T) {
	members := map[string]string{"ada": "admin", "max": "maintainer", "dev": "developer", "gus": "guest"}
	for name, role := range members {
		for _, a := range Actions() {
			ok, err := Can(user(name), "team-a", a, state)
			if err != nil {
				t.Fatal(err)
			}
			if ok != RoleAllows(role, a) {
				t.Errorf("%s (%s) %s in team-a: %v", name, role, a, ok)
			}
			// A role in team-a gives nothing in team-b.
			if ok, _ := Can(user(name), "team-b", a, state); ok {
				t.Errorf("%s (%s of team-a) may %s in team-b", name, role, a)
			}
		}
	}
}

func TestDecide(t *testing.T) {
	scopes := func(s ...string) []Scope {
		out, err := ParseScopes(s)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	robot := Identity{Kind: RobotIdentity, Name: "ci-team-a", Namespace: "team-a", Role: "developer"}
	admin := Identity{Kind: UserIdentity, Name: "root", ClusterAdmin: true}
	tests := []struct {
		name   string
		id     Identity
		scopes []Scope
		want   string // the granted access as scopes, "" for none
	}{
		{"admin asks for all", user("ada"), scopes("repository:team-a/app:*"), "repository:team-a/app:delete,pull,push"},
		{"maintainer asks for all", user("max"), scopes("repository:team-a/app:*"), "repository:team-a/app:delete,pull,push"},
		{"developer asks for all", user("dev"), scopes("repository:team-a/app:*"), "repository:team-a/app:pull,push"},
		{"guest asks for pull and push", user("gus"), scopes("repository:team-a/app:pull,push"), "repository:team-a/app:pull"},
		{"developer asks for delete", user("dev"), scopes("repository:team-a/app:delete"), ""},
		{"single-component name belongs to the namespace", user("dev"), scopes("repository:team-a:push"), "repository:team-a:push"},
		{"deep name", user("dev"), scopes("repository:team-a/x/y/z:pull"), "repository:team-a/x/y/z:pull"},
		{"prefix is a path component, not a string prefix", user("dev"), scopes("repository:team-ab/app:pull"), ""},
		{"non-member on private", user("eve"), scopes("repository:team-a/app:pull"), ""},
		{"anonymous on private", Identity{}, scopes("repository:team-a/app:pull"), ""},
		{"anonymous pulls public", Identity{}, scopes("repository:public-ns/app:pull,push"), "repository:public-ns/app:pull"},
		{"anonymous star on public", Identity{}, scopes("repository:public-ns/app:*"), "repository:public-ns/app:pull"},
		{"member of a public namespace keeps their role", user("dev"), scopes("repository:public-ns/app:*"), "repository:public-ns/app:pull,push"},
		{"non-member pulls public", user("eve"), scopes("repository:public-ns/app:pull"), "repository:public-ns/app:pull"},
		{"unknown namespace", user("dev"), scopes("repository:nowhere/app:pull"), ""},
		{"anonymous in unknown namespace", Identity{}, scopes("repository:nowhere/app:pull"), ""},
		{"robot: higher of its role and its member role", robot, scopes("repository:team-a/app:*"), "repository:team-a/app:pull,push"},
		{"robot cannot leave its namespace", robot, scopes("repository:team-b/app:pull"), ""},
		{"robot pulls public like anyone", robot, scopes("repository:public-ns/app:pull,push"), "repository:public-ns/app:pull"},
		{"robot of another namespace listed as member gets nothing", Identity{Kind: RobotIdentity, Name: "ci-team-a", Namespace: "team-b", Role: "admin"}, scopes("repository:team-a/app:pull"), ""},
		{"robot named like a user gets nothing of the user's", Identity{Kind: RobotIdentity, Name: "ada", Namespace: "team-b", Role: "guest"}, scopes("repository:team-a/app:pull"), ""},
		{"user named like a robot member gets nothing", user("ci-team-a"), scopes("repository:team-a/app:pull"), ""},
		{"cluster admin everywhere", admin, scopes("repository:team-b/app:*", "repository:nowhere/x:delete"), "repository:nowhere/x:delete repository:team-b/app:delete,pull,push"},
		{"catalog for cluster admin", admin, scopes("registry:catalog:*"), "registry:catalog:*"},
		{"catalog refused to a namespace admin", user("ada"), scopes("registry:catalog:*"), ""},
		{"catalog refused to anonymous", Identity{}, scopes("registry:catalog:*"), ""},
		{"anonymous cannot claim cluster admin", Identity{ClusterAdmin: true}, scopes("registry:catalog:*", "repository:team-a/app:pull"), ""},
		{"unknown actions are not granted", user("ada"), scopes("repository:team-a/app:metadata,pull"), "repository:team-a/app:pull"},
		{"plugin class not granted", user("ada"), scopes("repository(plugin):team-a/app:pull"), ""},
		{"several scopes, partly granted", user("dev"), scopes("repository:team-a/app:pull,push repository:team-b/base:pull repository:public-ns/base:pull"), "repository:public-ns/base:pull repository:team-a/app:pull,push"},
		{"no scopes (docker login)", user("dev"), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decide(tt.id, tt.scopes, state)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("Decide returned nil: the access claim would be null, not []")
			}
			var s []Scope
			for _, a := range got {
				s = append(s, Scope{Type: a.Type, Name: a.Name, Actions: a.Actions})
			}
			slices.SortFunc(s, compareScopes)
			if FormatScopes(s) != tt.want {
				t.Errorf("granted %q, want %q", FormatScopes(s), tt.want)
			}
		})
	}
}

func TestDecideFailsClosed(t *testing.T) {
	sc, _ := ParseScopes([]string{"repository:team-a/app:pull repository:broken/app:pull"})
	got, err := Decide(user("ada"), sc, state)
	if err == nil || got != nil || !strings.Contains(err.Error(), "namespace broken") {
		t.Errorf("Decide over an unreadable namespace = %v, %v; want nothing granted and an error", got, err)
	}
}

func TestNamespaceOfAndSubject(t *testing.T) {
	for repo, ns := range map[string]string{"team-a": "team-a", "team-a/app": "team-a", "a/b/c": "a"} {
		if got := NamespaceOf(repo); got != ns {
			t.Errorf("NamespaceOf(%q) = %q", repo, got)
		}
	}
	if user("ci").Subject() == (Identity{Kind: RobotIdentity, Name: "ci"}).Subject() || (Identity{}).Subject() != "" {
		t.Error("subjects of a user and a robot of one name are equal, or anonymous has one")
	}
}
