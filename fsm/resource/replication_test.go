package resource

import (
	"strings"
	"testing"
	"time"
)

func TestReplicationValidation(t *testing.T) {
	cases := []struct {
		name, doc string
		problems  []string // substrings, each with its line; empty: valid
	}{
		{"mirror", "kind: ReplicationPolicy\nmetadata: {name: follow-eu}\nspec:\n  mode: mirror\n  registry: origin\n  repositories: [\"**\", \"!team-x/**\"]\n  tags: {include: [\"v*\"], exclude: [\"*-dev\"]}\n  trigger: event\n  deletion: true\n  prefix: {strip: \"\", add: \"\"}\n  bandwidth: 0\n  enabled: true\n", nil},
		{"push on a schedule", "kind: ReplicationPolicy\nmetadata: {name: out}\nspec: {mode: push, registry: hub, trigger: schedule, schedule: \"0 */6 * * *\", prefix: {add: mirror/}}\n", nil},
		{"every problem at once", "kind: ReplicationPolicy\nmetadata: {name: bad}\nspec:\n  mode: copy\n  registry: Not_A_Name\n  repositories: [\"[\"]\n  tags: {include: [\"{\"]}\n  trigger: schedule\n  schedule: \"every day\"\n  prefix: {add: Hub}\n  bandwidth: -1\n  colour: red\n",
			[]string{`spec.mode: "copy" is not one of mirror, push, proxy (line 5)`, `spec.registry: "Not_A_Name" is not a resource name`,
				`spec.repositories[0]: "[" is not a valid glob`, `spec.tags.include[0]: "{" is not a valid glob`,
				`spec.schedule: "every day" is not a cron schedule`, `spec.prefix.add: "Hub" is not a repository prefix`,
				"spec.bandwidth: -1 is out of bounds", "spec.colour: unknown field", "(line 13)"}},
		{"mirror on a schedule", "kind: ReplicationPolicy\nmetadata: {name: m}\nspec: {mode: mirror, registry: origin, trigger: schedule, schedule: \"@daily\"}\n",
			[]string{"spec.trigger: a mirror follows the origin's event stream"}},
		{"nothing", "kind: ReplicationPolicy\nmetadata: {name: m}\nspec: {}\n", []string{"spec.mode: required", "spec.registry: required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := ParseYAML(strings.NewReader("apiVersion: berth.dev/v1\n" + tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			norm, err := Normalize(docs[0])
			if len(tc.problems) == 0 {
				if err != nil {
					t.Fatalf("valid document refused: %v", err)
				}
				if _, err := DecodeReplicationPolicy(norm); err != nil {
					t.Fatalf("stored form does not decode: %v\n%s", err, norm)
				}
				return
			}
			if err == nil {
				t.Fatalf("invalid document accepted: %s", norm)
			}
			for _, want := range tc.problems {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("problems %q lack %q", err, want)
				}
			}
		})
	}
}

func TestReplicationDefaultsAndMatching(t *testing.T) {
	docs, err := ParseYAML(strings.NewReader("apiVersion: berth.dev/v1\nkind: ReplicationPolicy\nmetadata: {name: m}\nspec:\n  mode: mirror\n  registry: origin\n  repositories: [\"team-a/**\", \"!team-a/tmp/**\"]\n  tags: {exclude: [\"*-dev\"]}\n  prefix: {strip: team-a/, add: eu/}\n"))
	if err != nil {
		t.Fatal(err)
	}
	norm, err := Normalize(docs[0])
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodeReplicationPolicy(norm)
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.Trigger != "event" || !p.Spec.Enabled || p.Spec.Deletion {
		t.Errorf("defaults: trigger %q, enabled %v, deletion %v; want event, true, false", p.Spec.Trigger, p.Spec.Enabled, p.Spec.Deletion)
	}
	for _, tc := range []struct {
		repo   string
		covers bool
		dst    string
	}{
		{"team-a/app", true, "eu/app"},
		{"team-a/tmp/x", false, ""},
		{"team-b/app", false, ""},
	} {
		if got := p.Spec.Covers(tc.repo); got != tc.covers {
			t.Errorf("Covers(%q) = %v, want %v", tc.repo, got, tc.covers)
		}
		if tc.covers {
			if got := p.Spec.Destination(tc.repo); got != tc.dst {
				t.Errorf("Destination(%q) = %q, want %q", tc.repo, got, tc.dst)
			}
			if src, ok := p.Spec.Source(tc.dst); !ok || src != tc.repo {
				t.Errorf("Source(%q) = %q, %v; want %q", tc.dst, src, ok, tc.repo)
			}
		}
	}
	if _, ok := p.Spec.Source("other/app"); ok {
		t.Error("Source of a repository outside the prefix is covered")
	}
	for tag, want := range map[string]bool{"v1": true, "latest": true, "v1-dev": false} {
		if got := p.Spec.WantsTag(tag); got != want {
			t.Errorf("WantsTag(%q) = %v, want %v", tag, got, want)
		}
	}
}

