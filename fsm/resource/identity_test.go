package resource

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Hashes of "s3cret-pass" at bcrypt costs 10 and 14 and 4.
const (
	hash10 = "$2a$10$lLuWqPd2eQBjBOD6tKSxTOfiOjykZALwEId.Wzvv4ukv8qmoR816."
	hash14 = "$2a$14$p9FoeeQESPCmYlA7rwGOA.N/MavwTb7/na1U0NSrVoq9rQEVYfNom"
	hash4  = "$2a$04$NV5E3rbe5ndsu//qjour8uy5..aDaB59nTwUv0nZBRIIbzvuxv79u"
	sha    = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

func doc(kind, name string, spec ...string) string {
	s := "apiVersion: berth.dev/v1\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n"
	if len(spec) > 0 {
		s += "spec:\n  " + strings.Join(spec, "\n  ") + "\n"
	}
	return s
}

// normalizedSpec normalizes in and returns its spec, checking that the
// normal form is a fixed point.
func normalizedSpec(t *testing.T, in string) string {
	t.Helper()
	n, err := Normalize(parseOne(t, in))
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ Spec json.RawMessage }
	if err := json.Unmarshal(n, &d); err != nil {
		t.Fatal(err)
	}
	again, err := Normalize(parseOne(t, string(n)))
	if err != nil || string(again) != string(n) {
		t.Errorf("the normal form is not a fixed point: %v\n%s\n%s", err, n, again)
	}
	return string(d.Spec)
}

// problemsOf normalizes in, expecting a ValidationError, and returns its
// problems one per string.
func problemsOf(t *testing.T, in string) []string {
	t.Helper()
	_, err := Normalize(parseOne(t, in))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a ValidationError", err)
	}
	return ve.Messages()
}

func checkProblems(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d problems, want %d:\n  %s", len(got), len(want), strings.Join(got, "\n  "))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("problem %d = %q, want it to contain %q", i, got[i], want[i])
		}
	}
}

func TestNormalizeUser(t *testing.T) {
	tests := []struct{ name, in, spec string }{
		{"minimal", doc("User", "alice", "passwordHash: '"+hash10+"'"),
			`{"clusterAdmin":false,"disabled":false,"passwordHash":"` + hash10 + `"}`},
		{"cluster admin, disabled, cost 14", doc("User", "root", "passwordHash: '"+hash14+"'", "clusterAdmin: true", "disabled: true"),
			`{"clusterAdmin":true,"disabled":true,"passwordHash":"` + hash14 + `"}`},
		{"$2b$ and $2y$", doc("User", "bob", "passwordHash: '$2y"+hash10[3:]+"'"),
			`{"clusterAdmin":false,"disabled":false,"passwordHash":"$2y` + hash10[3:] + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := normalizedSpec(t, tt.in); got != tt.spec {
				t.Errorf("spec =\n  %s\nwant\n  %s", got, tt.spec)
			}
		})
	}
}

func TestUserValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"no spec", doc("User", "alice"), []string{"spec: required: at least spec.passwordHash"}},
		{"plain password in passwordHash", doc("User", "alice", "passwordHash: hunter2"),
			[]string{"spec.passwordHash: is not a bcrypt hash; never write a password into a resource: run `clusterctl user passwd NAME`"}},
		{"password field", doc("User", "alice", "password: hunter2"),
			[]string{"spec.passwordHash: required", "spec.password: a password is never written into a resource"}},
		{"cost too low", doc("User", "alice", "passwordHash: '"+hash4+"'"), []string{"bcrypt cost 4; the cost must be between 10 and 14"}},
		{"cost too high", doc("User", "alice", "passwordHash: '$2a$15"+hash14[6:]+"'"), []string{"bcrypt cost 15"}},
		{"truncated hash", doc("User", "alice", "passwordHash: '"+hash10[:40]+"'"), []string{"not a well-formed bcrypt hash"}},
		{"md5 crypt", doc("User", "alice", "passwordHash: '$1$abc$def'"), []string{"is not a bcrypt hash"}},
		{"every problem at once", doc("User", "Alice", "passwordHash: x", "clusterAdmin: yes please", "role: admin", "email: a@b"),
			[]string{"metadata.name", "spec.passwordHash", "spec.clusterAdmin: must be true or false", "spec.role: users get roles as members of a namespace", "spec.email: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, problemsOf(t, tt.in), tt.want) })
	}
}

