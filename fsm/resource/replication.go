package resource

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ReplicationModes are what a ReplicationPolicy does: follow a Berth
// origin's event stream (mirror), copy to another registry (push), or
// cache an upstream on first pull (proxy).
var ReplicationModes = []string{"mirror", "push", "proxy"}

// ReplicationTriggers start a policy's work: every event, a cron
// schedule, or only `clusterctl replication run`.
var ReplicationTriggers = []string{"event", "schedule", "manual"}

// maxBandwidth bounds spec.bandwidth (bytes per second): 100 GB/s.
const maxBandwidth = 100 << 30

// DefaultProxyTTL is how long a proxy serves a cached tag before it asks
// the upstream whether the tag moved. Below minProxyTTL every pull would
// cost an upstream round trip (and count against its rate limit); above
// maxProxyTTL a moved tag would go unnoticed for longer than anyone
// expects of a cache.
const (
	DefaultProxyTTL = 10 * time.Minute
	minProxyTTL     = time.Second
	maxProxyTTL     = 7 * 24 * time.Hour
)

// ReplicationFallbacks are where a mirror may answer a pull of something
// it has not replicated yet: nowhere (404, the default) or its origin.
var ReplicationFallbacks = []string{"origin"}

// ReplicationSpec is the spec of a ReplicationPolicy. The Registry it names
// is resolved when the policy runs, not when it is applied: resources of
// one apply may come in any order, and a Registry may be deleted later, so
// a policy naming a missing Registry is valid here and reported by
// `clusterctl replication status`.
type ReplicationSpec struct {
	Mode     string `json:"mode"`
	Registry string `json:"registry"`
	// Repositories are doublestar globs; "!" excludes. Default ["**"].
	Repositories []string  `json:"repositories"`
	Tags         TagFilter `json:"tags"`
	Trigger      string    `json:"trigger"`
	// Schedule is the cron expression of trigger: schedule.
	Schedule string `json:"schedule,omitempty"`
	// Deletion propagates tag, manifest and repository deletes.
	Deletion bool   `json:"deletion"`
	Prefix   Prefix `json:"prefix"`
	// Bandwidth caps the bytes per second this policy copies; 0 is
	// unlimited.
	Bandwidth int64 `json:"bandwidth"`
	Enabled   bool  `json:"enabled"`
	// TTL is how long a proxy trusts a cached tag before revalidating it
	// against the upstream (mode proxy only; default DefaultProxyTTL).
	TTL TTL `json:"ttl,omitempty"`
	// Fallback "origin" lets a mirror answer a pull of something not
	// replicated yet from its origin (mode mirror only).
	Fallback string `json:"fallback,omitempty"`
	// Writable lets clients push to a mirror's repositories here too (a
	// mirror's repositories are read-only by default, so that they stay an
	// exact copy): the origin's later changes still win for what they
	// touch, and deletion: true removes local tags the origin lacks on an
	// initial sync.
	Writable bool `json:"writable,omitempty"`
}

// TTL is a duration stored as a Go duration string ("10m0s"), so that the
// stored document validates as it was written.
type TTL time.Duration

