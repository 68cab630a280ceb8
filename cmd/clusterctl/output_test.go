package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

func docs(t *testing.T, js ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, j := range js {
		var m map[string]any
		if err := json.Unmarshal([]byte(j), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

const (
	hubJSON = `{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"hub","labels":{"team":"platform","env":"prod"},"generation":2,"creationTimestamp":"2026-03-15T10:00:00Z","updateTimestamp":"2026-03-15T11:59:30Z"},
		"spec":{"type":"dockerhub","url":"https://registry-1.docker.io","enabled":true,"description":"Docker Hub","credentials":{"type":"basic","secretRef":{"name":"hub-creds","key":"password"}},"tls":{"caBundle":"-----BEGIN CERTIFICATE-----\n...","serverName":"hub.internal"}}}`
	zotJSON = `{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"local-zot","generation":1,"creationTimestamp":"2026-03-12T12:00:00Z"},
		"spec":{"type":"zot","url":"http://zot.internal:5000","enabled":false,"insecure":true}}`
)

func render(t *testing.T, f func(*bytes.Buffer) error) string {
	t.Helper()
	var b bytes.Buffer
	if err := f(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestPrintListTable(t *testing.T) {
	items := docs(t, hubJSON, zotJSON)
	got := render(t, func(b *bytes.Buffer) error { return printList(b, items, "", now) })
	want := `NAME        TYPE        URL                            ENABLED   GENERATION   AGE
hub         dockerhub   https://registry-1.docker.io   true      2            2h
local-zot   zot         http://zot.internal:5000       false     1            3d
`
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	got = render(t, func(b *bytes.Buffer) error { return printList(b, items, "wide", now) })
	want = `NAME        TYPE        URL                            ENABLED   GENERATION   AGE   INSECURE   CREDENTIALS   LABELS                   CREATED                DESCRIPTION
hub         dockerhub   https://registry-1.docker.io   true      2            2h    -          basic         env=prod,team=platform   2026-03-15T10:00:00Z   Docker Hub
local-zot   zot         http://zot.internal:5000       false     1            3d    true       -             -                        2026-03-12T12:00:00Z   -
`
	if got != want {
		t.Errorf("wide:\n%s\nwant:\n%s", got, want)
	}
	if got := render(t, func(b *bytes.Buffer) error { return printList(b, nil, "", now) }); got != "No resources found.\n" {
		t.Errorf("empty: %q", got)
	}
}

func TestPrintListYAMLAndJSON(t *testing.T) {
	items := docs(t, hubJSON, zotJSON)
	y := render(t, func(b *bytes.Buffer) error { return printList(b, items, "yaml", now) })
	if strings.Count(y, "\n---\n") != 1 || !strings.HasPrefix(y, "apiVersion: berth.dev/v1\nkind: Registry\nmetadata:\n") || !strings.Contains(y, "\n  generation: 2\n") {
		t.Errorf("yaml:\n%s", y)
	}
	j := render(t, func(b *bytes.Buffer) error { return printList(b, items, "json", now) })
	var back struct{ Items []map[string]any }
	if err := json.Unmarshal([]byte(j), &back); err != nil || len(back.Items) != 2 || str(back.Items[1], "metadata.name") != "local-zot" {
		t.Errorf("json: %v\n%s", err, j)
	}
}

func TestPrintOneDetails(t *testing.T) {
	got := render(t, func(b *bytes.Buffer) error { return printOne(b, docs(t, hubJSON)[0], "", now) })
	want := `Registry Details
Name:        hub
Type:        dockerhub
URL:         https://registry-1.docker.io
Enabled:     true
Description: Docker Hub
Namespace:   -
Insecure:    -
TLS:         caBundle=(inline PEM),serverName=hub.internal
Credentials: basic (secret hub-creds, key password)
Labels:      env=prod,team=platform
Annotations: -
Generation:  2
Created:     2026-03-15T10:00:00Z
Updated:     2026-03-15T11:59:30Z
`
	if got != want {
		t.Errorf("details:\n%s\nwant:\n%s", got, want)
	}
	// A kind without its own layout still shows its metadata.
	got = render(t, func(b *bytes.Buffer) error {
		return printOne(b, docs(t, `{"kind":"Widget","metadata":{"name":"w","generation":1}}`)[0], "", now)
	})
	if !strings.HasPrefix(got, "Widget Details\nName:        w\nLabels:") {
		t.Errorf("generic details:\n%s", got)
	}
}

func TestAge(t *testing.T) {
	tests := []struct{ ts, want string }{
		{"2026-03-15T11:59:30Z", "30s"},
		{"2026-03-15T11:58:01Z", "119s"},
		{"2026-03-15T11:58:00Z", "2m"},
		{"2026-03-15T10:00:01Z", "119m"},
		{"2026-03-15T10:00:00Z", "2h"},
		{"2026-03-13T12:00:01Z", "47h"},
		{"2026-03-13T12:00:00Z", "2d"},
		{"2026-03-15T12:00:10Z", "0s"}, // a node clock slightly ahead
		{"", "<unknown>"},
	}
	for _, tt := range tests {
		if got := age(tt.ts, now); got != tt.want {
			t.Errorf("age(%q) = %q, want %q", tt.ts, got, tt.want)
		}
	}
}

func TestCheckOutput(t *testing.T) {
	if err := checkOutput("xml", "yaml", "json", "wide"); err == nil || err.Error() != `unknown output format "xml": use yaml, json or wide` {
		t.Errorf("err = %v", err)
	}
	for _, o := range []string{"", "yaml", "wide"} {
		if err := checkOutput(o, "yaml", "json", "wide"); err != nil {
			t.Errorf("%q: %v", o, err)
		}
	}
}
