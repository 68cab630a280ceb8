package resource

import (
	"strings"
	"testing"
)

const issueNamespace = `apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: team-a}
spec:
  public: false
  quota: {storage: 50Gi}
  members:
    - {user: alice, role: admin}
    - {robot: ci-team-a, role: developer}
`

func TestNormalizeNamespace(t *testing.T) {
	tests := []struct{ name, in, spec string }{
		{"the issue's example", issueNamespace,
			`{"members":[{"role":"admin","user":"alice"},{"robot":"ci-team-a","role":"developer"}],"public":false,"quota":{"storage":"50Gi"}}`},
		{"no spec: private, no quota, no members", doc("Namespace", "team-b"), `{"public":false}`},
		{"members sorted, users first", doc("Namespace", "t", "public: true", "members: [{robot: a, role: guest}, {user: zed, role: guest}, {user: bob, role: maintainer}]"),
			`{"members":[{"role":"maintainer","user":"bob"},{"role":"guest","user":"zed"},{"robot":"a","role":"guest"}],"public":true}`},
		{"quota in bytes to the largest unit", doc("Namespace", "t", "quota: {storage: 1073741824}"), `{"public":false,"quota":{"storage":"1Gi"}}`},
		{"quota 51200Mi is 50Gi", doc("Namespace", "t", "quota: {storage: 51200Mi}"), `{"public":false,"quota":{"storage":"50Gi"}}`},
		{"quota of odd bytes stays bytes", doc("Namespace", "t", "quota: {storage: '1000'}"), `{"public":false,"quota":{"storage":"1000"}}`},
		{"quota 2Ti", doc("Namespace", "t", "quota: {storage: 2048Gi}"), `{"public":false,"quota":{"storage":"2Ti"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := normalizedSpec(t, tt.in); got != tt.spec {
				t.Errorf("spec =\n  %s\nwant\n  %s", got, tt.spec)
			}
		})
	}
}

func TestNamespaceValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"name not a repository component", doc("Namespace", "Team_A"), []string{"metadata.name"}},
		{"decimal unit", doc("Namespace", "t", "quota: {storage: 50G}"), []string{`spec.quota.storage: "50G" is not a size`}},
		{"zero", doc("Namespace", "t", "quota: {storage: 0}"), []string{"spec.quota.storage: must be positive"}},
		{"negative", doc("Namespace", "t", "quota: {storage: -5Gi}"), []string{"is not a size"}},
		{"fraction", doc("Namespace", "t", "quota: {storage: 1.5Gi}"), []string{"is not a size"}},
		{"overflow", doc("Namespace", "t", "quota: {storage: 9000000Ti}"), []string{"is too large"}},
		{"quota without storage", doc("Namespace", "t", "quota: {objects: 5}"), []string{"spec.quota.storage: required", "spec.quota.objects: unknown field"}},
		{"member with both", doc("Namespace", "t", "members: [{user: a, robot: b, role: guest}]"), []string{"names both a user and a robot"}},
		{"member with neither", doc("Namespace", "t", "members: [{role: guest}]"), []string{"spec.members[0].user: required: user: NAME or robot: NAME"}},
		{"unknown role", doc("Namespace", "t", "members: [{user: a, role: owner}]"), []string{`spec.members[0].role: "owner" is not one of admin, maintainer, developer, guest`}},
		{"no role", doc("Namespace", "t", "members: [{user: a}]"), []string{"spec.members[0].role: required"}},
		{"cluster-admin as a role", doc("Namespace", "t", "members: [{user: a, role: cluster-admin}]"), []string{"set spec.clusterAdmin: true on the User"}},
		{"duplicate member", doc("Namespace", "t", "members: [{user: a, role: guest}, {user: a, role: admin}]"), []string{"spec.members[1]: user a is already a member (spec.members[0])"}},
		{"same name as user and robot is fine, bad names not", doc("Namespace", "t", "members: [{user: a, role: guest}, {robot: a, role: guest}, {robot: 'robot$x', role: guest}]"),
			[]string{`spec.members[2].robot: "robot$x" is not a robot name`}},
		{"empty members", doc("Namespace", "t", "members: []"), []string{"spec.members: empty"}},
		{"members not a list", doc("Namespace", "t", "members: {alice: admin}"), []string{"spec.members: must be a list"}},
		{"every problem at once", doc("Namespace", "t", "public: yes", "quota: {storage: 5GB}", "owner: alice"),
			[]string{"spec.public: must be true or false", "spec.quota.storage", "spec.owner: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, problemsOf(t, tt.in), tt.want) })
	}
}

func TestParseAndFormatSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{{"1", 1}, {"1Ki", 1024}, {"3Mi", 3 << 20}, {"50Gi", 50 << 30}, {"2Ti", 2 << 40}, {"1Pi", 1 << 50}, {"8191Pi", 8191 << 50}} {
		n, err := ParseSize(tt.in)
		if err != nil || n != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, n, err, tt.want)
		}
		if back, err := ParseSize(FormatSize(n)); err != nil || back != n {
			t.Errorf("FormatSize(%d) = %q does not parse back: %d, %v", n, FormatSize(n), back, err)
		}
	}
	for _, in := range []string{"", "Gi", "0", "0Gi", "-1", "1.5Gi", "50G", "50GB", "50gi", " 5Gi", "8192Pi", "99999999999999999999", "0x10"} {
		if n, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, n)
		}
	}
}

func TestDecodeNamespace(t *testing.T) {
	n, err := Normalize(parseOne(t, issueNamespace))
	if err != nil {
		t.Fatal(err)
	}
	ns, err := DecodeNamespace(n)
	if err != nil {
		t.Fatal(err)
	}
	if ns.Name != "team-a" || ns.Spec.Public || ns.Spec.Quota == nil || ns.Spec.Quota.Storage != 50<<30 {
		t.Errorf("decoded %+v", ns)
	}
	if r, ok := ns.Spec.RoleOf("alice", false); !ok || r != "admin" {
		t.Errorf("RoleOf(alice) = %q, %v", r, ok)
	}
	if r, ok := ns.Spec.RoleOf("ci-team-a", true); !ok || r != "developer" {
		t.Errorf("RoleOf(robot ci-team-a) = %q, %v", r, ok)
	}
	if _, ok := ns.Spec.RoleOf("ci-team-a", false); ok {
		t.Error("a robot member gives a user of the same name a role")
	}
	if _, err := DecodeNamespace([]byte(strings.Replace(string(n), "50Gi", "50G", 1))); err == nil {
		t.Error("DecodeNamespace accepted a bad quota")
	}
}
