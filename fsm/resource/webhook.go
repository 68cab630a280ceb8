package resource

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
)

// WebhookEvents are the short event types (the CloudEvents type without
// "dev.berth.") a Webhook may subscribe to, in the order a normalized
// spec lists them.
var WebhookEvents = []string{
	"manifest.pushed", "manifest.deleted", "tag.updated", "tag.deleted", "repository.deleted",
	"resource.applied", "resource.deleted", "manifest.pulled", "blob.pulled", "quota.warning",
	"gc.started", "gc.completed", "gc.cancelled", "retention.completed",
	"replication.started", "replication.artifact.copied", "replication.failed", "replication.caught-up",
}

// JobEvents are the runs of garbage collection and retention. Like pull
// events, a Webhook receives them only when it lists them: they name no
// repository, and webhooks made before they existed must not start
// receiving them.
var JobEvents = []string{"gc.started", "gc.completed", "gc.cancelled", "retention.completed",
	"replication.started", "replication.artifact.copied", "replication.failed", "replication.caught-up"}

// PullEvents are published only when pull events are turned on, and a
// Webhook receives them only when it lists them: a registry serves far
// more pulls than pushes, and most receivers only care about changes.
var PullEvents = []string{"manifest.pulled", "blob.pulled"}

// OptInEvents are left out of a Webhook without spec.events: the pull
// events, and quota warnings and job events (added after webhooks were
// released, so a stored webhook's default list, and its generation, stay
// as they were).
var OptInEvents = append(append(slices.Clone(PullEvents), "quota.warning"), JobEvents...)

// WebhookFormats are the bodies a Webhook can send: a CloudEvents 1.0
// JSON event, or CNCF Distribution's notification envelope so that
// receivers written for it work unchanged.
var WebhookFormats = []string{"cloudevents", "distribution"}

// Webhook defaults and bounds. The bounds keep one slow or dead receiver
// from holding a delivery slot for long, and retries from either
// hammering a receiver or giving up before a restart could finish.
const (
	DefaultWebhookTimeout  = 5 * time.Second
	DefaultInitialBackoff  = time.Second
	DefaultMaxBackoff      = 5 * time.Minute
	DefaultMaxDeliveries   = 20
	minWebhookTimeout      = 100 * time.Millisecond
	maxWebhookTimeout      = time.Minute
	minBackoff             = 100 * time.Millisecond
	maxInitialBackoff      = time.Hour
	maxMaxBackoff          = 24 * time.Hour
	maxMaxDeliveries       = 1000
	maxWebhookRepositories = 100
	maxPatternLength       = 512
	maxWebhookHeaders      = 32
	maxHeaderBytes         = 8 << 10
	maxWebhookURL          = 2048
)

// WebhookSpec is the spec of a Webhook: where committed events go, which
// ones, in which format, and how deliveries are retried and signed. A
// normalized spec has every default applied, so what is stored is what
// is delivered. It encodes durations as Go duration strings ("5s").
type WebhookSpec struct {
	// URL receives a POST per event.
	URL string
	// Events are short event types (manifest.pushed); default: all but
	// the pull events and quota warnings (OptInEvents).
	Events []string
	// Repositories are doublestar globs of repository names; a pattern
	// starting with "!" excludes. Default: ["**"], every repository.
	Repositories []string
	// Format is "cloudevents" (default) or "distribution".
	Format string
	// Headers are sent with every delivery, keys in canonical form.
	Headers map[string][]string
	// Timeout bounds one delivery attempt.
	Timeout time.Duration
	Retry   WebhookRetry
	// Signing, when set, makes every delivery carry a Berth-Signature.
	Signing *WebhookSigning
	Enabled bool
}

// WebhookRetry is the backoff of failed deliveries: exponential from
// InitialBackoff, capped at MaxBackoff, and after MaxDeliveries attempts
// the event goes to the webhook's dead letters.
type WebhookRetry struct {
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	MaxDeliveries  int
}

// WebhookSigning names the secret holding the HMAC-SHA256 key.
type WebhookSigning struct {
	SecretRef SecretRef `json:"secretRef"`
}

// Webhook is a stored Webhook document decoded for the delivery engine.
type Webhook struct {
	Name       string
	Generation int64
	Spec       WebhookSpec
}

// webhookJSON is the stored form of a WebhookSpec.
type webhookJSON struct {
	URL          string              `json:"url"`
	Events       []string            `json:"events"`
	Repositories []string            `json:"repositories"`
	Format       string              `json:"format"`
	Headers      map[string][]string `json:"headers,omitempty"`
	Timeout      string              `json:"timeout"`
	Retry        struct {
		InitialBackoff string `json:"initialBackoff"`
		MaxBackoff     string `json:"maxBackoff"`
		MaxDeliveries  int    `json:"maxDeliveries"`
	} `json:"retry"`
	Signing *WebhookSigning `json:"signing,omitempty"`
	Enabled bool            `json:"enabled"`
}

