package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestResolveServer(t *testing.T) {
	tests := []struct {
		flag, env, want, err string
	}{
		{"", "", "http://127.0.0.1:5000", ""},
		{"", "https://berth.example.com/", "https://berth.example.com", ""},
		{"http://a:1", "http://b:2", "http://a:1", ""},
		{"10.0.0.1:5000", "", "http://10.0.0.1:5000", ""},
		{"ftp://x", "", "", "not a URL like http://127.0.0.1:5000"},
		{"http://", "", "", "fix --server or BERTH_SERVER"},
	}
	for _, tt := range tests {
		g := &globals{server: tt.flag, getenv: env(map[string]string{"BERTH_SERVER": tt.env})}
		got, err := g.resolveServer()
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("flag %q env %q: %q, %v; want %q, %q", tt.flag, tt.env, got, err, tt.want, tt.err)
		}
	}
}

func TestResolveToken(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	other := write("other.token", "from-file\n")
	empty := write("empty.token", " \n")

	tests := []struct {
		name          string
		flag, envTok  string
		file          string
		fileSet       bool
		defaultExists bool
		want, err     string
	}{
		{name: "flag wins", flag: "f", envTok: "e", file: other, fileSet: true, want: "f"},
		{name: "explicit file beats env", envTok: "e", file: other, fileSet: true, want: "from-file"},
		{name: "env beats default file", envTok: "e", file: defaultTokenFile, defaultExists: true, want: "e"},
		{name: "default file", file: defaultTokenFile, defaultExists: true, want: "from-default"},
		{name: "nothing", file: defaultTokenFile, err: "no admin token: pass --token, set BERTH_TOKEN, or run from the directory holding data/admin.token"},
		{name: "explicit file missing", file: filepath.Join(dir, "nope"), fileSet: true, err: "no admin token: --token-file " + filepath.Join(dir, "nope") + " does not exist"},
		{name: "empty file", file: empty, fileSet: true, err: "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(filepath.Join(dir, "data"))
			if tt.defaultExists {
				write("data/admin.token", "from-default\n")
			}
			g := &globals{token: tt.flag, tokenFile: tt.file, tokenFileSet: tt.fileSet, getenv: env(map[string]string{"BERTH_TOKEN": tt.envTok})}
			got, err := g.resolveToken()
			if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("got %q, %v; want %q, %q", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestServerError(t *testing.T) {
	tests := []struct {
		code int
		body string
		want string
	}{
		{400, `{"error":"invalid resources, nothing was applied","documents":[{"document":2,"line":10,"kind":"Registry","name":"x","problems":["spec.url: required","spec.type: bad"]}]}`,
			"invalid resources, nothing was applied\n  document 2 (line 10), Registry \"x\":\n    - spec.url: required\n    - spec.type: bad"},
		{404, `{"error":"Registry \"x\" not found"}`, `Registry "x" not found`},
		{401, `{"error":"admin token missing or wrong"}`, "admin token missing or wrong\n(check --token, BERTH_TOKEN or --token-file)"},
		{502, "<html>Bad Gateway</html>", "server answered 502 Bad Gateway: <html>Bad Gateway</html>"},
	}
	for _, tt := range tests {
		err := serverError(tt.code, []byte(tt.body))
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != tt.code || err.Error() != tt.want {
			t.Errorf("serverError(%d) = %q, want %q", tt.code, err, tt.want)
		}
	}
}

func TestResourcePath(t *testing.T) {
	if got := resourcePath("registries", "a b", "history"); got != "/admin/v1/resources/registries/a%20b/history" {
		t.Errorf("resourcePath = %q", got)
	}
}