// MarshalJSON writes the duration string.
func (d TTL) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// TagFilter selects tags by globs; an empty include takes every tag.
type TagFilter struct {
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// Prefix rewrites repository names at the destination: Strip is removed
// from the front of the source name, then Add is put in front.
type Prefix struct {
	Strip string `json:"strip,omitempty"`
	Add   string `json:"add,omitempty"`
}

// ReplicationPolicy is a stored ReplicationPolicy decoded.
type ReplicationPolicy struct {
	Name       string
	Generation int64
	Spec       ReplicationSpec
}

// DecodeReplicationPolicy decodes and re-validates a stored document.
func DecodeReplicationPolicy(doc []byte) (ReplicationPolicy, error) {
	name, gen, spec, err := decodeStored(doc, "ReplicationPolicy", validateReplication)
	if err != nil {
		return ReplicationPolicy{}, err
	}
	return ReplicationPolicy{Name: name, Generation: gen, Spec: spec.(ReplicationSpec)}, nil
}

// Covers says whether the policy replicates repository repo (a name at
// the source).
func (s ReplicationSpec) Covers(repo string) bool {
	if s.Prefix.Strip != "" && !strings.HasPrefix(repo, s.Prefix.Strip) {
		return false
	}
	return MatchRepository(s.Repositories, repo)
}

// WantsTag says whether the policy replicates tag.
func (s ReplicationSpec) WantsTag(tag string) bool {
	if len(s.Tags.Include) > 0 && !matchTag(s.Tags.Include, tag) {
		return false
	}
	for _, ex := range s.Tags.Exclude {
		if matchTag([]string{ex}, tag) {
			return false
		}
	}
	return true
}

// Destination is the name repo (at the source) gets at the destination.
func (s ReplicationSpec) Destination(repo string) string {
	return s.Prefix.Add + strings.TrimPrefix(repo, s.Prefix.Strip)
}

// Source is the inverse of Destination: the source name of a destination
// repository, ok false when the policy cannot have produced dst.
func (s ReplicationSpec) Source(dst string) (string, bool) {
	rest, ok := strings.CutPrefix(dst, s.Prefix.Add)
	if !ok {
		return "", false
	}
	src := s.Prefix.Strip + rest
	return src, s.Covers(src)
}

// prefixRe is a repository path prefix: components and their separators,
// ending in "/" (or empty).
var prefixRe = regexp.MustCompile(`^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*/)+$`)

func validateReplication(raw any, p *problems) any {
	o, ok := newObject("spec", raw, p)
	if !ok {
		if raw == nil {
			p.add("spec", "required: at least spec.mode and spec.registry")
		}
		return nil
	}
	s := ReplicationSpec{
		Mode:     o.str("mode"),
		Registry: o.str("registry"),
		Trigger:  o.str("trigger"),
		Schedule: o.str("schedule"),
		Enabled:  true,
	}
	s.Repositories = checkGlobs(o, "repositories", "repository", false)
	if s.Repositories == nil {
		s.Repositories = []string{"**"}
	}
	if t, ok := o.object("tags"); ok {
		s.Tags.Include = checkGlobs(t, "include", "tag", false)
		s.Tags.Exclude = checkGlobs(t, "exclude", "tag", false)
		t.finish("include", "exclude")
	}
	if b := o.boolean("deletion"); b != nil {
		s.Deletion = *b
	}
	if b := o.boolean("enabled"); b != nil {
		s.Enabled = *b
	}
	s.Bandwidth = int64(integer(o, "bandwidth", 0, 0, maxBandwidth))
	if _, path, ok := o.get("ttl"); ok && s.Mode != "proxy" {
		p.add(path, "only used by mode: proxy (how long a cached tag is served before it is revalidated)")
	} else if s.Mode == "proxy" {
		s.TTL = TTL(duration(o, "ttl", DefaultProxyTTL, minProxyTTL, maxProxyTTL))
	}
	s.Fallback = o.str("fallback")
	switch {
	case s.Fallback == "":
	case !slices.Contains(ReplicationFallbacks, s.Fallback):
		p.add("spec.fallback", "%q is not one of %s (or leave it out for none)", s.Fallback, strings.Join(ReplicationFallbacks, ", "))
	case s.Mode != "mirror":
		p.add("spec.fallback", "only used by mode: mirror (a pull of something not replicated yet goes to the origin)")
	}
	if _, path, ok := o.get("writable"); ok {
		if b := o.boolean("writable"); b != nil && s.Mode == "mirror" {
			s.Writable = *b
		} else if s.Mode != "mirror" {
			p.add(path, "only used by mode: mirror (a proxy's repositories hold its upstream's content; a push policy's are ordinary)")
		}
	}
	if pr, ok := o.object("prefix"); ok {
		s.Prefix = Prefix{Strip: pr.str("strip"), Add: pr.str("add")}
		pr.finish("strip", "add")
		for key, v := range map[string]string{"strip": s.Prefix.Strip, "add": s.Prefix.Add} {
			if v != "" && (len(v) > 200 || !prefixRe.MatchString(v)) {
				p.add("spec.prefix."+key, "%q is not a repository prefix: lowercase path components ending in '/', such as hub/", v)
			}
		}
	}
	if s.Mode == "proxy" && s.Prefix.Add == "" {
		// Without its own prefix a cache would cover every repository:
		// every miss would go upstream and nothing could be pushed.
		p.required("spec.prefix.add", "required with mode: proxy: the repository prefix the upstream's repositories appear under here, such as hub/")
	}
	o.finish("mode", "registry", "repositories", "tags", "trigger", "schedule", "deletion", "prefix", "bandwidth", "enabled", "ttl", "fallback", "writable")

	switch {
	case s.Mode == "":
		p.required("spec.mode", "required: one of %s", strings.Join(ReplicationModes, ", "))
	case !slices.Contains(ReplicationModes, s.Mode):
		p.add("spec.mode", "%q is not one of %s", s.Mode, strings.Join(ReplicationModes, ", "))
	}
	switch {
	case s.Registry == "":
		p.required("spec.registry", "required: the name of a Registry resource (the origin to follow, or the destination to push to)")
	case !nameRe.MatchString(s.Registry):
		p.add("spec.registry", "%q is not a resource name (1-63 lowercase letters, digits or '-')", s.Registry)
	}
	if s.Trigger == "" {
		s.Trigger = map[string]string{"proxy": "manual"}[s.Mode]
		if s.Trigger == "" {
			s.Trigger = "event"
		}
	}
	switch {
	case !slices.Contains(ReplicationTriggers, s.Trigger):
		p.add("spec.trigger", "%q is not one of %s", s.Trigger, strings.Join(ReplicationTriggers, ", "))
	case s.Mode == "mirror" && s.Trigger != "event":
		p.add("spec.trigger", "a mirror follows the origin's event stream: trigger must be event (or left out)")
	case s.Mode == "proxy" && s.Trigger == "event":
		p.add("spec.trigger", "a proxy fetches on pull; trigger event does not apply")
	case s.Trigger == "schedule" && s.Schedule == "":
		p.required("spec.schedule", "required with trigger: schedule, a cron expression such as \"0 */6 * * *\"")
	case s.Trigger != "schedule" && s.Schedule != "":
		p.add("spec.schedule", "only used with trigger: schedule")
	}
	if s.Schedule != "" {
		if _, err := ParseSchedule(s.Schedule); err != nil {
			p.add("spec.schedule", "%v", err)
		}
	}
	return s
}
