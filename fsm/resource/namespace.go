package resource

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Roles are the namespace roles, most powerful first. The auth package
// maps each to the actions it allows; this package only checks spelling.
var Roles = []string{"admin", "maintainer", "developer", "guest"}

// maxMembers bounds the members of one namespace: each decision scans
// them, and the whole list is in every snapshot.
const maxMembers = 1000

// NamespaceSpec is the spec of a Namespace: the repositories whose first
// path component is the namespace's name, who may do what in them, and
// how much they may store. A normalized spec lists members sorted (users
// first, then robots, each by name) and the quota in its largest exact
// binary unit, so the same desired state is always the same bytes.
type NamespaceSpec struct {
	// Public lets anyone, signed in or not, pull.
	Public bool
	// Quota is nil when the namespace has no storage limit.
	Quota *NamespaceQuota
	// Members grant roles to users and robots.
	Members []Member
}

// NamespaceQuota bounds what a namespace stores.
type NamespaceQuota struct {
	// Storage is in bytes: the deduplicated size of the manifests stored
	// in the namespace's repositories and the blobs they reference,
	// enforced in the FSM's Apply (fsm/quota.go).
	Storage int64
}

// Member gives one user or one robot (exactly one of the two) a role.
type Member struct {
	User  string `json:"user,omitempty"`
	Robot string `json:"robot,omitempty"`
	Role  string `json:"role"`
}

// Namespace is a stored Namespace document decoded for the authorizer.
type Namespace struct {
	Name       string
	Generation int64
	Spec       NamespaceSpec
}

type namespaceJSON struct {
	Public  bool     `json:"public"`
	Quota   *quotaJS `json:"quota,omitempty"`
	Members []Member `json:"members,omitempty"`
}

type quotaJS struct {
	Storage string `json:"storage"`
}