// MarshalJSON writes the stored form, durations as strings.
func (s WebhookSpec) MarshalJSON() ([]byte, error) {
	j := webhookJSON{
		URL: s.URL, Events: s.Events, Repositories: s.Repositories, Format: s.Format,
		Headers: s.Headers, Timeout: s.Timeout.String(), Signing: s.Signing, Enabled: s.Enabled,
	}
	j.Retry.InitialBackoff = s.Retry.InitialBackoff.String()
	j.Retry.MaxBackoff = s.Retry.MaxBackoff.String()
	j.Retry.MaxDeliveries = s.Retry.MaxDeliveries
	return json.Marshal(j)
}

// UnmarshalJSON reads a spec through the same validation as apply, so a
// decoded spec always has its defaults and is within bounds.
func (s *WebhookSpec) UnmarshalJSON(b []byte) error {
	p := &problems{}
	raw, ok := decodeSpec(b, p)
	if !ok {
		return &ValidationError{Kind: "Webhook", Problems: p.list}
	}
	spec, _ := validateWebhook(raw, p).(WebhookSpec)
	if len(p.list) > 0 {
		return &ValidationError{Kind: "Webhook", Problems: p.list}
	}
	*s = spec
	return nil
}

// DecodeWebhook decodes a stored Webhook document (as the FSM keeps it and
// the admin API answers it) for the delivery engine. It validates the spec
// again, so a document written by another version of Berth is either
// understood completely or refused with every problem listed.
func DecodeWebhook(doc []byte) (Webhook, error) {
	var d struct {
		Kind     string          `json:"kind"`
		Metadata Metadata        `json:"metadata"`
		Spec     json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return Webhook{}, fmt.Errorf("decode webhook: %w", err)
	}
	if d.Kind != "Webhook" {
		return Webhook{}, fmt.Errorf("decode webhook: document is a %q", d.Kind)
	}
	w := Webhook{Name: d.Metadata.Name, Generation: d.Metadata.Generation}
	if err := json.Unmarshal(d.Spec, &w.Spec); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			ve.Name = d.Metadata.Name
		}
		return Webhook{}, fmt.Errorf("decode webhook %s: %w", d.Metadata.Name, err)
	}
	return w, nil
}

// Wants says whether the webhook takes an event of this short type about
// this repository. Events about no repository (resource.applied) are not
// filtered by repository.
func (s WebhookSpec) Wants(eventType, repository string) bool {
	if !s.Enabled || !slices.Contains(s.Events, eventType) {
		return false
	}
	if repository == "" {
		return true
	}
	return MatchRepository(s.Repositories, repository)
}

// MatchRepository reports whether repository matches at least one
// including pattern (or there is none) and no "!" excluding pattern, so
// the order of the patterns does not matter.
func MatchRepository(patterns []string, repository string) bool {
	included, includes := false, 0
	for _, p := range patterns {
		if ex, ok := strings.CutPrefix(p, "!"); ok {
			if m, _ := doublestar.Match(ex, repository); m {
				return false
			}
			continue
		}
		includes++
		if m, _ := doublestar.Match(p, repository); m {
			included = true
		}
	}
	return included || includes == 0
}

