package resource

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// RegistryTypes are the remote registry implementations a Registry can
// describe.
var RegistryTypes = []string{"berth", "distribution", "harbor", "dockerhub", "ecr", "gcr", "acr", "quay", "gitlab", "artifactory", "nexus", "zot", "generic"}

// CredentialTypes are the ways Berth can authenticate to a remote
// registry (the reference's Basic, Token and OAuth2; none for anonymous).
var CredentialTypes = []string{"none", "basic", "token", "oauth2"}

// defaultURLs are applied when a public registry's spec has no url, as the
// Registry reference applies type defaults for what is left out.
var defaultURLs = map[string]string{
	"dockerhub": "https://registry-1.docker.io",
	"quay":      "https://quay.io",
	"gcr":       "https://gcr.io",
}

// maxDescription bounds spec.description (and metadata.description).
const maxDescription = 1024

// RegistrySpec is the spec of a Registry: a remote or upstream registry,
// where it is, what it runs, how to reach it securely and which
// credentials to use. Secrets are never inline: the spec names a secret,
// it does not hold one. In a normalized document Enabled is always set.
type RegistrySpec struct {
	Type        string       `json:"type"`
	URL         string       `json:"url"`
	Description string       `json:"description,omitempty"`
	Namespace   string       `json:"namespace,omitempty"`
	Enabled     bool         `json:"enabled"`
	Insecure    bool         `json:"insecure,omitempty"`
	TLS         *RegistryTLS `json:"tls,omitempty"`
	Credentials *Credentials `json:"credentials,omitempty"`
	// Events is where a Berth origin publishes its event stream, which a
	// mirror (ReplicationPolicy mode: mirror) follows. Type berth only.
	Events *RegistryEvents `json:"events,omitempty"`
}

// RegistryEvents locates a Berth origin's JetStream event stream.
type RegistryEvents struct {
	URLs   []string `json:"urls"`
	Stream string   `json:"stream"`
	// Credentials for NATS: a creds file (type creds, the default) or
	// the token of an embedded server's events.nats.listen (type token).
	Credentials *EventCredentials `json:"credentials,omitempty"`
}

// EventCredentials name the secret a mirror connects to NATS with.
type EventCredentials struct {
	Type      string     `json:"type"`
	SecretRef *SecretRef `json:"secretRef"`
}

// DefaultEventStream is Berth's default events.stream.
const DefaultEventStream = "BERTH_EVENTS"

// RegistryTLS tunes TLS towards the remote registry.
type RegistryTLS struct {
	// CAFile is a PEM bundle present on every node, trusted for this
	// registry in addition to the system roots.
	CAFile string `json:"caFile,omitempty"`
	// CABundle is the same as CAFile, inline. CA certificates are public,
	// so unlike credentials they may live in the resource.
	CABundle string `json:"caBundle,omitempty"`
	// ServerName overrides the name checked in the server certificate.
	ServerName string `json:"serverName,omitempty"`
	// InsecureSkipVerify turns certificate checks off. Only for testing.
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
	// ClientCertSecret names a secret holding a client certificate and
	// key for mutual TLS.
	ClientCertSecret string `json:"clientCertSecret,omitempty"`
}

// Credentials say how to authenticate and which secret holds the secret
// material (username and password, a token, OAuth2 client credentials).
type Credentials struct {
	Type      string     `json:"type"`
	SecretRef *SecretRef `json:"secretRef,omitempty"`
	// Expires is when the credentials stop working (RFC 3339), so that
	// operators can be warned before pulls start failing.
	Expires string `json:"expires,omitempty"`
}

// SecretRef names a secret (a file in the node's secrets directory, a
// Kubernetes secret) and optionally one key in it.
type SecretRef struct {
	Name string `json:"name"`
	Key  string `json:"key,omitempty"`
}

var (
	// namespaceRe is an OCI repository path prefix (distribution-spec).
	namespaceRe  = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	hostnameRe   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	inlineSecret = []string{"username", "password", "token", "secret", "accessKey", "secretKey", "clientSecret"}
)

