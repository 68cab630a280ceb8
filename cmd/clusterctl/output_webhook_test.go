package main

import (
	"bytes"
	"testing"
)

const (
	ciJSON = `{"apiVersion":"berth.dev/v1","kind":"Webhook","metadata":{"name":"ci","generation":2,"creationTimestamp":"2026-03-15T10:00:00Z","updateTimestamp":"2026-03-15T11:00:00Z"},
		"spec":{"url":"https://ci.example.com/hooks/berth","events":["manifest.pushed","tag.deleted"],"repositories":["team-a/**","!team-a/tmp/**"],"format":"cloudevents",
		"headers":{"X-Team":["a","b"],"X-Env":["prod"]},"timeout":"5s","retry":{"initialBackoff":"1s","maxBackoff":"5m0s","maxDeliveries":20},
		"signing":{"secretRef":{"name":"ci-hook","key":"hmac"}},"enabled":true},
		"status":{"conditions":[{"type":"SecretResolved","status":"False","reason":"SecretNotFound","message":"secret not found: no file /data/secrets/ci-hook/hmac"}]}}`
	allJSON = `{"apiVersion":"berth.dev/v1","kind":"Webhook","metadata":{"name":"audit","generation":1,"creationTimestamp":"2026-03-12T12:00:00Z"},
		"spec":{"url":"http://audit.internal/in","events":["manifest.pushed","manifest.deleted","tag.updated","tag.deleted","repository.deleted","resource.applied","resource.deleted"],
		"repositories":["**"],"format":"distribution","timeout":"5s","retry":{"initialBackoff":"1s","maxBackoff":"5m0s","maxDeliveries":20},"enabled":false}}`
	pullsJSON = `{"apiVersion":"berth.dev/v1","kind":"Webhook","metadata":{"name":"pulls","generation":1,"creationTimestamp":"2026-03-15T11:59:00Z"},
		"spec":{"url":"https://p.io","events":["manifest.pushed","manifest.deleted","tag.updated","tag.deleted","repository.deleted","resource.applied","resource.deleted","manifest.pulled","blob.pulled"],
		"repositories":["**"],"format":"cloudevents","timeout":"5s","retry":{"initialBackoff":"1s","maxBackoff":"5m0s","maxDeliveries":20},"signing":{"secretRef":{"name":"p","key":"k"}},"enabled":true},
		"status":{"conditions":[{"type":"SecretResolved","status":"True","reason":"SecretFound"}]}}`
)

func TestPrintWebhooks(t *testing.T) {
	items := docs(t, ciJSON, allJSON, pullsJSON)
	got := render(t, func(b *bytes.Buffer) error { return printList(b, items, "", now) })
	want := `NAME    URL                                  EVENTS                                REPOSITORIES               FORMAT         ENABLED   STATUS           AGE
ci      https://ci.example.com/hooks/berth   manifest.pushed,tag.deleted           team-a/**,!team-a/tmp/**   cloudevents    true      SecretNotFound   2h
audit   http://audit.internal/in             all-but-pulls                         **                         distribution   false     -                3d
pulls   https://p.io                         default+manifest.pulled,blob.pulled   **                         cloudevents    true      Ready            60s
`
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	got = render(t, func(b *bytes.Buffer) error { return printList(b, items[:2], "wide", now) })
	want = `NAME    URL                                  EVENTS                        REPOSITORIES               FORMAT         ENABLED   STATUS           AGE   TIMEOUT   MAX-DELIVERIES   SIGNING        GENERATION   LABELS   CREATED
ci      https://ci.example.com/hooks/berth   manifest.pushed,tag.deleted   team-a/**,!team-a/tmp/**   cloudevents    true      SecretNotFound   2h    5s        20               ci-hook/hmac   2            -        2026-03-15T10:00:00Z
audit   http://audit.internal/in             all-but-pulls                 **                         distribution   false     -                3d    5s        20               -              1            -        2026-03-12T12:00:00Z
`
	if got != want {
		t.Errorf("wide:\n%s\nwant:\n%s", got, want)
	}

	got = render(t, func(b *bytes.Buffer) error { return printOne(b, items[0], "", now) })
	want = `Webhook Details
Name:         ci
URL:          https://ci.example.com/hooks/berth
Enabled:      true
Events:       manifest.pushed, tag.deleted
Repositories: team-a/**, !team-a/tmp/**
Format:       cloudevents
Headers:      X-Env=prod; X-Team=a,b
Timeout:      5s
Retry:        initialBackoff 1s, maxBackoff 5m0s, maxDeliveries 20
Signing:      HMAC-SHA256 (secret ci-hook, key hmac)
Conditions:   SecretResolved=False (SecretNotFound): secret not found: no file /data/secrets/ci-hook/hmac
Labels:       -
Annotations:  -
Generation:   2
Created:      2026-03-15T10:00:00Z
Updated:      2026-03-15T11:00:00Z
`
	if got != want {
		t.Errorf("details:\n%s\nwant:\n%s", got, want)
	}
}
