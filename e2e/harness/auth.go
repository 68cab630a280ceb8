package harness

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Basic is the Authorization header of Basic credentials.
func Basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// Token asks base's token endpoint (GET /token, Docker's token flow) for
// a token with the given scopes, signing in with Basic credentials (none
// if user is empty). It returns the token, or an error with the status
// and body when none was issued.
func Token(ctx context.Context, base, user, password string, scopes ...string) (string, error) {
	// No service parameter: the endpoint serves one service, and a test
	// may have configured another name than the default.
	q := url.Values{}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	hdr := map[string]string{}
	if user != "" {
		hdr["Authorization"] = Basic(user, password)
	}
	code, _, body, err := HTTPStatus(ctx, "GET", URL(ctx, base, "/token?"+q.Encode()), hdr, nil)
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("GET /token: %d %s", code, strings.TrimSpace(string(body)))
	}
	var tr struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.Token == "" || tr.Token != tr.AccessToken {
		return "", fmt.Errorf("GET /token: answer without a token (or token and access_token differ): %v: %s", err, body)
	}
	return tr.Token, nil
}

// Challenge is a parsed WWW-Authenticate header: its scheme and its
// parameters (realm, service, scope, error).
type Challenge struct {
	Scheme string
	Params map[string]string
}

// ParseChallenge reads one challenge of the form
// Bearer realm="...",service="...",scope="...". Quoted values may hold
// commas and spaces (scope lists several scopes).
func ParseChallenge(h string) (Challenge, error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok {
		return Challenge{}, fmt.Errorf("challenge %q has no parameters", h)
	}
	c := Challenge{Scheme: scheme, Params: map[string]string{}}
	for rest = strings.TrimSpace(rest); rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		if !ok || !strings.HasPrefix(after, `"`) {
			return Challenge{}, fmt.Errorf("challenge %q: parameter %q is not key=\"value\"", h, rest)
		}
		end := strings.IndexByte(after[1:], '"')
		if end < 0 {
			return Challenge{}, fmt.Errorf("challenge %q: unterminated quote", h)
		}
		c.Params[strings.TrimSpace(key)] = after[1 : end+1]
		rest = strings.TrimPrefix(strings.TrimSpace(after[end+2:]), ",")
		rest = strings.TrimSpace(rest)
	}
	return c, nil
}

// OCIError is the first entry of an OCI error body ({"errors":[...]}).
type OCIError struct {
	Code, Message string
}

// ParseOCIError reads the first error of an OCI error body.
func ParseOCIError(body []byte) (OCIError, error) {
	var e struct {
		Errors []OCIError `json:"errors"`
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 {
		return OCIError{}, fmt.Errorf("not an OCI error body (%v): %.300s", err, body)
	}
	return e.Errors[0], nil
}

// Request is HTTPStatus with an Authorization header (none if empty).
func Request(ctx context.Context, method, url, authorization string) (int, http.Header, []byte, error) {
	return HTTPStatus(ctx, method, url, withAuth(map[string]string{}, authorization), nil)
}
