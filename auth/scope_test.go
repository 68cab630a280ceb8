package auth

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		in   string
		want Scope
	}{
		{"repository:team-a/app:pull,push", Scope{Type: "repository", Name: "team-a/app", Actions: []string{"pull", "push"}}},
		{"repository:team-a/app:push,pull,push", Scope{Type: "repository", Name: "team-a/app", Actions: []string{"pull", "push"}}},
		{"repository:library/ubuntu:*", Scope{Type: "repository", Name: "library/ubuntu", Actions: []string{"*"}}},
		{"repository:alpine:pull", Scope{Type: "repository", Name: "alpine", Actions: []string{"pull"}}},
		{"repository:a.b_c__d--e/f:delete", Scope{Type: "repository", Name: "a.b_c__d--e/f", Actions: []string{"delete"}}},
		{"repository(plugin):vieux/sshfs:pull", Scope{Type: "repository", Class: "plugin", Name: "vieux/sshfs", Actions: []string{"pull"}}},
		{"registry:catalog:*", Scope{Type: "registry", Name: "catalog", Actions: []string{"*"}}},
		{"repository:a:metadata", Scope{Type: "repository", Name: "a", Actions: []string{"metadata"}}},
		{"repository:" + strings.Repeat("a", 255) + ":pull", Scope{Type: "repository", Name: strings.Repeat("a", 255), Actions: []string{"pull"}}},
	}
	for _, tt := range tests {
		got, err := ParseScope(tt.in)
		if err != nil {
			t.Errorf("ParseScope(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseScope(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if again, err := ParseScope(got.String()); err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("%q does not parse back: %+v, %v", got.String(), again, err)
		}
	}
}

func TestParseScopeErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "want type:name:actions"},
		{"repository", "want type:name:actions"},
		{"repository:pull", "want type:name:actions"},
		{"repository::pull", "no repository name"},
		{"repository:a:", "no actions"},
		{"Repository:a:pull", `resource type "Repository" is not a lower-case word`},
		{"blob:a:pull", `unknown resource type "blob"`},
		{"repository:Team/App:pull", `"Team/App" is not a repository name`},
		{"repository:a//b:pull", "is not a repository name"},
		{"repository:/a:pull", "is not a repository name"},
		{"repository:a/:pull", "is not a repository name"},
		{"repository:localhost:5000/a:pull", "has a host or port"},
		{"repository:" + strings.Repeat("a", 256) + ":pull", "256 bytes, at most 255"},
		{"repository:a:PULL", `action "PULL" is not a lower-case word`},
		{"repository:a:pull,,push", `action "" is not`},
		{"repository:a:pull;rm", `action "pull;rm"`},
		{"repository:a:pu*", `action "pu*"`},
		{"repository:a:" + strings.Repeat("x,", 8) + "y", "9 actions, at most 8"},
		{"registry:users:*", `registry scopes name "catalog"`},
		{"repository:" + strings.Repeat("a/", 300) + "a:pull", "bytes, at most 512 allowed"},
		{"repository:a b:pull", "is not a repository name"},
	}
	for _, tt := range tests {
		_, err := ParseScope(tt.in)
		var se *ScopeError
		if !errors.As(err, &se) {
			t.Errorf("ParseScope(%q) = %v, want a ScopeError", tt.in, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseScope(%q) = %q, want it to contain %q", tt.in, err, tt.want)
		}
		if len(err.Error()) > MaxScopeLength+200 {
			t.Errorf("error for a long scope is %d bytes: the input is not cut", len(err.Error()))
		}
	}
}

func TestParseScopes(t *testing.T) {
	got, err := ParseScopes([]string{
		"repository:b:pull repository:a:push",
		"repository:a:pull",
		"registry:catalog:*",
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := FormatScopes(got); s != "registry:catalog:* repository:a:pull,push repository:b:pull" {
		t.Errorf("merged and sorted = %q", s)
	}
	if got, err := ParseScopes(nil); err != nil || len(got) != 0 {
		t.Errorf("no scopes (docker login) = %v, %v", got, err)
	}
	many := strings.TrimSpace(strings.Repeat("repository:a:pull ", MaxScopes))
	if _, err := ParseScopes([]string{many}); err != nil {
		t.Errorf("%d scopes refused: %v", MaxScopes, err)
	}
	if _, err := ParseScopes([]string{many, "repository:a:pull"}); err == nil || !strings.Contains(err.Error(), "more than 16 scopes") {
		t.Errorf("%d scopes: %v", MaxScopes+1, err)
	}
	if _, err := ParseScopes([]string{strings.Repeat(" ", MaxScopes*MaxScopeLength+1)}); err == nil || !strings.Contains(err.Error(), "at most 8192") {
		t.Errorf("8 KiB of blanks: %v", err)
	}
	if _, err := ParseScopes([]string{"repository:a:pull", "repository:A:pull"}); err == nil {
		t.Error("one bad scope among good ones accepted")
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"repository:a/b:pull,push", "registry:catalog:*", "repository(plugin):x:pull", "repository:a:", "a:b:c:d", "repository:a__b--c.d/e:*,pull"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sc, err := ParseScope(in)
		if err != nil {
			var se *ScopeError
			if !errors.As(err, &se) {
				t.Fatalf("error is not a ScopeError: %v", err)
			}
			return
		}
		if len(sc.Name) == 0 || len(sc.Name) > MaxNameLength || len(sc.Actions) == 0 {
			t.Fatalf("accepted out of bounds: %+v", sc)
		}
		again, err := ParseScope(sc.String())
		if err != nil || !reflect.DeepEqual(again, sc) {
			t.Fatalf("String does not parse back: %q -> %+v, %v", sc.String(), again, err)
		}
	})
}