func validateRegistry(raw any, p *problems) any {
	o, ok := newObject("spec", raw, p)
	if !ok {
		if raw == nil {
			p.add("spec", "required: at least spec.type and spec.url")
		}
		return nil
	}
	s := RegistrySpec{
		Type:        o.str("type"),
		URL:         o.str("url"),
		Description: o.str("description"),
		Namespace:   o.str("namespace"),
		Enabled:     true, // enabled unless said otherwise
	}
	if e := o.boolean("enabled"); e != nil {
		s.Enabled = *e
	}
	if i := o.boolean("insecure"); i != nil {
		s.Insecure = *i
	}

	switch {
	case s.Type == "":
		p.required("spec.type", "required: one of %s", strings.Join(RegistryTypes, ", "))
	case slices.Contains(RegistryTypes, s.Type):
	case slices.Contains(RegistryTypes, strings.ToLower(s.Type)):
		p.add("spec.type", "%q is spelled %q", s.Type, strings.ToLower(s.Type))
	default:
		p.add("spec.type", "%q is not one of %s", s.Type, strings.Join(RegistryTypes, ", "))
	}
	if s.URL == "" {
		s.URL = defaultURLs[s.Type]
	}
	s.URL = checkURL(s.URL, s.Insecure, p)
	if len(s.Description) > maxDescription {
		p.add("spec.description", "%d characters, at most %d allowed", len(s.Description), maxDescription)
	}
	if s.Namespace != "" && (len(s.Namespace) > 255 || !namespaceRe.MatchString(s.Namespace)) {
		p.add("spec.namespace", "%q is not a repository namespace: lowercase path components such as library or my-org/team", s.Namespace)
	}
	if t, ok := o.object("tls"); ok {
		s.TLS = checkTLS(t, s.URL, p)
	}
	if c, ok := o.object("credentials"); ok {
		s.Credentials = checkCredentials(c, p)
	}
	if e, ok := o.object("events"); ok {
		s.Events = checkRegistryEvents(e, p)
		if s.Type != "berth" {
			p.add("spec.events", "only for type berth: it is where a Berth origin publishes the stream its mirrors follow")
		}
	}
	refuseInlineSecrets(o, "spec.credentials.secretRef")
	o.finish("type", "url", "description", "namespace", "enabled", "insecure", "tls", "credentials", "events")
	return s
}

// checkURL validates the registry URL and returns it in canonical form:
// lower-case scheme and host, no trailing slash.
func checkURL(raw string, insecure bool, p *problems) string {
	const path = "spec.url"
	if raw == "" {
		p.required(path, "required, e.g. https://registry.example.com")
		return ""
	}
	if !strings.Contains(raw, "://") && !strings.HasPrefix(raw, "/") {
		p.add(path, "%q has no scheme: write https://%s", raw, raw)
		return raw
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "" || (u.Scheme != "https" && u.Scheme != "http"):
		p.add(path, "%q must be an absolute http(s) URL like https://registry.example.com", raw)
		return raw
	}
	if u.Scheme == "http" && !insecure {
		p.add(path, "%q is plain http: set spec.insecure: true to allow it", raw)
	}
	if u.Scheme == "https" && insecure {
		p.add("spec.insecure", "only allows plain http:// URLs; to skip certificate checks on https use spec.tls.insecureSkipVerify")
	}
	if u.User != nil {
		p.add(path, "must not contain credentials; put them in a secret and use spec.credentials.secretRef")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		p.add(path, "must not have a query or fragment")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.User = nil
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String()
}

func checkTLS(o *object, regURL string, p *problems) *RegistryTLS {
	t := &RegistryTLS{
		CAFile:           o.str("caFile"),
		CABundle:         o.str("caBundle"),
		ServerName:       o.str("serverName"),
		ClientCertSecret: o.str("clientCertSecret"),
	}
	if v := o.boolean("insecureSkipVerify"); v != nil {
		t.InsecureSkipVerify = *v
	}
	o.finish("caFile", "caBundle", "serverName", "insecureSkipVerify", "clientCertSecret")
	if strings.HasPrefix(regURL, "http://") {
		p.add("spec.tls", "only for https:// URLs")
	}
	if t.CAFile != "" && t.CABundle != "" {
		p.add("spec.tls", "caFile and caBundle both given; choose one")
	}
	if t.InsecureSkipVerify && (t.CAFile != "" || t.CABundle != "") {
		p.add("spec.tls.insecureSkipVerify", "contradicts a CA (caFile or caBundle): choose one")
	}
	if t.CAFile != "" && !strings.HasPrefix(t.CAFile, "/") {
		p.add("spec.tls.caFile", "%q must be an absolute path", t.CAFile)
	}
	if t.CABundle != "" {
		checkPEM(t.CABundle, p)
	}
	if t.ServerName != "" && (len(t.ServerName) > 253 || !hostnameRe.MatchString(t.ServerName)) {
		p.add("spec.tls.serverName", "%q is not a host name", t.ServerName)
	}
	if t.ClientCertSecret != "" && !nameRe.MatchString(t.ClientCertSecret) {
		p.add("spec.tls.clientCertSecret", "%q is not a valid secret name (1-63 lowercase letters, digits or '-')", t.ClientCertSecret)
	}
	if *t == (RegistryTLS{}) {
		return nil
	}
	return t
}

// checkPEM accepts a bundle of one or more PEM certificates and nothing else.
func checkPEM(bundle string, p *problems) {
	const path = "spec.tls.caBundle"
	rest := []byte(bundle)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			p.add(path, "PEM block %d is a %q, want CERTIFICATE (never put a private key here)", n, block.Type)
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			p.add(path, "certificate %d: %v", n, err)
		}
	}
	if n == 0 {
		p.add(path, "no PEM certificate found (-----BEGIN CERTIFICATE-----)")
	} else if strings.TrimSpace(string(rest)) != "" {
		p.add(path, "text after the last PEM certificate")
	}
}

