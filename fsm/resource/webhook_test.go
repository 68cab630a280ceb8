package resource

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// webhook builds a Webhook document named ci with the given spec lines.
func webhook(spec ...string) string {
	return "apiVersion: berth.dev/v1\nkind: Webhook\nmetadata:\n  name: ci\nspec:\n  " + strings.Join(spec, "\n  ") + "\n"
}

const issueWebhook = `apiVersion: berth.dev/v1
kind: Webhook
metadata: {name: ci}
spec:
  url: https://ci.example.com/hooks/berth
  events: [manifest.pushed, tag.deleted]
  repositories: ["team-a/**"]
  format: cloudevents
  headers: {X-Team: [a]}
  timeout: 5s
  retry: {initialBackoff: 1s, maxBackoff: 5m, maxDeliveries: 20}
  signing: {secretRef: {name: ci-hook, key: hmac}}
`

const defaultsJSON = `"enabled":true,"events":["manifest.pushed","manifest.deleted","tag.updated","tag.deleted","repository.deleted","resource.applied","resource.deleted"],"format":"cloudevents","repositories":["**"],"retry":{"initialBackoff":"1s","maxBackoff":"5m0s","maxDeliveries":20},"timeout":"5s"`

func TestNormalizeWebhook(t *testing.T) {
	tests := []struct {
		name, in string
		spec     string // the normalized spec
	}{
		{"the issue's example", issueWebhook,
			`{"enabled":true,"events":["manifest.pushed","tag.deleted"],"format":"cloudevents","headers":{"X-Team":["a"]},"repositories":["team-a/**"],"retry":{"initialBackoff":"1s","maxBackoff":"5m0s","maxDeliveries":20},"signing":{"secretRef":{"key":"hmac","name":"ci-hook"}},"timeout":"5s","url":"https://ci.example.com/hooks/berth"}`},
		{"defaults", webhook("url: https://ci.example.com/hook"),
			`{` + defaultsJSON + `,"url":"https://ci.example.com/hook"}`},
		{"plain http, scheme and host lowered, path and query kept", webhook("url: HTTP://CI.local:8080/Hook/?team=A"),
			`{` + defaultsJSON + `,"url":"http://ci.local:8080/Hook/?team=A"}`},
		{"events sorted, deduplicated, pulls by choice", webhook("url: https://c.io", "events: [blob.pulled, tag.updated, manifest.pulled, tag.updated]"),
			`{"enabled":true,"events":["tag.updated","manifest.pulled","blob.pulled"],"format":"cloudevents","repositories":["**"],"retry":{"initialBackoff":"1s","maxBackoff":"5m0s","maxDeliveries":20},"timeout":"5s","url":"https://c.io"}`},
		{"distribution format, disabled, excludes", webhook("url: https://c.io", "format: distribution", "enabled: false", "repositories: ['**', '!tmp/**', 'a/{b,c}/*']"),
			`{"enabled":false,"events":["manifest.pushed","manifest.deleted","tag.updated","tag.deleted","repository.deleted","resource.applied","resource.deleted"],"format":"distribution","repositories":["**","!tmp/**","a/{b,c}/*"],"retry":{"initialBackoff":"1s","maxBackoff":"5m0s","maxDeliveries":20},"timeout":"5s","url":"https://c.io"}`},
		{"headers canonical, single value as a list", webhook("url: https://c.io", "headers: {x-team: a, X-Env: [prod, eu]}"),
			`{"enabled":true,"events":["manifest.pushed","manifest.deleted","tag.updated","tag.deleted","repository.deleted","resource.applied","resource.deleted"],"format":"cloudevents","headers":{"X-Env":["prod","eu"],"X-Team":["a"]},"repositories":["**"],"retry":{"initialBackoff":"1s","maxBackoff":"5m0s","maxDeliveries":20},"timeout":"5s","url":"https://c.io"}`},
		{"durations canonical, partial retry", webhook("url: https://c.io", "timeout: 1500ms", "retry: {maxBackoff: 90s}"),
			`{"enabled":true,"events":["manifest.pushed","manifest.deleted","tag.updated","tag.deleted","repository.deleted","resource.applied","resource.deleted"],"format":"cloudevents","repositories":["**"],"retry":{"initialBackoff":"1s","maxBackoff":"1m30s","maxDeliveries":20},"timeout":"1.5s","url":"https://c.io"}`},
		{"bounds inclusive", webhook("url: https://c.io", "timeout: 100ms", "retry: {initialBackoff: 100ms, maxBackoff: 24h, maxDeliveries: 1000}"),
			`{"enabled":true,"events":["manifest.pushed","manifest.deleted","tag.updated","tag.deleted","repository.deleted","resource.applied","resource.deleted"],"format":"cloudevents","repositories":["**"],"retry":{"initialBackoff":"100ms","maxBackoff":"24h0m0s","maxDeliveries":1000},"timeout":"100ms","url":"https://c.io"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Normalize(parseOne(t, tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var doc struct{ Spec json.RawMessage }
			if err := json.Unmarshal(n, &doc); err != nil {
				t.Fatal(err)
			}
			if string(doc.Spec) != tt.spec {
				t.Errorf("spec =\n  %s\nwant\n  %s", doc.Spec, tt.spec)
			}
			again, err := Normalize(parseOne(t, string(n)))
			if err != nil || string(again) != string(n) {
				t.Errorf("the normal form is not a fixed point: %v\n%s\n%s", err, n, again)
			}
		})
	}
}

func TestWebhookValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"no spec", strings.Replace(webhook("url: x"), "spec:\n  url: x\n", "", 1),
			[]string{"spec: required: at least spec.url"}},
		{"no url", webhook("format: cloudevents"),
			[]string{"spec.url: required"}},
		{"bad urls", webhook("url: ci.example.com/hook"),
			[]string{`spec.url: "ci.example.com/hook" has no scheme: write https://ci.example.com/hook`}},
		{"ftp", webhook("url: ftp://c.io/x"),
			[]string{`spec.url: "ftp://c.io/x" must be an absolute http(s) URL`}},
		{"relative", webhook("url: /hooks"),
			[]string{`spec.url: "/hooks" must be an absolute http(s) URL`}},
		{"userinfo and fragment", webhook("url: https://bob:pw@c.io/h#x"),
			[]string{"spec.url: must not contain credentials", "spec.url: must not have a fragment"}},
		{"long url", webhook("url: https://c.io/" + strings.Repeat("a", 2048)),
			[]string{"spec.url: 2061 characters, at most 2048 allowed"}},
		{"bad events", webhook("url: https://c.io", "events: [manifest.pushed, dev.berth.tag.deleted, image.pushed, 3]"),
			[]string{"spec.events[3]: must be a string, got number 3", `spec.events[1]: "dev.berth.tag.deleted" is written "tag.deleted" here`, `spec.events[2]: "image.pushed" is not one of manifest.pushed, manifest.deleted, tag.updated, tag.deleted, repository.deleted, resource.applied, resource.deleted, manifest.pulled, blob.pulled`}},
		{"empty lists", webhook("url: https://c.io", "events: []", "repositories: []"),
			[]string{"spec.events: empty", "spec.repositories: empty"}},
		{"lists of the wrong type", webhook("url: https://c.io", "events: manifest.pushed", "repositories: {a: b}"),
			[]string{`spec.events: must be a list of strings, got string "manifest.pushed"`, "spec.repositories: must be a list of strings, got a mapping"}},
		{"bad globs", webhook("url: https://c.io", "repositories: ['team-[a/**', '!', '', '/abs/*', 'ok/**']"),
			[]string{`spec.repositories[0]: "team-[a/**" is not a valid glob`, "spec.repositories[1]: empty pattern", "spec.repositories[2]: empty pattern", `spec.repositories[3]: "/abs/*": repository names have no leading slash`}},
		{"unknown format", webhook("url: https://c.io", "format: json"),
			[]string{`spec.format: "json" is not one of cloudevents, distribution`}},
		{"forbidden headers", webhook("url: https://c.io", "headers: {Connection: close, content-type: text/plain, Berth-Signature: x, 'Bad Name': v, Authorization: Bearer abc, X-Ok: [1], X-Nl: \"a\\r\\nb\", X-Empty: [], x-dup: a, X-Dup: b, X-Obj: {a: b}}"),
			[]string{
				"spec.headers.Authorization: Authorization carries a credential, and secrets are never written into a resource",
				`spec.headers["Bad Name"]: "Bad Name" is not a valid header name`,
				"spec.headers.Berth-Signature: Berth-Signature is set by Berth",
				"spec.headers.Connection: Connection is set by Berth or by HTTP itself",
				"spec.headers.X-Empty: no value",
				"spec.headers.X-Nl: value \"a\\r\\nb\" has a control character",
				"spec.headers.X-Obj: must be a string or a list of strings, got a mapping",
				"spec.headers.X-Ok[0]: must be a string, got number 1 (quote it)",
				"spec.headers.content-type: Content-Type is set by Berth or by HTTP itself",
				"spec.headers.x-dup: X-Dup is given twice"}},
		{"too many headers", webhook("url: https://c.io", "headers: {"+manyHeaders(33)+"}"),
			[]string{"spec.headers: 33 headers, at most 32 allowed"}},
		{"headers too large", webhook("url: https://c.io", "headers: {X-Big: ["+strings.Repeat("a", 8192)+"]}"),
			[]string{"spec.headers: 8197 bytes in total, at most 8192 allowed"}},
		{"durations", webhook("url: https://c.io", "timeout: 5", "retry: {initialBackoff: 1 second, maxBackoff: 48h, maxDeliveries: 0}"),
			[]string{"spec.timeout: must be a duration such as 5s, got number 5", `spec.retry.initialBackoff: "1 second" is not a duration`, "spec.retry.maxBackoff: 48h0m0s is out of bounds: between 1s and 24h0m0s", "spec.retry.maxDeliveries: 0 is out of bounds: between 1 and 1000"}},
		{"timeout bounds", webhook("url: https://c.io", "timeout: 10ms"),
			[]string{"spec.timeout: 10ms is out of bounds: between 100ms and 1m0s"}},
		{"backoffs inverted, fractional deliveries, unknown retry field", webhook("url: https://c.io", "retry: {initialBackoff: 10m, maxBackoff: 1m, maxDeliveries: 2.5, jitter: true}"),
			[]string{"spec.retry.maxDeliveries: 2.5 is not a whole number", "spec.retry.jitter: unknown field; known fields here are initialBackoff, maxBackoff, maxDeliveries", "spec.retry.maxBackoff: 1m0s is less than initialBackoff 10m0s"}},
		{"inline secrets", webhook("url: https://c.io", "secret: abc", "signing: {secret: abc}"),
			[]string{"spec.secret: secrets are never written into a resource", "spec.signing.secret: secrets are never written into a resource", "spec.signing.secretRef: required"}},
		{"bad secret ref", webhook("url: https://c.io", "signing: {secretRef: {name: ../etc, key: ../passwd}, algorithm: sha1}"),
			[]string{`spec.signing.secretRef.name: "../etc" is not a valid secret name`, `spec.signing.secretRef.key: "../passwd" is not a valid key`, "spec.signing.algorithm: unknown field; known fields here are secretRef"}},
		{"secret ref without key", webhook("url: https://c.io", "signing: {secretRef: {name: ci-hook}}"),
			[]string{"spec.signing.secretRef.key: required"}},
		{"unknown and mistyped fields", webhook("url: https://c.io", "enabled: 'yes'", "description: x", "filter: y"),
			[]string{`spec.enabled: must be true or false, got string "yes"`, "spec.description: unknown field; known fields here are url, events, repositories, format, headers, timeout, retry, signing, enabled", "spec.filter: unknown field"}},
		{"metadata description", strings.Replace(webhook("url: https://c.io"), "name: ci", "name: ci\n  description: hi", 1),
			[]string{"metadata.description: Webhook has no description"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(parseOne(t, tt.in))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			got := ve.Messages()
			if len(got) != len(tt.want) {
				t.Fatalf("%d problems, want %d:\n  %s", len(got), len(tt.want), strings.Join(got, "\n  "))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i+1, got[i], w)
				}
				if path, _, _ := strings.Cut(w, ": "); !strings.HasPrefix(got[i], path+": ") {
					t.Errorf("problem %d = %q, want it to start with the path %q", i+1, got[i], path)
				}
			}
		})
	}
}

