package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// RegistryTypes are the remote registry implementations a Registry record
// can describe.
var RegistryTypes = []string{"berth", "distribution", "harbor", "dockerhub", "ecr", "gcr", "acr", "quay", "gitlab", "artifactory", "nexus", "zot", "generic"}

// CredentialTypes are how Berth authenticates to a remote registry.
var CredentialTypes = []string{"none", "basic", "token", "oauth2"}

// RegistrySpec records a remote or upstream registry: where it is, what it
// runs, how to reach it securely and which credentials to use. Secrets are
// never inline: the spec names a secret, it does not hold one.
type RegistrySpec struct {
	Type        string          `json:"type"`
	URL         string          `json:"url"`
	Description string          `json:"description,omitempty"`
	Namespace   string          `json:"namespace,omitempty"`
	Enabled     *bool           `json:"enabled,omitempty"`
	Insecure    bool            `json:"insecure,omitempty"`
	TLS         *RegistryTLS    `json:"tls,omitempty"`
	Credentials *CredentialsRef `json:"credentials,omitempty"`
}

// RegistryTLS tunes TLS towards the remote registry.
type RegistryTLS struct {
	// CAFile is a PEM bundle on every node to trust for this registry.
	CAFile string `json:"caFile,omitempty"`
	// ServerName overrides the name checked in the server certificate.
	ServerName string `json:"serverName,omitempty"`
	// InsecureSkipVerify turns certificate checks off. Only for testing.
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
	// ClientCertSecret names a secret holding a client certificate and key
	// for mutual TLS.
	ClientCertSecret string `json:"clientCertSecret,omitempty"`
}

// CredentialsRef says how to authenticate and where the secret lives.
type CredentialsRef struct {
	Type      string     `json:"type"`
	SecretRef *SecretRef `json:"secretRef,omitempty"`
}

// SecretRef names a secret (a file under the node's secrets directory, a
// Kubernetes secret) and optionally a key in it.
type SecretRef struct {
	Name string `json:"name"`
	Key  string `json:"key,omitempty"`
}

func validateRegistry(raw json.RawMessage) (any, []error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, []error{fmt.Errorf("spec: required (at least spec.type and spec.url)")}
	}
	var s RegistrySpec
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, []error{fmt.Errorf("spec: %v", err)}
	}
	var errs []error
	if !slices.Contains(RegistryTypes, s.Type) {
		errs = append(errs, fmt.Errorf("spec.type: %q is not one of %s", s.Type, strings.Join(RegistryTypes, ", ")))
	}
	errs = append(errs, checkURL(s.URL, s.Insecure)...)
	if len(s.Description) > 1024 {
		errs = append(errs, fmt.Errorf("spec.description: at most 1024 characters"))
	}
	if s.Namespace != "" && !nameRe.MatchString(strings.ReplaceAll(s.Namespace, "/", "-")) {
		errs = append(errs, fmt.Errorf("spec.namespace: %q is not a valid repository namespace", s.Namespace))
	}
	if s.TLS != nil {
		if s.TLS.InsecureSkipVerify && s.TLS.CAFile != "" {
			errs = append(errs, fmt.Errorf("spec.tls: caFile and insecureSkipVerify contradict each other; choose one"))
		}
		if s.TLS.CAFile != "" && !strings.HasPrefix(s.TLS.CAFile, "/") {
			errs = append(errs, fmt.Errorf("spec.tls.caFile: %q must be an absolute path", s.TLS.CAFile))
		}
		if s.TLS.ClientCertSecret != "" && !nameRe.MatchString(s.TLS.ClientCertSecret) {
			errs = append(errs, fmt.Errorf("spec.tls.clientCertSecret: %q is not a valid secret name", s.TLS.ClientCertSecret))
		}
		if strings.HasPrefix(s.URL, "http://") {
			errs = append(errs, fmt.Errorf("spec.tls: set only for https:// URLs"))
		}
	}
	if c := s.Credentials; c != nil {
		if !slices.Contains(CredentialTypes, c.Type) {
			errs = append(errs, fmt.Errorf("spec.credentials.type: %q is not one of %s", c.Type, strings.Join(CredentialTypes, ", ")))
		}
		switch {
		case c.Type != "none" && c.SecretRef == nil:
			errs = append(errs, fmt.Errorf("spec.credentials.secretRef: required for credentials of type %q (secrets are referenced, never inline)", c.Type))
		case c.SecretRef != nil && !nameRe.MatchString(c.SecretRef.Name):
			errs = append(errs, fmt.Errorf("spec.credentials.secretRef.name: %q is not a valid secret name", c.SecretRef.Name))
		case c.Type == "none" && c.SecretRef != nil:
			errs = append(errs, fmt.Errorf("spec.credentials.secretRef: not used with type none"))
		}
	}
	if s.Enabled == nil {
		t := true
		s.Enabled = &t // enabled unless said otherwise
	}
	return s, errs
}

func checkURL(raw string, insecure bool) []error {
	if raw == "" {
		return []error{fmt.Errorf("spec.url: required, e.g. https://registry.example.com")}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return []error{fmt.Errorf("spec.url: %q must be an absolute http(s) URL like https://registry.example.com", raw)}
	}
	var errs []error
	if u.Scheme == "http" && !insecure {
		errs = append(errs, fmt.Errorf("spec.url: %q is plain http: set spec.insecure: true to allow it", raw))
	}
	if u.User != nil {
		errs = append(errs, fmt.Errorf("spec.url: must not contain credentials; use spec.credentials.secretRef"))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("spec.url: must not have a query or fragment"))
	}
	return errs
}