func validateWebhook(raw any, p *problems) any {
	o, ok := newObject("spec", raw, p)
	if !ok {
		if raw == nil {
			p.add("spec", "required: at least spec.url")
		}
		return nil
	}
	s := WebhookSpec{
		URL:     checkWebhookURL(o.str("url"), p),
		Events:  checkEvents(o, p),
		Format:  o.str("format"),
		Enabled: true,
		Retry:   WebhookRetry{InitialBackoff: DefaultInitialBackoff, MaxBackoff: DefaultMaxBackoff, MaxDeliveries: DefaultMaxDeliveries},
	}
	s.Repositories = checkRepositories(o, p)
	switch {
	case s.Format == "":
		s.Format = "cloudevents"
	case !slices.Contains(WebhookFormats, s.Format):
		p.add("spec.format", "%q is not one of %s", s.Format, strings.Join(WebhookFormats, ", "))
	}
	s.Headers = checkHeaders(o, p)
	s.Timeout = duration(o, "timeout", DefaultWebhookTimeout, minWebhookTimeout, maxWebhookTimeout)
	if r, ok := o.object("retry"); ok {
		s.Retry.InitialBackoff = duration(r, "initialBackoff", DefaultInitialBackoff, minBackoff, maxInitialBackoff)
		s.Retry.MaxBackoff = duration(r, "maxBackoff", DefaultMaxBackoff, time.Second, maxMaxBackoff)
		s.Retry.MaxDeliveries = integer(r, "maxDeliveries", DefaultMaxDeliveries, 1, maxMaxDeliveries)
		r.finish("initialBackoff", "maxBackoff", "maxDeliveries")
		if s.Retry.MaxBackoff < s.Retry.InitialBackoff {
			p.add("spec.retry.maxBackoff", "%s is less than initialBackoff %s", s.Retry.MaxBackoff, s.Retry.InitialBackoff)
		}
	}
	if sg, ok := o.object("signing"); ok {
		refuseInlineSecrets(sg, "spec.signing.secretRef")
		if ref, ok := sg.object("secretRef"); ok {
			s.Signing = &WebhookSigning{SecretRef: *checkSecretRef(ref, "spec.signing.secretRef", true, p)}
		} else {
			p.required("spec.signing.secretRef", "required: the secret holding the HMAC key, e.g. {name: ci-hook, key: hmac}")
		}
		sg.finish("secretRef")
	}
	if e := o.boolean("enabled"); e != nil {
		s.Enabled = *e
	}
	refuseInlineSecrets(o, "spec.signing.secretRef")
	o.finish("url", "events", "repositories", "format", "headers", "timeout", "retry", "signing", "enabled")
	return s
}

// checkWebhookURL accepts an absolute http(s) URL without credentials and
// returns it with scheme and host lower-cased. The path and query are kept
// as written: they are the receiver's, and may matter to it.
func checkWebhookURL(raw string, p *problems) string {
	const path = "spec.url"
	if raw == "" {
		p.required(path, "required, e.g. https://ci.example.com/hooks/berth")
		return ""
	}
	if len(raw) > maxWebhookURL {
		p.add(path, "%d characters, at most %d allowed", len(raw), maxWebhookURL)
		return raw
	}
	if !strings.Contains(raw, "://") && !strings.HasPrefix(raw, "/") {
		p.add(path, "%q has no scheme: write https://%s", raw, raw)
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" || (!strings.EqualFold(u.Scheme, "https") && !strings.EqualFold(u.Scheme, "http")) {
		p.add(path, "%q must be an absolute http(s) URL like https://ci.example.com/hooks/berth", raw)
		return raw
	}
	if u.User != nil {
		p.add(path, "must not contain credentials (they would be kept in the log); sign deliveries with spec.signing.secretRef instead")
	}
	if u.Fragment != "" {
		p.add(path, "must not have a fragment: it is never sent")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.User = nil
	return u.String()
}

// checkEvents reads spec.events: short types, in canonical order without
// duplicates, so the same set is stored as the same bytes.
func checkEvents(o *object, p *problems) []string {
	list, path, ok := strList(o, "events", "empty: list event types, or leave spec.events out for all events but pulls and quota warnings")
	if !ok {
		return slices.DeleteFunc(slices.Clone(WebhookEvents), func(e string) bool { return slices.Contains(OptInEvents, e) })
	}
	want := map[string]bool{}
	for i, e := range list {
		switch short := strings.TrimPrefix(e, "dev.berth."); {
		case slices.Contains(WebhookEvents, e):
			want[e] = true
		case slices.Contains(WebhookEvents, short):
			p.add(fmt.Sprintf("%s[%d]", path, i), "%q is written %q here", e, short)
		default:
			p.add(fmt.Sprintf("%s[%d]", path, i), "%q is not one of %s", e, strings.Join(WebhookEvents, ", "))
		}
	}
	out := []string{}
	for _, e := range WebhookEvents {
		if want[e] {
			out = append(out, e)
		}
	}
	return out
}

func checkRepositories(o *object, p *problems) []string {
	list, path, ok := strList(o, "repositories", "empty: list repository globs such as team-a/**, or leave spec.repositories out for all")
	if !ok {
		return []string{"**"}
	}
	if len(list) > maxWebhookRepositories {
		p.add(path, "%d patterns, at most %d allowed", len(list), maxWebhookRepositories)
		return list
	}
	for i, pat := range list {
		at := fmt.Sprintf("%s[%d]", path, i)
		glob := strings.TrimPrefix(pat, "!")
		switch {
		case glob == "":
			p.add(at, "empty pattern")
		case len(pat) > maxPatternLength:
			p.add(at, "%d characters, at most %d allowed", len(pat), maxPatternLength)
		case !doublestar.ValidatePattern(glob):
			p.add(at, "%q is not a valid glob (doublestar syntax: *, **, ?, [a-z], {a,b})", pat)
		case strings.HasPrefix(glob, "/"):
			p.add(at, "%q: repository names have no leading slash", pat)
		}
	}
	return list
}

// forbiddenHeaders are set by Berth or by HTTP itself: hop-by-hop headers,
// the body's framing and type, and Berth's own (Berth-Signature).
var forbiddenHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade", "Host", "Content-Type", "Content-Length", "Content-Encoding",
}

