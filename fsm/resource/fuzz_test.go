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