func manyHeaders(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, "X-H"+strings.Repeat("a", i)+": v")
	}
	return strings.Join(parts, ", ")
}

// Problems carry the line of the field in the user's file.
func TestWebhookValidationErrorLines(t *testing.T) {
	in := strings.Replace(issueWebhook, "timeout: 5s", "timeout: 5 s", 1)
	in = strings.Replace(in, "tag.deleted]", "tag.removed]", 1)
	err := Validate(parseOne(t, in))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	lines := map[string]int{}
	for _, p := range ve.Problems {
		lines[p.Path] = p.Line
	}
	if lines["spec.events[1]"] != 6 || lines["spec.timeout"] != 10 || len(ve.Problems) != 2 {
		t.Errorf("problems %+v", ve.Problems)
	}
}

func TestDecodeWebhook(t *testing.T) {
	n, err := Normalize(parseOne(t, issueWebhook))
	if err != nil {
		t.Fatal(err)
	}
	// What the FSM stores: the normal form plus generation and timestamps.
	stored := strings.Replace(string(n), `"name":"ci"`, `"name":"ci","generation":3,"creationTimestamp":"2026-01-02T03:04:05Z"`, 1)
	w, err := DecodeWebhook([]byte(stored))
	if err != nil {
		t.Fatal(err)
	}
	want := Webhook{Name: "ci", Generation: 3, Spec: WebhookSpec{
		URL:          "https://ci.example.com/hooks/berth",
		Events:       []string{"manifest.pushed", "tag.deleted"},
		Repositories: []string{"team-a/**"},
		Format:       "cloudevents",
		Headers:      map[string][]string{"X-Team": {"a"}},
		Timeout:      5 * time.Second,
		Retry:        WebhookRetry{InitialBackoff: time.Second, MaxBackoff: 5 * time.Minute, MaxDeliveries: 20},
		Signing:      &WebhookSigning{SecretRef: SecretRef{Name: "ci-hook", Key: "hmac"}},
		Enabled:      true,
	}}
	if !reflect.DeepEqual(w, want) {
		t.Errorf("decoded\n  %+v\nwant\n  %+v", w, want)
	}
	// A spec that is only partly written gets its defaults on decode too.
	w, err = DecodeWebhook([]byte(`{"apiVersion":"berth.dev/v1","kind":"Webhook","metadata":{"name":"d"},"spec":{"url":"https://c.io"}}`))
	if err != nil || w.Spec.Timeout != DefaultWebhookTimeout || w.Spec.Retry.MaxDeliveries != DefaultMaxDeliveries || !w.Spec.Enabled || len(w.Spec.Events) != 7 {
		t.Errorf("defaults: %+v, %v", w, err)
	}

	for _, bad := range []string{
		`{"kind":"Registry","metadata":{"name":"hub"},"spec":{}}`,
		`{"kind":"Webhook","metadata":{"name":"x"},"spec":{"url":"ftp://x","timeout":"1y"}}`,
		`{"kind":"Webhook","metadata":{"name":"x"},"spec":null}`,
		`not json`,
	} {
		if _, err := DecodeWebhook([]byte(bad)); err == nil {
			t.Errorf("DecodeWebhook(%s) succeeded", bad)
		}
	}
	_, err = DecodeWebhook([]byte(`{"kind":"Webhook","metadata":{"name":"x"},"spec":{"url":"ftp://x","timeout":"1y"}}`))
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 2 || ve.Name != "x" {
		t.Errorf("err = %v, want both problems of webhook x", err)
	}
}