// secretHeaders carry credentials, which never go into a resource.
var secretHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie"}

func checkHeaders(o *object, p *problems) map[string][]string {
	v, path, ok := o.get("headers")
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		p.add(path, "must be a mapping of header names to lists of values, got %s", describe(v))
		return nil
	}
	if len(m) > maxWebhookHeaders {
		p.add(path, "%d headers, at most %d allowed", len(m), maxWebhookHeaders)
		return nil
	}
	out := map[string][]string{}
	size := 0
	for _, k := range sortedKeys(m) {
		at := join(path, k)
		name := textproto.CanonicalMIMEHeaderKey(k)
		switch {
		case !validHeaderName(k):
			p.add(at, "%q is not a valid header name", k)
			continue
		case slices.Contains(forbiddenHeaders, name) || strings.HasPrefix(name, "Berth-"):
			p.add(at, "%s is set by Berth or by HTTP itself and cannot be configured", name)
			continue
		case slices.Contains(secretHeaders, name):
			p.add(at, "%s carries a credential, and secrets are never written into a resource; receivers authenticate deliveries by spec.signing", name)
			continue
		case out[name] != nil:
			p.add(at, "%s is given twice (header names are case-insensitive)", name)
			continue
		}
		var values []string
		switch val := m[k].(type) {
		case string:
			values = []string{val}
		case []any:
			if len(val) == 0 {
				p.add(at, "no value: give at least one, or leave the header out")
			}
			for i, e := range val {
				s, isStr := e.(string)
				if !isStr {
					p.add(fmt.Sprintf("%s[%d]", at, i), "must be a string, got %s (quote it)", describe(e))
					continue
				}
				values = append(values, s)
			}
		default:
			p.add(at, "must be a string or a list of strings, got %s", describe(m[k]))
			continue
		}
		for _, s := range values {
			if !validHeaderValue(s) {
				p.add(at, "value %q has a control character or line break", s)
			}
			size += len(name) + len(s)
		}
		out[name] = append([]string{}, values...)
	}
	if size > maxHeaderBytes {
		p.add(path, "%d bytes in total, at most %d allowed", size, maxHeaderBytes)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// strList reads a list of strings; ok is false when the field is absent.
// An empty list is reported with ifEmpty: it would mean "nothing", which
// is never what a user wants from an optional filter.
func strList(o *object, key, ifEmpty string) ([]string, string, bool) {
	v, path, ok := o.get(key)
	if !ok {
		return nil, path, false
	}
	l, isList := v.([]any)
	if !isList {
		o.p.add(path, "must be a list of strings, got %s", describe(v))
		return nil, path, true
	}
	if len(l) == 0 {
		o.p.add(path, "%s", ifEmpty)
	}
	out := make([]string, 0, len(l))
	for i, e := range l {
		s, isStr := e.(string)
		if !isStr {
			o.p.add(fmt.Sprintf("%s[%d]", path, i), "must be a string, got %s", describe(e))
			continue
		}
		out = append(out, s)
	}
	return out, path, true
}

// duration reads a Go duration string ("5s", "1m30s") within bounds.
func duration(o *object, key string, def, lo, hi time.Duration) time.Duration {
	v, path, ok := o.get(key)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	d, err := time.ParseDuration(s)
	switch {
	case !isStr:
		o.p.add(path, "must be a duration such as %s, got %s", def, describe(v))
	case err != nil:
		o.p.add(path, "%q is not a duration such as %s (units ms, s, m, h)", s, def)
	case d < lo || d > hi:
		o.p.add(path, "%s is out of bounds: between %s and %s", d, lo, hi)
	default:
		return d
	}
	return def
}

// integer reads a whole number within bounds.
func integer(o *object, key string, def, lo, hi int) int {
	v, path, ok := o.get(key)
	if !ok {
		return def
	}
	n, isNum := v.(json.Number)
	i, err := n.Int64()
	switch {
	case !isNum:
		o.p.add(path, "must be a whole number, got %s", describe(v))
	case err != nil:
		o.p.add(path, "%s is not a whole number", n)
	case i < int64(lo) || i > int64(hi):
		o.p.add(path, "%d is out of bounds: between %d and %d", i, lo, hi)
	default:
		return int(i)
	}
	return def
}

// validHeaderName is RFC 9110's token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue refuses control characters other than tab, which would
// split or corrupt the request.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
