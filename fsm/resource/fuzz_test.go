package resource

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func FuzzParseYAML(f *testing.F) {
	f.Add(hub)
	f.Add("---\n---\n")
	f.Add("a: [1, 2")
	f.Add(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"x"},"spec":null}`)
	f.Add(registry("type: zot", "url: http://z.io", "insecure: true", "tls: {caFile: /a}", "credentials: {type: basic, secretRef: {name: s}}"))
	f.Add(issueWebhook)
	f.Add(webhook("url: HTTP://C.io/h?x=1", "events: [blob.pulled, tag.updated, tag.updated]", "repositories: ['!tmp/**', '{a,b}/*']", "headers: {x-a: b, X-B: [c, d]}", "timeout: 1500ms"))
	f.Add(webhook("url: https://c.io", "retry: {initialBackoff: 10m, maxBackoff: 1m, maxDeliveries: 2.5}", "signing: {secretRef: {name: a, key: ..}}", "format: distribution", "enabled: false"))
	f.Add(`{"apiVersion":"berth.dev/v1","kind":"Webhook","metadata":{"name":"w"},"spec":{"url":"https://c.io","headers":{"X":[]}}}`)
	f.Add(issueNamespace)
	f.Add(doc("Namespace", "t", "public: true", "quota: {storage: 1073741824}", "members: [{robot: a, role: guest}, {user: a, role: Admin}, {user: a, robot: b}]"))
	f.Add(doc("Namespace", "t", "quota: {storage: 9000000Ti}", "members: []"))
	f.Add(doc("User", "alice", "passwordHash: '"+hash10+"'", "clusterAdmin: true", "disabled: false"))
	f.Add(doc("User", "alice", "password: hunter2", "passwordHash: '$2a$15"+hash14[6:]+"'"))
	f.Add(doc("Robot", "ci", "namespace: team-a", "role: developer", "secretHash: "+sha, "expires: '2027-03-01T02:00:00+02:00'"))
	f.Add(doc("Robot", "robot$ci", "namespace: Team_A", "role: cluster-admin", "secret: x", "expires: 90d"))
	f.Add("a: &x [*x]\n")
	f.Add("spec: {<<: {type: zot}, url: 'https://z'}\nkind: Registry\napiVersion: berth.dev/v1\nmetadata: {name: m, labels: {1: 2}}\n")
	f.Fuzz(func(t *testing.T, in string) {
		docs, err := ParseYAML(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, d := range docs {
			norm, err := Normalize(d)
			var ve *ValidationError
			if errors.As(err, &ve) {
				if len(ve.Problems) == 0 {
					t.Fatalf("ValidationError without problems for %q", in)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			// The delivery engine can decode every Webhook that apply accepts.
			if d.Kind == "Webhook" {
				if _, err := DecodeWebhook(norm); err != nil {
					t.Fatalf("DecodeWebhook of an accepted webhook: %v\n%s", err, norm)
				}
			}
			// The authorizer can decode every identity and namespace that
			// apply accepts.
			var decodeErr error
			switch d.Kind {
			case "Namespace":
				_, decodeErr = DecodeNamespace(norm)
			case "User":
				_, decodeErr = DecodeUser(norm)
			case "Robot":
				_, decodeErr = DecodeRobot(norm)
			}
			if decodeErr != nil {
				t.Fatalf("decode of an accepted %s: %v\n%s", d.Kind, decodeErr, norm)
			}
			// A valid document's normal form parses and normalizes to itself.
			again, err := ParseYAML(bytes.NewReader(norm))
			if err != nil || len(again) != 1 {
				t.Fatalf("normal form does not parse: %v\n%s", err, norm)
			}
			norm2, err := Normalize(again[0])
			if err != nil || string(norm2) != string(norm) {
				t.Fatalf("normal form is not a fixed point: %v\n%s\n%s", err, norm, norm2)
			}
		}
	})
}