func checkCredentials(o *object, p *problems) *Credentials {
	c := &Credentials{Type: o.str("type"), Expires: o.str("expires")}
	if ref, ok := o.object("secretRef"); ok {
		c.SecretRef = checkSecretRef(ref, "spec.credentials.secretRef", false, p)
	}
	refuseInlineSecrets(o, "spec.credentials.secretRef")
	o.finish("type", "secretRef", "expires")

	switch {
	case c.Type == "":
		p.required("spec.credentials.type", "required: one of %s", strings.Join(CredentialTypes, ", "))
	case !slices.Contains(CredentialTypes, c.Type):
		p.add("spec.credentials.type", "%q is not one of %s", c.Type, strings.Join(CredentialTypes, ", "))
	case c.Type == "none" && c.SecretRef != nil:
		p.add("spec.credentials.secretRef", "not used with type none")
	case c.Type != "none" && c.SecretRef == nil:
		p.add("spec.credentials.secretRef", "required for credentials of type %q: name the secret that holds them (secrets are referenced, never inline)", c.Type)
	}
	if c.Expires != "" {
		if _, err := time.Parse(time.RFC3339, c.Expires); err != nil {
			p.add("spec.credentials.expires", "%q is not an RFC 3339 time such as 2027-01-31T00:00:00Z", c.Expires)
		}
	}
	return c
}

// refuseInlineSecrets explains, better than "unknown field", why a
// password or token cannot be written into a resource: resources are in
// the log, every snapshot and every backup.
func refuseInlineSecrets(o *object, instead string) {
	for _, k := range inlineSecret {
		if _, present := o.m[k]; present {
			o.used[k] = true
			o.p.add(join(o.path, k), "secrets are never written into a resource (it is kept in the log and every backup); store it in a secret and reference it with %s", instead)
		}
	}
}

func checkRegistryEvents(o *object, p *problems) *RegistryEvents {
	e := &RegistryEvents{Stream: o.str("stream")}
	urls, path, ok := strList(o, "urls", "empty: list the origin's NATS URLs, such as nats://nats.eu.example.com:4222")
	if !ok {
		p.required(path, "required: the origin's NATS URLs, such as nats://nats.eu.example.com:4222")
	}
	for i, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, u.Scheme) {
			p.add(fmt.Sprintf("%s[%d]", path, i), "%q is not a NATS URL such as nats://host:4222", raw)
			continue
		}
		if u.User != nil {
			p.add(fmt.Sprintf("%s[%d]", path, i), "must not contain credentials; use spec.events.credentials.secretRef")
		}
	}
	e.URLs = urls
	if e.Stream == "" {
		e.Stream = DefaultEventStream
	} else if !streamNameRe.MatchString(e.Stream) {
		p.add("spec.events.stream", "%q is not a JetStream stream name (letters, digits, '-' or '_')", e.Stream)
	}
	if c, ok := o.object("credentials"); ok {
		ec := &EventCredentials{Type: c.str("type")}
		if ref, ok := c.object("secretRef"); ok {
			ec.SecretRef = checkSecretRef(ref, "spec.events.credentials.secretRef", false, p)
		}
		refuseInlineSecrets(c, "spec.events.credentials.secretRef")
		c.finish("type", "secretRef")
		if ec.Type == "" {
			ec.Type = "creds"
		}
		if ec.Type != "creds" && ec.Type != "token" {
			p.add("spec.events.credentials.type", "%q is not one of creds, token", ec.Type)
		}
		if ec.SecretRef == nil {
			p.required("spec.events.credentials.secretRef", "required: the secret holding a NATS creds file or token")
		}
		e.Credentials = ec
	}
	refuseInlineSecrets(o, "spec.events.credentials.secretRef")
	o.finish("urls", "stream", "credentials")
	return e
}

// streamNameRe is a JetStream stream name Berth accepts.
var streamNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// DecodeRegistry decodes and re-validates a stored Registry.
func DecodeRegistry(doc []byte) (string, RegistrySpec, error) {
	name, _, spec, err := decodeStored(doc, "Registry", validateRegistry)
	if err != nil {
		return "", RegistrySpec{}, err
	}
	return name, spec.(RegistrySpec), nil
}
