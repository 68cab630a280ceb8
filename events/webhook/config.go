// Package webhook delivers the events the outbox published to JetStream to
// HTTP receivers: one durable pull consumer per webhook, so delivery
// survives leader failover and restarts; per-repository log order; signed
// bodies; retries with backoff; a dead-letter list and a bounded record of
// recent attempts that any node can read.
package webhook

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/berth-registry/berth/events"
)

// Body formats a webhook can receive.
const (
	// FormatCloudEvents posts the CloudEvent itself (application/cloudevents+json).
	FormatCloudEvents = "cloudevents"
	// FormatDistribution posts CNCF Distribution's notification envelope so
	// receivers written for distribution/registry work unchanged.
	FormatDistribution = "distribution"
)

// Defaults applied by Normalize to zero fields; they follow issue 9's example.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultMaxDeliveries  = 20
)

// Webhook is one receiver, as the node maps it from a `kind: Webhook`
// resource. The package never reads resources itself, so that it can be
// tested and reused without the FSM.
type Webhook struct {
	Name string
	URL  string
	// Events lists short types ("manifest.pushed"); empty means every type
	// except pulls, which are high-volume and opt-in.
	Events []string
	// Repositories are doublestar globs; a "!" prefix excludes. Empty
	// means every repository (and events without one).
	Repositories []string
	// Format is FormatCloudEvents (default) or FormatDistribution.
	Format  string
	Headers http.Header
	// Timeout bounds one attempt, connection and response headers included.
	Timeout        time.Duration
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxDeliveries is the number of attempts before an event is dead-lettered.
	MaxDeliveries int
	// Secret signs each body (Berth-Signature); nil sends unsigned.
	Secret  []byte
	Enabled bool
	// StartIndex is the first Raft index a newly created webhook receives
	// (the index of the apply that created it, so nothing published
	// between the apply and Sync is missed). Zero means only events
	// published after the consumer exists. Ignored once the consumer exists.
	StartIndex uint64
}

// nameRE keeps a webhook name usable as one NATS subject token and in a
// consumer name.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_-]{0,62})$`)

// Normalize fills defaults and checks the configuration, so that a bad
// webhook is reported when it is synced rather than on every delivery.
func (w Webhook) Normalize() (Webhook, error) {
	if !nameRE.MatchString(w.Name) {
		return w, fmt.Errorf("webhook name %q: use 1-63 letters, digits, '-' or '_', starting with a letter or digit", w.Name)
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return w, fmt.Errorf("webhook %s: url %q must be an absolute http(s) URL", w.Name, w.URL)
	}
	switch w.Format {
	case "":
		w.Format = FormatCloudEvents
	case FormatCloudEvents, FormatDistribution:
	default:
		return w, fmt.Errorf("webhook %s: format %q is neither %q nor %q", w.Name, w.Format, FormatCloudEvents, FormatDistribution)
	}
	short := make([]string, len(w.Events))
	for i, e := range w.Events {
		short[i] = events.ShortType(e) // "dev.berth.tag.deleted" works too
	}
	w.Events = short
	for _, p := range w.Repositories {
		if !doublestar.ValidatePattern(strings.TrimPrefix(p, "!")) {
			return w, fmt.Errorf("webhook %s: repository glob %q is malformed", w.Name, p)
		}
	}
	if w.Timeout <= 0 {
		w.Timeout = DefaultTimeout
	}
	if w.InitialBackoff <= 0 {
		w.InitialBackoff = DefaultInitialBackoff
	}
	if w.MaxBackoff <= 0 {
		w.MaxBackoff = DefaultMaxBackoff
	}
	if w.MaxBackoff < w.InitialBackoff {
		w.MaxBackoff = w.InitialBackoff
	}
	if w.MaxDeliveries <= 0 {
		w.MaxDeliveries = DefaultMaxDeliveries
	}
	return w, nil
}

// Matches reports whether the webhook wants the event. An event without a
// repository (a resource change, a GC run, a replication policy's
// progress) cannot match a repository glob, so its type alone decides: the
// job and replication types reach only webhooks that list them.
func (w Webhook) Matches(ce events.CloudEvent) bool {
	if !w.matchesType(ce.Type) {
		return false
	}
	return ce.Data.Repository == "" || w.matchesRepository(ce.Data.Repository)
}

func (w Webhook) matchesType(ceType string) bool {
	short := events.ShortType(ceType)
	if len(w.Events) == 0 {
		// As fsm/resource's default: all but the opt-in events (pulls,
		// quota warnings, job and replication runs).
		for _, optIn := range []string{"gc.", "retention.", "replication."} {
			if strings.HasPrefix(short, optIn) {
				return false
			}
		}
		return !strings.HasSuffix(short, ".pulled") && ceType != events.CETypeQuotaWarning
	}
	for _, e := range w.Events {
		if e == short {
			return true
		}
	}
	return false
}

func (w Webhook) matchesRepository(repo string) bool {
	if len(w.Repositories) == 0 {
		return true
	}
	if repo == "" {
		return false
	}
	included, hasInclude := false, false
	for _, p := range w.Repositories {
		if ex, ok := strings.CutPrefix(p, "!"); ok {
			if doublestar.MatchUnvalidated(ex, repo) {
				return false
			}
			continue
		}
		hasInclude = true
		if doublestar.MatchUnvalidated(p, repo) {
			included = true
		}
	}
	return included || !hasInclude
}
