package auth

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Scope bounds. A docker client asks for one to three scopes (a push with
// a cross-repository mount); the bounds keep a token request, and the
// token that answers it, small.
const (
	MaxScopes       = 16  // resource scopes in one token request
	MaxScopeLength  = 512 // bytes of one resource scope
	MaxNameLength   = 255 // bytes of a repository name, as distribution-spec
	maxActions      = 8   // actions in one resource scope
	maxActionLength = 32
)

// Resource types and the actions Berth knows (CNCF Distribution's token
// scope, docs/spec/auth/scope.md).
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry"

	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
	ActionAll    = "*"

	// CatalogName is the registry resource that /v2/_catalog needs.
	CatalogName = "catalog"
)

var (
	// repoNameRe is distribution-spec's repository name.
	repoNameRe = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	typeRe     = regexp.MustCompile(`^[a-z0-9]+(\([a-z0-9]+\))?$`)
	actionRe   = regexp.MustCompile(`^([a-z]+|\*)$`)
)

// Scope is one resource scope, "repository:team-a/app:pull,push": a
// resource type (with an optional class, "repository(plugin)"), a name
// and the actions asked for or granted. Actions are sorted and unique.
type Scope struct {
	Type    string
	Class   string
	Name    string
	Actions []string
}

// String formats the scope as it is written in a token request or a
// WWW-Authenticate challenge.
func (s Scope) String() string {
	t := s.Type
	if s.Class != "" {
		t += "(" + s.Class + ")"
	}
	return t + ":" + s.Name + ":" + strings.Join(s.Actions, ",")
}

// Has says whether the scope includes action, directly or through "*".
func (s Scope) Has(action string) bool {
	return slices.Contains(s.Actions, action) || slices.Contains(s.Actions, ActionAll)
}

// ScopeError says what is wrong with one scope of a request.
type ScopeError struct {
	Scope  string // as received, cut to MaxScopeLength
	Reason string
}

func (e *ScopeError) Error() string {
	return fmt.Sprintf("invalid scope %q: %s", e.Scope, e.Reason)
}

// ParseScope reads one resource scope. The name is everything between the
// first and the last colon (scope.md allows a host:port prefix, which
// Berth, serving its own names only, refuses). A repository name must be
// a distribution-spec repository name; a registry scope must name the
// catalog. Actions are lower-case words or "*"; unknown words are kept
// (the decision grants nothing for them) so a newer client still gets
// what it may have.
func ParseScope(s string) (Scope, error) {
	bad := func(format string, args ...any) (Scope, error) {
		shown := s
		if len(shown) > MaxScopeLength {
			shown = shown[:MaxScopeLength] + "..."
		}
		return Scope{}, &ScopeError{Scope: shown, Reason: fmt.Sprintf(format, args...)}
	}
	if len(s) > MaxScopeLength {
		return bad("%d bytes, at most %d allowed", len(s), MaxScopeLength)
	}
	first, last := strings.IndexByte(s, ':'), strings.LastIndexByte(s, ':')
	if first < 0 || first == last {
		return bad("want type:name:actions, such as repository:team-a/app:pull,push")
	}
	typ, name, acts := s[:first], s[first+1:last], s[last+1:]
	if !typeRe.MatchString(typ) {
		return bad("resource type %q is not a lower-case word", typ)
	}
	sc := Scope{Type: typ}
	if i := strings.IndexByte(typ, '('); i >= 0 {
		sc.Type, sc.Class = typ[:i], strings.TrimSuffix(typ[i+1:], ")")
	}
	switch sc.Type {
	case TypeRepository:
		switch {
		case name == "":
			return bad("no repository name")
		case len(name) > MaxNameLength:
			return bad("repository name is %d bytes, at most %d allowed", len(name), MaxNameLength)
		case strings.Contains(name, ":"):
			return bad("repository name %q has a host or port; name the repository alone", name)
		case !repoNameRe.MatchString(name):
			return bad("%q is not a repository name: lower-case path components such as team-a/app", name)
		}
	case TypeRegistry:
		if name != CatalogName {
			return bad("registry scopes name %q, not %q", CatalogName, name)
		}
	default:
		return bad("unknown resource type %q: want %s or %s", sc.Type, TypeRepository, TypeRegistry)
	}
	sc.Name = name
	if acts == "" {
		return bad("no actions: add pull, push, delete or *")
	}
	parts := strings.Split(acts, ",")
	if len(parts) > maxActions {
		return bad("%d actions, at most %d allowed", len(parts), maxActions)
	}
	for _, a := range parts {
		if len(a) > maxActionLength || !actionRe.MatchString(a) {
			return bad("action %q is not a lower-case word or *", a)
		}
		sc.Actions = append(sc.Actions, a)
	}
	slices.Sort(sc.Actions)
	sc.Actions = slices.Compact(sc.Actions)
	return sc, nil
}

// ParseScopes reads the scope parameters of a token request: each value
// may hold several scopes separated by spaces (docker sends one value,
// others repeat the parameter). Scopes naming the same resource are merged,
// and the result is sorted, so equal requests give equal tokens. An empty
// request is valid: a token that only proves who the caller is (docker
// login asks for one).
func ParseScopes(values []string) ([]Scope, error) {
	var out []Scope
	n, size := 0, 0
	for _, v := range values {
		if size += len(v); size > MaxScopes*MaxScopeLength {
			return nil, fmt.Errorf("scope parameters of %d bytes or more, at most %d allowed", size, MaxScopes*MaxScopeLength)
		}
		for _, f := range strings.Fields(v) {
			if n++; n > MaxScopes {
				return nil, fmt.Errorf("more than %d scopes in one request", MaxScopes)
			}
			sc, err := ParseScope(f)
			if err != nil {
				return nil, err
			}
			out = mergeScope(out, sc)
		}
	}
	slices.SortFunc(out, compareScopes)
	return out, nil
}

func mergeScope(list []Scope, sc Scope) []Scope {
	for i, have := range list {
		if have.Type == sc.Type && have.Class == sc.Class && have.Name == sc.Name {
			acts := append(slices.Clone(have.Actions), sc.Actions...)
			slices.Sort(acts)
			list[i].Actions = slices.Compact(acts)
			return list
		}
	}
	return append(list, sc)
}

func compareScopes(a, b Scope) int {
	if c := strings.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	if c := strings.Compare(a.Class, b.Class); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// FormatScopes joins scopes with spaces, as in a challenge's scope
// parameter.
func FormatScopes(scopes []Scope) string {
	parts := make([]string, len(scopes))
	for i, s := range scopes {
		parts[i] = s.String()
	}
	return strings.Join(parts, " ")
}
