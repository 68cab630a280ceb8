package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// complete runs cobra's hidden __complete command, as the shell scripts
// of `clusterctl completion` do on Tab, and returns the candidates (without
// descriptions), the directive line and what went to stderr.
func (c *cli) complete(args ...string) (cands []string, directive string, stderr string) {
	c.t.Helper()
	root := newRoot(env(c.env))
	var out, errOut bytes.Buffer
	root.SetArgs(append([]string{cobra.ShellCompRequestCmd}, args...))
	root.SetOut(&out)
	root.SetErr(&errOut)
	if err := root.ExecuteContext(context.Background()); err != nil {
		c.t.Fatalf("__complete %v: %v", args, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.HasPrefix(line, ":") {
			directive = line
			continue
		}
		cand, _, _ := strings.Cut(line, "\t")
		cands = append(cands, cand)
	}
	return cands, directive, errOut.String()
}

// onlyCobraNotes drops the line cobra itself writes to stderr on every
// completion (the shell scripts discard stderr); what is left is ours.
func onlyCobraNotes(stderr string) string {
	var rest []string
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if line != "" && !strings.HasPrefix(line, "Completion ended with directive:") {
			rest = append(rest, line)
		}
	}
	return strings.Join(rest, "\n")
}

func TestCompletion(t *testing.T) {
	c := newCLI(t)
	c.ok(regs, "apply", "-f", "-")
	c.ok("apiVersion: berth.dev/v1\nkind: Webhook\nmetadata: {name: ci}\nspec: {url: 'https://ci.example/hook'}\n", "apply", "-f", "-")

	// ":4" is ShellCompDirectiveNoFileComp: never fall back to files.
	tests := []struct {
		name string
		args []string
		want string // candidates joined by spaces
	}{
		{"kinds", []string{"get", ""}, "immutabilityrules immutabilityrule immutability ir namespaces namespace ns registries registry reg regs replicationpolicies replicationpolicy replication repl retentionpolicies retentionpolicy retention rp robots robot rbt users user webhooks webhook wh hook hooks"},
		{"kinds by prefix", []string{"get", "re"}, "registries registry reg regs replicationpolicies replicationpolicy replication repl retentionpolicies retentionpolicy retention"},
		{"canonical kinds after a capital", []string{"get", "R"}, "Registry ReplicationPolicy RetentionPolicy Robot"},
		{"registry names", []string{"get", "registries", ""}, "hub zot"},
		{"names by prefix, through an alias", []string{"get", "reg", "z"}, "zot"},
		{"webhook names", []string{"history", "webhook", ""}, "ci"},
		{"no second name for get", []string{"get", "registry", "hub", ""}, ""},
		{"delete takes more names, not the same twice", []string{"delete", "registry", "hub", ""}, "zot"},
		{"unknown kind", []string{"get", "widgets", ""}, ""},
		{"kinds for history", []string{"history", "w"}, "webhooks webhook wh"},
		{"webhook test: webhook names", []string{"webhook", "test", ""}, "ci"},
		{"webhook redeliver: webhook names", []string{"webhook", "redeliver", "c"}, "ci"},
		{"webhook test: one name", []string{"webhook", "test", "ci", ""}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cands, directive, stderr := c.complete(tt.args...)
			if got := strings.Join(cands, " "); got != tt.want {
				t.Errorf("candidates %q, want %q", got, tt.want)
			}
			if directive != ":4" {
				t.Errorf("directive %q, want :4 (no file completion)", directive)
			}
			if rest := onlyCobraNotes(stderr); rest != "" {
				t.Errorf("completion wrote to stderr: %q", rest)
			}
		})
	}
}

// A server that cannot answer, or answers late, or refuses the token,
// completes no names, says nothing, and does not hold up the shell for
// more than completionTimeout.
func TestCompletionFailsQuietly(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"admin token missing or wrong"}`, http.StatusUnauthorized)
	}))
	t.Cleanup(refusing.Close)

	tests := []struct {
		name string
		env  map[string]string
	}{
		{"unreachable", map[string]string{"BERTH_SERVER": "http://127.0.0.1:1", "BERTH_TOKEN": "x"}},
		{"slow", map[string]string{"BERTH_SERVER": slow.URL, "BERTH_TOKEN": "x"}},
		{"wrong token", map[string]string{"BERTH_SERVER": refusing.URL, "BERTH_TOKEN": "x"}},
		{"no token", map[string]string{"BERTH_SERVER": refusing.URL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // no ./data/admin.token
			c := &cli{t: t, env: tt.env}
			start := time.Now()
			cands, directive, stderr := c.complete("get", "registries", "")
			if took := time.Since(start); took > completionTimeout+time.Second {
				t.Errorf("completion took %v", took)
			}
			if len(cands) != 0 || directive != ":4" {
				t.Errorf("candidates %q, directive %q; want none and :4", cands, directive)
			}
			if rest := onlyCobraNotes(stderr); rest != "" {
				t.Errorf("completion wrote to stderr: %q", rest)
			}
		})
	}
}

// `clusterctl completion SHELL` prints that shell's script, which calls
// back into __complete.
func TestCompletionScripts(t *testing.T) {
	c := newCLI(t)
	tests := []struct{ shell, want string }{
		{"bash", "__start_clusterctl"},
		{"zsh", "#compdef clusterctl"},
		{"fish", "complete -c clusterctl"},
		{"powershell", "Register-ArgumentCompleter"},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			out := c.ok("", "completion", tt.shell)
			if !strings.Contains(out, tt.want) || !strings.Contains(out, "__complete") {
				t.Errorf("completion %s lacks %q or __complete:\n%.300s", tt.shell, tt.want, out)
			}
		})
	}
}
