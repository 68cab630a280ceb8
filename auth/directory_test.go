package auth

import (
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
)

// applyYAML normalizes resources as clusterctl apply does and commits
// them to a fresh FSM, returning a directory over its view.
func applyYAML(t *testing.T, docs string) ViewDirectory {
	t.Helper()
	f := fsm.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	parsed, err := resource.ParseYAML(strings.NewReader(docs))
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range parsed {
		n, err := resource.Normalize(d)
		if err != nil {
			t.Fatal(err)
		}
		b, err := events.Encode(events.Event{Time: t0, Payload: events.ResourceApplied{Kind: d.Kind, Name: d.Metadata.Name, Document: n}})
		if err != nil {
			t.Fatal(err)
		}
		if res := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: b}); res != nil {
			t.Fatalf("apply %s: %v", d.Metadata.Name, res)
		}
	}
	return ViewDirectory{View: f.View()}
}

func TestViewDirectory(t *testing.T) {
	secret, hash, err := NewRobotSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, oldHash, _ := NewRobotSecret(rand.Reader)
	dir := applyYAML(t, `apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: team-a}
spec:
  quota: {storage: 50Gi}
  members:
    - {user: alice, role: admin}
    - {robot: ci-team-a, role: developer}
---
apiVersion: berth.dev/v1
kind: User
metadata: {name: alice}
spec: {passwordHash: '`+hash10+`'}
---
apiVersion: berth.dev/v1
kind: User
metadata: {name: root}
spec: {passwordHash: '`+hash10+`', clusterAdmin: true}
---
apiVersion: berth.dev/v1
kind: User
metadata: {name: gone}
spec: {passwordHash: '`+hash10+`', disabled: true}
---
apiVersion: berth.dev/v1
kind: Robot
metadata: {name: ci-team-a}
spec: {namespace: team-a, role: guest, secretHash: '`+hash+`', expires: '2027-01-01T00:00:00Z'}
---
apiVersion: berth.dev/v1
kind: Robot
metadata: {name: old}
spec: {namespace: team-a, role: guest, secretHash: '`+oldHash+`', disabled: true}
`)
	alice, err := AuthenticateUser(dir, "alice", "s3cret-pass")
	if err != nil || alice.Kind != UserIdentity || alice.ClusterAdmin {
		t.Fatalf("alice: %+v, %v", alice, err)
	}
	if root, err := AuthenticateUser(dir, "root", "s3cret-pass"); err != nil || !root.ClusterAdmin {
		t.Errorf("root: %+v, %v", root, err)
	}
	for name, pw := range map[string]string{"alice": "wrong", "nobody": "s3cret-pass", "gone": "s3cret-pass"} {
		if _, err := AuthenticateUser(dir, name, pw); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("user %s: %v", name, err)
		}
	}
	if _, err := AuthenticateUser(dir, "gone", "s3cret-pass"); !errors.Is(err, ErrDisabled) {
		t.Errorf("disabled user: %v", err)
	}

	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ci, err := AuthenticateRobot(dir, "ci-team-a", secret, now)
	if err != nil || ci.Namespace != "team-a" || ci.Role != "guest" {
		t.Fatalf("robot: %+v, %v", ci, err)
	}
	if _, err := AuthenticateRobot(dir, "ci-team-a", secret, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrExpired) || !errors.Is(err, ErrBadCredentials) {
		t.Errorf("expired robot: %v", err)
	}
	if _, err := AuthenticateRobot(dir, "ci-team-a", "berth_rbt_wrong", now); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("wrong robot secret: %v", err)
	}
	if _, err := AuthenticateRobot(dir, "nobody", secret, now); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("unknown robot: %v", err)
	}

	// Decisions read the same state: the robot is a guest by its spec and
	// a developer as a member, so it may push in team-a and nowhere else.
	sc, _ := ParseScopes([]string{"repository:team-a/app:pull,push,delete repository:team-b/app:pull"})
	got, err := Decide(ci, sc, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || FormatScopes([]Scope{{Type: got[0].Type, Name: got[0].Name, Actions: got[0].Actions}}) != "repository:team-a/app:pull,push" {
		t.Errorf("robot granted %+v", got)
	}
	if ok, _ := Can(alice, "team-a", ActionGC, dir); !ok {
		t.Error("namespace admin may not run gc in team-a")
	}
	if _, ok, err := dir.Namespace("team-b"); ok || err != nil {
		t.Errorf("team-b: %v, %v", ok, err)
	}
}
