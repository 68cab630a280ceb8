package secrets

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/fsm/resource"
)

const value = "s3cret-value"

// layout writes a secrets directory: plain files, a Kubernetes-style
// mounted Secret (key -> ..data/key, ..data -> ..2026_11_30_x), and links
// that lead out of it.
func layout(t *testing.T) (dir, outside string) {
	t.Helper()
	base := t.TempDir()
	dir, outside = filepath.Join(base, "secrets"), filepath.Join(base, "outside")
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, path string) {
		t.Helper()
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "plain", "hmac"), value+"\n")
	write(filepath.Join(dir, "plain", "crlf"), value+"\r\n")
	write(filepath.Join(dir, "plain", "exact"), value)
	write(filepath.Join(dir, "plain", "empty"), "")
	write(filepath.Join(dir, "plain", "newline"), "\n")
	write(filepath.Join(dir, "plain", "max"), strings.Repeat("k", MaxSize))
	write(filepath.Join(dir, "plain", "big"), strings.Repeat("k", MaxSize+1))
	if err := os.MkdirAll(filepath.Join(dir, "plain", "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(dir, "k8s", "..2026_11_30_10_00_00.123", "hmac"), value)
	link("..2026_11_30_10_00_00.123", filepath.Join(dir, "k8s", "..data"))
	link(filepath.Join("..data", "hmac"), filepath.Join(dir, "k8s", "hmac"))
	write(filepath.Join(outside, "stolen"), value)
	write(filepath.Join(dir, "escape", "placeholder"), "")
	link(filepath.Join(outside, "stolen"), filepath.Join(dir, "escape", "abs"))
	link(filepath.Join("..", "..", "outside", "stolen"), filepath.Join(dir, "escape", "rel"))
	link(outside, filepath.Join(dir, "whole"))
	return dir, outside
}

func TestResolve(t *testing.T) {
	dir, _ := layout(t)
	r := New(dir)
	tests := []struct {
		name, secret, key string
		want              string // the value, or "" when an error is expected
		err               error  // errors.Is target, nil for any error
		msg               string // part of the error message
	}{
		{"trailing newline removed", "plain", "hmac", value, nil, ""},
		{"trailing CRLF removed", "plain", "crlf", value, nil, ""},
		{"exact", "plain", "exact", value, nil, ""},
		{"Kubernetes mounted Secret", "k8s", "hmac", value, nil, ""},
		{"exactly the maximum size", "plain", "max", strings.Repeat("k", MaxSize), nil, ""},
		{"missing key", "plain", "nope", "", ErrNotFound, "no file " + filepath.Join(dir, "plain", "nope")},
		{"missing secret", "nope", "hmac", "", ErrNotFound, "mount the secret under " + dir},
		{"too large", "plain", "big", "", ErrTooLarge, "65537 bytes, at most 65536"},
		{"empty", "plain", "empty", "", ErrEmpty, ""},
		{"only a newline", "plain", "newline", "", ErrEmpty, ""},
		{"a directory", "plain", "sub", "", ErrNotFile, ""},
		{"absolute link out", "escape", "abs", "", nil, "escapes"},
		{"relative link out", "escape", "rel", "", nil, "escapes"},
		{"secret directory linked out", "whole", "stolen", "", nil, "escapes"},
		{"dot-dot key", "plain", "..", "", ErrInvalidRef, ""},
		{"Kubernetes internal key", "k8s", "..data", "", ErrInvalidRef, ""},
		{"dot key", "plain", ".", "", ErrInvalidRef, ""},
		{"slash in key", "plain", "sub/x", "", ErrInvalidRef, ""},
		{"traversal in name", "../outside", "stolen", "", ErrInvalidRef, ""},
		{"no key", "plain", "", "", ErrInvalidRef, "a key is needed"},
		{"no name", "", "hmac", "", ErrInvalidRef, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Resolve(context.Background(), resource.SecretRef{Name: tt.secret, Key: tt.key})
			if tt.want != "" {
				if err != nil || string(got) != tt.want {
					t.Fatalf("Resolve = %.20q, %v; want %.20q", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve = %q, want an error", got)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want it to contain %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), value) || strings.Contains(err.Error(), "kkkk") {
				t.Errorf("the error reveals the secret: %v", err)
			}
		})
	}
}

// A rotated secret is read on the next call, without a restart.
func TestResolveReadsFresh(t *testing.T) {
	dir := t.TempDir()
	r := New(filepath.Join(dir, "not-yet"))
	ref := resource.SecretRef{Name: "ci-hook", Key: "hmac"}
	if _, err := r.Resolve(context.Background(), ref); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing secrets dir: err = %v, want ErrNotFound", err)
	}
	r = New(dir)
	path := filepath.Join(dir, "ci-hook", "hmac")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"one", "two"} {
		if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := r.Resolve(context.Background(), ref)
		if err != nil || string(got) != v {
			t.Fatalf("Resolve = %q, %v; want %q", got, err, v)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Resolve(ctx, ref); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: err = %v", err)
	}
}

func TestConditions(t *testing.T) {
	dir, _ := layout(t)
	r := New(dir)
	tests := []struct {
		name, kind, doc string
		want            []resource.Condition
	}{
		{"webhook secret found", "Webhook", `{"spec":{"url":"https://c.io","signing":{"secretRef":{"name":"k8s","key":"hmac"}}}}`,
			[]resource.Condition{{Type: "SecretResolved", Status: "True", Reason: "SecretFound"}}},
		{"webhook secret missing", "Webhook", `{"spec":{"signing":{"secretRef":{"name":"ci-hook","key":"hmac"}}}}`,
			[]resource.Condition{{Type: "SecretResolved", Status: "False", Reason: "SecretNotFound", Message: "secret not found: no file " + filepath.Join(dir, "ci-hook", "hmac") + " (create it on every node, or mount the secret under " + dir + ")"}}},
		{"webhook secret empty", "Webhook", `{"spec":{"signing":{"secretRef":{"name":"plain","key":"empty"}}}}`,
			[]resource.Condition{{Type: "SecretResolved", Status: "False", Reason: "SecretEmpty", Message: "secret is empty: " + filepath.Join(dir, "plain", "empty")}}},
		{"webhook secret too large", "Webhook", `{"spec":{"signing":{"secretRef":{"name":"plain","key":"big"}}}}`,
			[]resource.Condition{{Type: "SecretResolved", Status: "False", Reason: "SecretTooLarge", Message: "secret too large: " + filepath.Join(dir, "plain", "big") + " has 65537 bytes, at most 65536 allowed"}}},
		{"webhook without signing", "Webhook", `{"spec":{"url":"https://c.io"}}`, nil},
		{"webhook with events", "Webhook", `{"spec":{"events":["manifest.pushed"],"signing":{"secretRef":{"name":"k8s","key":"hmac"}}}}`,
			[]resource.Condition{{Type: "SecretResolved", Status: "True", Reason: "SecretFound"}}},
		{"registry secret directory", "Registry", `{"spec":{"credentials":{"type":"basic","secretRef":{"name":"plain"}}}}`,
			[]resource.Condition{{Type: "SecretResolved", Status: "True", Reason: "SecretFound"}}},
		{"registry secret key missing", "Registry", `{"spec":{"credentials":{"type":"basic","secretRef":{"name":"plain","key":"password"}}}}`,
			[]resource.Condition{{Type: "SecretResolved", Status: "False", Reason: "SecretNotFound", Message: "secret not found: no file " + filepath.Join(dir, "plain", "password") + " (create it on every node, or mount the secret under " + dir + ")"}}},
		{"registry without credentials", "Registry", `{"spec":{"type":"zot"}}`, nil},
		{"berth origin's NATS token found", "Registry", `{"spec":{"type":"berth","events":{"credentials":{"type":"token","secretRef":{"name":"k8s","key":"hmac"}}}}}`,
			[]resource.Condition{{Type: "SecretResolved", Status: "True", Reason: "SecretFound"}}},
		{"berth origin's NATS creds missing", "Registry", `{"spec":{"type":"berth","credentials":{"type":"basic","secretRef":{"name":"plain"}},"events":{"credentials":{"type":"creds","secretRef":{"name":"origin-nats"}}}}}`,
			[]resource.Condition{{Type: "SecretResolved", Status: "False", Reason: "SecretNotFound", Message: "secret not found: no file " + filepath.Join(dir, "origin-nats", "creds") + " (create it on every node, or mount the secret under " + dir + ")"}}},
		{"other kind", "Widget", `{"spec":{"signing":{"secretRef":{"name":"x","key":"y"}}}}`, nil},
		{"not JSON", "Webhook", `nope`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Conditions(context.Background(), tt.kind, "x", []byte(tt.doc))
			if len(got) != len(tt.want) {
				t.Fatalf("conditions = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("condition %d =\n  %+v\nwant\n  %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
