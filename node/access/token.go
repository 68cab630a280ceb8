package access

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/auth"
)

// maxTokenForm bounds a POST /token body.
const maxTokenForm = 64 << 10

// tokenResponse is the token endpoint's answer; token and access_token
// are the same, for Docker clients and OAuth2 clients.
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// TokenHandler serves the token endpoint: GET with Basic credentials or
// none (Distribution's token spec), or POST with grant_type=password
// (Docker's OAuth2 flow). The token grants the asked scopes intersected
// with what the identity may do; a scope of which nothing is granted is
// left out, and the registry refuses the later request.
func (s *Server) TokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		var creds credentials
		var q map[string][]string
		switch r.Method {
		case http.MethodGet:
			c, err := parseAuthorization(r.Header.Get("Authorization"))
			if err != nil || c.scheme == "bearer" {
				s.fail(r, "login", "malformed")
				tokenError(w, http.StatusBadRequest, "invalid_request", "send Basic credentials, or none for anonymous access")
				return
			}
			creds, q = c, r.URL.Query()
		case http.MethodPost:
			r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
			if err := r.ParseForm(); err != nil {
				tokenError(w, http.StatusBadRequest, "invalid_request", "unreadable form: "+err.Error())
				return
			}
			q = r.PostForm
			switch gt := r.PostForm.Get("grant_type"); gt {
			case "password":
				creds = credentials{scheme: "basic", user: r.PostForm.Get("username"), password: r.PostForm.Get("password")}
			default:
				tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type "+strconv.Quote(gt)+" is not supported: use password")
				return
			}
		default:
			w.Header().Set("Allow", "GET, POST")
			tokenError(w, http.StatusMethodNotAllowed, "invalid_request", r.Method+" is not supported here")
			return
		}
		if svc := first(q["service"]); svc != "" && svc != s.cfg.Service {
			tokenError(w, http.StatusBadRequest, "invalid_request", "this token endpoint serves "+strconv.Quote(s.cfg.Service)+", not "+strconv.Quote(svc))
			return
		}
		scopes, err := auth.ParseScopes(splitScopes(q["scope"]))
		if err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_scope", err.Error())
			return
		}
		view, err := s.views.ReadView(r.Context())
		if err != nil {
			w.Header().Set("Retry-After", "1")
			tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "cannot read the cluster state: "+err.Error())
			return
		}
		id := auth.Identity{}
		if creds.scheme == "basic" {
			if id, err = s.signIn(view, creds); err != nil {
				s.fail(r, "login", "credentials")
				s.audit.refused(r, "sign-in refused", err)
				w.Header().Set("WWW-Authenticate", `Basic realm="berth"`)
				tokenError(w, http.StatusUnauthorized, "invalid_grant", auth.ErrBadCredentials.Error())
				return
			}
		}
		access, err := auth.Decide(id, scopes, s.dir(view))
		if err != nil {
			w.Header().Set("Retry-After", "1")
			tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "cannot decide access: "+err.Error())
			return
		}
		key, _, err := s.keys.at(view)
		if err != nil {
			if errors.Is(err, ErrNoKey) {
				w.Header().Set("Retry-After", "2")
				tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
				return
			}
			s.cfg.Logger.Error("token signing key unusable", "err", err)
			tokenError(w, http.StatusInternalServerError, "server_error", "the signing key cannot be opened on this node; see its log")
			return
		}
		iss := auth.TokenIssuer{Issuer: s.cfg.Issuer, Key: key, TTL: s.cfg.TokenTTL, Now: s.cfg.Now}
		tok, claims, err := iss.Issue(id.Subject(), s.cfg.Service, access)
		if err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_scope", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(tokenResponse{
			Token: tok, AccessToken: tok,
			ExpiresIn: int(claims.ExpiresAt.Sub(claims.IssuedAt) / time.Second),
			IssuedAt:  claims.IssuedAt.UTC().Format(time.RFC3339),
		})
	})
}

// splitScopes accepts repeated scope parameters and space-separated
// scopes in one (OAuth2's form), bounded by ParseScopes.
func splitScopes(values []string) []string {
	var out []string
	for _, v := range values {
		out = append(out, strings.Fields(v)...)
		if len(out) > auth.MaxScopes {
			break
		}
	}
	return out
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// tokenError answers in OAuth2's error format, which Docker's client
// reads, with the OCI errors array beside it for other clients.
func tokenError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	oci := "UNAUTHORIZED"
	if status == http.StatusServiceUnavailable || status >= 500 {
		oci = "UNAVAILABLE"
	} else if status != http.StatusUnauthorized {
		oci = "UNSUPPORTED"
	}
	json.NewEncoder(w).Encode(map[string]any{
		"error": code, "error_description": msg,
		"errors": []map[string]string{{"code": oci, "message": msg}},
	})
}
