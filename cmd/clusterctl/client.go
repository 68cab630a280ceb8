package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults for finding a node and its token.
const (
	defaultServer    = "http://127.0.0.1:5000"
	defaultTokenFile = "./data/admin.token"
)

// globals are the connection settings every command shares.
type globals struct {
	server       string
	token        string
	tokenFile    string
	tokenFileSet bool // --token-file given explicitly
	// cacert is a PEM file of CA certificates to trust for https://
	// servers, besides the system's (--cacert, BERTH_CACERT).
	cacert string
	// getenv reads the environment; tests replace it.
	getenv func(string) string
}

// resolveServer applies the precedence --server > BERTH_SERVER > default,
// and accepts host:port without a scheme.
func (g *globals) resolveServer() (string, error) {
	s := firstNonEmpty(g.server, g.getenv("BERTH_SERVER"), defaultServer)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("server %q is not a URL like http://127.0.0.1:5000: fix --server or BERTH_SERVER", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// resolveToken applies the precedence --token > --token-file (when given)
// > BERTH_TOKEN > ./data/admin.token, which a single node writes on first
// start.
func (g *globals) resolveToken() (string, error) {
	if g.token != "" {
		return g.token, nil
	}
	if !g.tokenFileSet {
		if t := g.getenv("BERTH_TOKEN"); t != "" {
			return t, nil
		}
	}
	file := firstNonEmpty(g.tokenFile, defaultTokenFile)
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist) && g.tokenFileSet:
		return "", fmt.Errorf("no admin token: --token-file %s does not exist", file)
	case errors.Is(err, fs.ErrNotExist):
		return "", errors.New("no admin token: pass --token, set BERTH_TOKEN, or run from the directory holding data/admin.token (or pass --token-file)")
	case err != nil:
		return "", fmt.Errorf("read admin token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("no admin token: %s is empty", file)
	}
	return t, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// apiError is an error answer of the admin API.
type apiError struct {
	Status    int
	Message   string
	Documents []documentError
	// Results are the documents of an apply that were applied before it
	// failed.
	Results []applyResult
}

type documentError struct {
	Document int      `json:"document"`
	Line     int      `json:"line"`
	Kind     string   `json:"kind"`
	Name     string   `json:"name"`
	Problems []string `json:"problems"`
}

type applyResult struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Generation int64  `json:"generation"`
	Action     string `json:"action"`
}

// Error renders the server's message and every problem it listed, so
// that a user sees all that needs fixing.
func (e *apiError) Error() string {
	var sb strings.Builder
	sb.WriteString(e.Message)
	for _, d := range e.Documents {
		fmt.Fprintf(&sb, "\n  document %d", d.Document)
		if d.Line > 0 {
			fmt.Fprintf(&sb, " (line %d)", d.Line)
		}
		if d.Kind != "" || d.Name != "" {
			fmt.Fprintf(&sb, ", %s %q", d.Kind, d.Name)
		}
		sb.WriteString(":")
		for _, p := range d.Problems {
			sb.WriteString("\n    - " + p)
		}
	}
	if e.Status == http.StatusUnauthorized {
		sb.WriteString("\n(check --token, BERTH_TOKEN or --token-file)")
	}
	return sb.String()
}

// serverError turns an error answer into an *apiError, keeping the body
// as the message when it is not the API's JSON (a proxy's error page).
func serverError(code int, b []byte) error {
	var e struct {
		Error     string          `json:"error"`
		Documents []documentError `json:"documents"`
		Results   []applyResult   `json:"results"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		msg := strings.TrimSpace(string(b))
		if len(msg) > 512 {
			msg = msg[:512] + "..."
		}
		return &apiError{Status: code, Message: fmt.Sprintf("server answered %d %s: %s", code, http.StatusText(code), msg)}
	}
	return &apiError{Status: code, Message: e.Error, Documents: e.Documents, Results: e.Results}
}

// call sends one admin request and decodes a JSON answer into out (when
// out is not nil). Error answers become *apiError.
func (g *globals) call(ctx context.Context, method, path string, body io.Reader, out any) error {
	resp, err := g.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read answer from server: %w", err)
	}
	if resp.StatusCode >= 300 {
		return serverError(resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("unexpected answer from server (is --server a Berth node?): %w", err)
	}
	return nil
}

// do sends one authenticated request. The caller closes the body.
func (g *globals) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	// Generous: a snapshot of a large registry takes a while. Ctrl-C
	// cancels through ctx.
	return g.doTimeout(ctx, method, path, body, 30*time.Minute)
}

// doTimeout is do with its own bound on the whole exchange; 0 means none
// (events --follow, which runs until Ctrl-C).
func (g *globals) doTimeout(ctx context.Context, method, path string, body io.Reader, timeout time.Duration) (*http.Response, error) {
	server, err := g.resolveServer()
	if err != nil {
		return nil, err
	}
	token, err := g.resolveToken()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, server+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	tr, err := g.transport()
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: timeout, Transport: tr}
	resp, err := client.Do(req)
	var unknownCA x509.UnknownAuthorityError
	switch {
	case errors.As(err, &unknownCA):
		return nil, fmt.Errorf("cannot reach %s: %w (its certificate is from a CA this machine does not trust: pass that CA's certificate with --cacert or BERTH_CACERT)", server, err)
	case err != nil:
		return nil, fmt.Errorf("cannot reach %s: %w (is registryd running? set --server or BERTH_SERVER)", server, err)
	}
	return resp, nil
}

// transport trusts the system's CAs and, with --cacert or BERTH_CACERT,
// the CA certificates in that file: the usual way to reach a cluster whose
// certificates come from its own CA.
func (g *globals) transport() (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	file := firstNonEmpty(g.cacert, g.getenv("BERTH_CACERT"))
	if file == "" {
		return tr, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read --cacert (BERTH_CACERT): %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--cacert (BERTH_CACERT) %s holds no PEM certificate: pass the CA's certificate (ca.crt), not a key", file)
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

// resourcePath builds /admin/v1/resources/KIND[/NAME...] with each part
// escaped.
func resourcePath(kind string, rest ...string) string {
	p := "/admin/v1/resources/" + url.PathEscape(kind)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}