func TestNormalizeRobot(t *testing.T) {
	tests := []struct{ name, in, spec string }{
		{"minimal, no expiry", doc("Robot", "ci-team-a", "namespace: team-a", "role: developer", "secretHash: "+sha),
			`{"disabled":false,"namespace":"team-a","role":"developer","secretHash":"` + sha + `"}`},
		{"expiry in UTC", doc("Robot", "ci", "namespace: team-a", "role: guest", "secretHash: "+sha, "expires: '2027-03-01T02:00:00+02:00'", "disabled: true"),
			`{"disabled":true,"expires":"2027-03-01T00:00:00Z","namespace":"team-a","role":"guest","secretHash":"` + sha + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := normalizedSpec(t, tt.in); got != tt.spec {
				t.Errorf("spec =\n  %s\nwant\n  %s", got, tt.spec)
			}
		})
	}
}

func TestRobotValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"no spec", doc("Robot", "ci"), []string{"spec: required: spec.namespace, spec.role and spec.secretHash"}},
		{"harbor-style name with $", doc("Robot", "robot$ci", "namespace: a", "role: guest", "secretHash: "+sha), []string{"metadata.name"}},
		{"inline secret", doc("Robot", "ci", "namespace: a", "role: guest", "secret: berth_rbt_abc"),
			[]string{"spec.secretHash: required", "spec.secret: a robot's secret is never written into a resource"}},
		{"hash not sha256", doc("Robot", "ci", "namespace: a", "role: guest", "secretHash: md5:abc"), []string{"spec.secretHash: must be sha256:"}},
		{"hash upper case", doc("Robot", "ci", "namespace: a", "role: guest", "secretHash: "+strings.ToUpper(sha)), []string{"spec.secretHash"}},
		{"cluster-admin role", doc("Robot", "ci", "namespace: a", "role: cluster-admin", "secretHash: "+sha), []string{"cluster-admin is not a namespace role"}},
		{"every problem at once", doc("Robot", "ci", "namespace: Team_A", "role: Admin", "expires: 90d", "secretHash: "+sha, "scopes: [x]"),
			[]string{"spec.namespace: \"Team_A\" is not a namespace name", "spec.role: \"Admin\" is spelled \"admin\"", "spec.expires: \"90d\" is not an RFC 3339 time", "spec.scopes: unknown field"}},
		{"missing role and namespace", doc("Robot", "ci", "secretHash: "+sha), []string{"spec.namespace: required", "spec.role: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, problemsOf(t, tt.in), tt.want) })
	}
}

func TestDecodeUserAndRobot(t *testing.T) {
	n, err := Normalize(parseOne(t, doc("Robot", "ci", "namespace: team-a", "role: developer", "secretHash: "+sha, "expires: '2027-03-01T00:00:00Z'")))
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeRobot(n)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "ci" || r.Spec.Namespace != "team-a" || r.Spec.Role != "developer" || r.Spec.ExpiresAt().Year() != 2027 {
		t.Errorf("decoded %+v", r)
	}
	if _, err := DecodeUser(n); err == nil || !strings.Contains(err.Error(), `document is a "Robot"`) {
		t.Errorf("DecodeUser of a Robot: %v", err)
	}
	n, err = Normalize(parseOne(t, doc("User", "alice", "passwordHash: '"+hash10+"'", "clusterAdmin: true")))
	if err != nil {
		t.Fatal(err)
	}
	u, err := DecodeUser(n)
	if err != nil || u.Name != "alice" || !u.Spec.ClusterAdmin || u.Spec.PasswordHash != hash10 {
		t.Errorf("decoded %+v, %v", u, err)
	}
	// A stored document that no longer validates is refused whole.
	bad := strings.Replace(string(n), hash10, "hunter2", 1)
	if _, err := DecodeUser([]byte(bad)); err == nil || !strings.Contains(err.Error(), "clusterctl user passwd") {
		t.Errorf("DecodeUser of a plain password: %v", err)
	}
}
