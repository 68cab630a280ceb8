package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"
)

// globals are the connection settings every command shares.
type globals struct {
	server    string
	token     string
	tokenFile string
}

// resolve applies the precedence flag > environment > default.
func (g *globals) resolve() (server, token string, err error) {
	server = firstNonEmpty(g.server, os.Getenv("BERTH_SERVER"), "http://127.0.0.1:5000")
	server = strings.TrimRight(server, "/")
	if !strings.HasPrefix(server, "http://") && !strings.HasPrefix(server, "https://") {
		server = "http://" + server
	}
	token = firstNonEmpty(g.token, os.Getenv("BERTH_TOKEN"))
	if token == "" {
		b, err := os.ReadFile(g.tokenFile)
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("no admin token: pass --token, set BERTH_TOKEN, or run from the directory holding data/admin.token (or pass --token-file)")
		}
		if err != nil {
			return "", "", fmt.Errorf("read admin token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	return server, token, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// call sends one admin request and decodes a JSON answer into out (when
// out is not nil). Error answers become errors carrying the server's text.
func (g *globals) call(method, path string, body io.Reader, out any) error {
	resp, err := g.do(method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return serverError(resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("unexpected answer from server: %w", err)
	}
	return nil
}

func (g *globals) do(method, path string, body io.Reader) (*http.Response, error) {
	server, token, err := g.resolve()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(method, server+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	client := &http.Client{Timeout: 10 * time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w (is registryd running? set --server or BERTH_SERVER)", server, err)
	}
	return resp, nil
}

// serverError turns an error answer into a readable error.
func serverError(code int, b []byte) error {
	var e struct {
		Error     string `json:"error"`
		Documents []struct {
			Document int      `json:"document"`
			Kind     string   `json:"kind"`
			Name     string   `json:"name"`
			Problems []string `json:"problems"`
		} `json:"documents"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		return fmt.Errorf("server answered %d: %s", code, bytes.TrimSpace(b))
	}
	var sb strings.Builder
	sb.WriteString(e.Error)
	for _, d := range e.Documents {
		fmt.Fprintf(&sb, "\n  document %d", d.Document)
		if d.Kind != "" || d.Name != "" {
			fmt.Fprintf(&sb, " (%s %q)", d.Kind, d.Name)
		}
		sb.WriteString(":")
		for _, p := range d.Problems {
			sb.WriteString("\n    - " + p)
		}
	}
	if code == http.StatusUnauthorized {
		sb.WriteString("\n(check --token, BERTH_TOKEN or --token-file)")
	}
	return errors.New(sb.String())
}