func TestRegistryEvents(t *testing.T) {
	cases := []struct {
		name, spec string
		problems   []string
	}{
		{"berth origin", "  type: berth\n  url: https://registry.eu.example.com\n  events: {urls: [\"nats://nats.eu.example.com:4222\"], stream: BERTH_EVENTS, credentials: {secretRef: {name: origin-nats, key: creds}}}\n", nil},
		{"token, default stream", "  type: berth\n  url: http://127.0.0.1:5000\n  insecure: true\n  events: {urls: [\"nats://127.0.0.1:4222\"], credentials: {type: token, secretRef: {name: origin-nats, key: token}}}\n", nil},
		{"not berth", "  type: distribution\n  url: https://r.example.com\n  events: {urls: [\"nats://n:4222\"]}\n", []string{"spec.events: only for type berth"}},
		{"bad events", "  type: berth\n  url: https://r.example.com\n  events: {urls: [\"http://n:4222\", \"nats://u:p@n:4222\"], stream: \"a.b\", token: x, credentials: {type: jwt}}\n",
			[]string{`spec.events.urls[0]: "http://n:4222" is not a NATS URL`, "spec.events.urls[1]: must not contain credentials", `spec.events.stream: "a.b"`,
				"spec.events.token: secrets are never written", `spec.events.credentials.type: "jwt"`, "spec.events.credentials.secretRef: required"}},
		{"no urls", "  type: berth\n  url: https://r.example.com\n  events: {stream: S}\n", []string{"spec.events.urls: required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := ParseYAML(strings.NewReader("apiVersion: berth.dev/v1\nkind: Registry\nmetadata: {name: origin}\nspec:\n" + tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			norm, err := Normalize(docs[0])
			if len(tc.problems) == 0 {
				if err != nil {
					t.Fatalf("valid document refused: %v", err)
				}
				_, spec, err := DecodeRegistry(norm)
				if err != nil {
					t.Fatal(err)
				}
				if spec.Events == nil || spec.Events.Stream != "BERTH_EVENTS" || spec.Events.Credentials.SecretRef == nil {
					t.Errorf("events = %+v, want the stream defaulted and the secret kept", spec.Events)
				}
				return
			}
			if err == nil {
				t.Fatalf("invalid document accepted: %s", norm)
			}
			for _, want := range tc.problems {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("problems %q lack %q", err, want)
				}
			}
		})
	}
}