func TestWebhookWants(t *testing.T) {
	spec := WebhookSpec{Enabled: true, Events: []string{"manifest.pushed", "resource.applied"}, Repositories: []string{"team-a/**", "!team-a/tmp/**", "lib/*"}}
	tests := []struct {
		typ, repo string
		want      bool
	}{
		{"manifest.pushed", "team-a/app", true},
		{"manifest.pushed", "team-a/x/y/z", true},
		{"manifest.pushed", "team-a/tmp/x", false},
		{"manifest.pushed", "lib/alpine", true},
		{"manifest.pushed", "lib/a/b", false},
		{"manifest.pushed", "team-b/app", false},
		{"tag.deleted", "team-a/app", false},
		{"resource.applied", "", true},
	}
	for _, tt := range tests {
		if got := spec.Wants(tt.typ, tt.repo); got != tt.want {
			t.Errorf("Wants(%q, %q) = %v, want %v", tt.typ, tt.repo, got, tt.want)
		}
	}
	if !MatchRepository([]string{"!secret/**"}, "public/x") || MatchRepository([]string{"!secret/**"}, "secret/x") {
		t.Error("a list of only excludes should match everything else")
	}
	spec.Enabled = false
	if spec.Wants("manifest.pushed", "team-a/app") {
		t.Error("a disabled webhook wants nothing")
	}
}