// MarshalJSON writes the stored form: the quota as a size string ("50Gi").
func (s NamespaceSpec) MarshalJSON() ([]byte, error) {
	j := namespaceJSON{Public: s.Public, Members: s.Members}
	if s.Quota != nil {
		j.Quota = &quotaJS{Storage: FormatSize(s.Quota.Storage)}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads a spec through the same validation as apply.
func (s *NamespaceSpec) UnmarshalJSON(b []byte) error {
	spec, err := unmarshalSpec(b, "Namespace", validateNamespace)
	if err != nil {
		return err
	}
	*s = spec.(NamespaceSpec)
	return nil
}

// DecodeNamespace decodes a stored Namespace document (as the FSM keeps
// it), validating it again, so a document written by another version is
// understood completely or refused with every problem listed.
func DecodeNamespace(doc []byte) (Namespace, error) {
	name, gen, spec, err := decodeStored(doc, "Namespace", validateNamespace)
	if err != nil {
		return Namespace{}, err
	}
	return Namespace{Name: name, Generation: gen, Spec: spec.(NamespaceSpec)}, nil
}

// RoleOf returns the role the namespace gives a user (robot false) or a
// robot (robot true), and whether it gives one at all.
func (s NamespaceSpec) RoleOf(name string, robot bool) (string, bool) {
	for _, m := range s.Members {
		if (robot && m.Robot == name) || (!robot && m.User == name) {
			return m.Role, true
		}
	}
	return "", false
}

func validateNamespace(raw any, p *problems) any {
	s := NamespaceSpec{}
	if raw == nil {
		return s // a private namespace without members or quota
	}
	o, ok := newObject("spec", raw, p)
	if !ok {
		return nil
	}
	if b := o.boolean("public"); b != nil {
		s.Public = *b
	}
	if q, ok := o.object("quota"); ok {
		v, path, present := q.get("storage")
		if present {
			if n, ok := parseSizeField(v, path, p); ok {
				s.Quota = &NamespaceQuota{Storage: n}
			}
		} else {
			p.required("spec.quota.storage", "required: a size such as 50Gi, or leave spec.quota out for no limit")
		}
		q.finish("storage")
	}
	s.Members = checkMembers(o, p)
	o.finish("public", "quota", "members")
	return s
}

func checkMembers(o *object, p *problems) []Member {
	v, path, ok := o.get("members")
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	if !isList {
		p.add(path, "must be a list of {user: NAME, role: ROLE} or {robot: NAME, role: ROLE}, got %s", describe(v))
		return nil
	}
	if len(list) > maxMembers {
		p.add(path, "%d members, at most %d allowed", len(list), maxMembers)
		return nil
	}
	var out []Member
	seen := map[string]int{}
	for i, e := range list {
		at := fmt.Sprintf("%s[%d]", path, i)
		mo, ok := newObject(at, e, p)
		if !ok {
			if e == nil {
				p.add(at, "empty member: write {user: NAME, role: ROLE} or {robot: NAME, role: ROLE}")
			}
			continue
		}
		m := Member{User: mo.str("user"), Robot: mo.str("robot"), Role: mo.str("role")}
		mo.finish("user", "robot", "role")
		key := ""
		switch {
		case m.User != "" && m.Robot != "":
			p.add(at, "names both a user and a robot; one member is exactly one of them")
		case m.User == "" && m.Robot == "":
			p.required(at+".user", "required: user: NAME or robot: NAME")
		case m.User != "":
			key = "user " + m.User
			if !nameRe.MatchString(m.User) {
				p.add(at+".user", "%q is not a user name (1-63 lowercase letters, digits or '-')", m.User)
			}
		default:
			key = "robot " + m.Robot
			if !nameRe.MatchString(m.Robot) {
				p.add(at+".robot", "%q is not a robot name (1-63 lowercase letters, digits or '-')", m.Robot)
			}
		}
		checkRole(m.Role, at+".role", p)
		if key != "" {
			if j, dup := seen[key]; dup {
				p.add(at, "%s is already a member (%s[%d]); give each member one role", key, path, j)
				continue
			}
			seen[key] = i
		}
		out = append(out, m)
	}
	if len(list) == 0 {
		p.add(path, "empty: list members, or leave spec.members out")
	}
	slices.SortFunc(out, func(a, b Member) int {
		if (a.User == "") != (b.User == "") {
			if a.User != "" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.User+a.Robot, b.User+b.Robot)
	})
	return out
}

func checkRole(role, path string, p *problems) {
	switch {
	case role == "":
		p.required(path, "required: one of %s", strings.Join(Roles, ", "))
	case slices.Contains(Roles, role):
	case slices.Contains(Roles, strings.ToLower(role)):
		p.add(path, "%q is spelled %q", role, strings.ToLower(role))
	case role == "cluster-admin":
		p.add(path, "cluster-admin is not a namespace role; set spec.clusterAdmin: true on the User")
	default:
		p.add(path, "%q is not one of %s", role, strings.Join(Roles, ", "))
	}
}

// sizeUnits are the binary units a size may use, largest first.
var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"Pi", 50}, {"Ti", 40}, {"Gi", 30}, {"Mi", 20}, {"Ki", 10}}

// ParseSize reads a positive size: plain bytes ("1048576") or a whole
// number of Ki, Mi, Gi, Ti or Pi ("50Gi"). Decimal units (G, GB) are
// refused rather than guessed, since 50G and 50Gi differ by 7%.
func ParseSize(s string) (int64, error) {
	num, shift := s, uint(0)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = n, u.shift
			break
		}
	}
	if num == "" || strings.IndexFunc(num, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, fmt.Errorf("%q is not a size: a whole number of bytes, or with Ki, Mi, Gi, Ti or Pi such as 50Gi", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	if n == 0 {
		return 0, errors.New("must be positive")
	}
	return n << shift, nil
}

// FormatSize writes n in its largest exact binary unit ("50Gi"), or as
// plain bytes, so that ParseSize(FormatSize(n)) == n.
func FormatSize(n int64) string {
	for _, u := range sizeUnits {
		if n > 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func parseSizeField(v any, path string, p *problems) (int64, bool) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	default:
		p.add(path, "must be a size such as 50Gi, got %s", describe(v))
		return 0, false
	}
	n, err := ParseSize(s)
	if err != nil {
		p.add(path, "%v", err)
		return 0, false
	}
	return n, true
}