// TestReplicationTTLAndFallback checks spec.ttl (proxy) and spec.fallback
// (mirror): their defaults, their bounds, and that each is refused, with
// its path and line, on the modes it does not apply to.
func TestReplicationTTLAndFallback(t *testing.T) {
	cases := []struct {
		name, spec string
		ttl        time.Duration // of a valid document
		fallback   string
		problems   []string
	}{
		{"proxy default ttl", "  mode: proxy\n  registry: hub\n  prefix: {add: hub/}\n", 10 * time.Minute, "", nil},
		{"proxy short ttl", "  mode: proxy\n  registry: hub\n  prefix: {add: hub/}\n  ttl: 2s\n", 2 * time.Second, "", nil},
		{"proxy a week", "  mode: proxy\n  registry: hub\n  prefix: {add: hub/}\n  ttl: 168h\n", 168 * time.Hour, "", nil},
		{"proxy without a prefix", "  mode: proxy\n  registry: hub\n", 0, "", []string{"spec.prefix.add: required with mode: proxy"}},
		{"mirror falls back", "  mode: mirror\n  registry: origin\n  fallback: origin\n", 0, "origin", nil},
		{"mirror without fallback", "  mode: mirror\n  registry: origin\n", 0, "", nil},
		{"ttl too short", "  mode: proxy\n  registry: hub\n  ttl: 10ms\n", 0, "", []string{"spec.ttl: 10ms is out of bounds: between 1s and 168h0m0s (line 7)"}},
		{"ttl too long", "  mode: proxy\n  registry: hub\n  ttl: 200h\n", 0, "", []string{"spec.ttl: 200h0m0s is out of bounds"}},
		{"ttl not a duration", "  mode: proxy\n  registry: hub\n  ttl: soon\n", 0, "", []string{`spec.ttl: "soon" is not a duration`}},
		{"ttl a number", "  mode: proxy\n  registry: hub\n  ttl: 600\n", 0, "", []string{"spec.ttl: must be a duration such as 10m0s"}},
		{"ttl on a mirror", "  mode: mirror\n  registry: origin\n  ttl: 1m\n", 0, "", []string{"spec.ttl: only used by mode: proxy (how long a cached tag is served before it is revalidated) (line 7)"}},
		{"fallback on a proxy", "  mode: proxy\n  registry: hub\n  fallback: origin\n", 0, "", []string{"spec.fallback: only used by mode: mirror (a pull of something not replicated yet goes to the origin) (line 7)"}},
		{"fallback on push", "  mode: push\n  registry: hub\n  fallback: origin\n", 0, "", []string{"spec.fallback: only used by mode: mirror"}},
		{"unknown fallback", "  mode: mirror\n  registry: origin\n  fallback: upstream\n", 0, "", []string{`spec.fallback: "upstream" is not one of origin (or leave it out for none) (line 7)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := ParseYAML(strings.NewReader("apiVersion: berth.dev/v1\nkind: ReplicationPolicy\nmetadata: {name: p}\nspec:\n" + tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			norm, err := Normalize(docs[0])
			if len(tc.problems) > 0 {
				if err == nil {
					t.Fatalf("invalid document accepted: %s", norm)
				}
				for _, want := range tc.problems {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("problems %q lack %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("valid document refused: %v", err)
			}
			p, err := DecodeReplicationPolicy(norm)
			if err != nil {
				t.Fatalf("stored form does not decode: %v\n%s", err, norm)
			}
			if got := time.Duration(p.Spec.TTL); got != tc.ttl {
				t.Errorf("ttl = %s, want %s (stored %s)", got, tc.ttl, norm)
			}
			if p.Spec.Fallback != tc.fallback {
				t.Errorf("fallback = %q, want %q", p.Spec.Fallback, tc.fallback)
			}
		})
	}
}

// A mirror's repositories are read-only unless spec.writable says
// otherwise; other modes refuse the field.
func TestReplicationWritable(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		writable   bool
		problem    string
	}{
		{"mirror default", "  mode: mirror\n  registry: origin\n", false, ""},
		{"writable mirror", "  mode: mirror\n  registry: origin\n  writable: true\n", true, ""},
		{"read-only mirror said so", "  mode: mirror\n  registry: origin\n  writable: false\n", false, ""},
		{"writable proxy", "  mode: proxy\n  registry: hub\n  prefix: {add: hub/}\n  writable: true\n", false, "spec.writable: only used by mode: mirror"},
		{"writable push", "  mode: push\n  registry: dr\n  writable: true\n", false, "spec.writable: only used by mode: mirror"},
		{"not a boolean", "  mode: mirror\n  registry: origin\n  writable: sometimes\n", false, "spec.writable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := ParseYAML(strings.NewReader("apiVersion: berth.dev/v1\nkind: ReplicationPolicy\nmetadata: {name: p}\nspec:\n" + tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			norm, err := Normalize(docs[0])
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("got %v, want a problem %q (document %s)", err, tc.problem, norm)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, err := DecodeReplicationPolicy(norm)
			if err != nil {
				t.Fatal(err)
			}
			if p.Spec.Writable != tc.writable {
				t.Errorf("writable = %v, want %v", p.Spec.Writable, tc.writable)
			}
		})
	}
}
