package resource

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/robfig/cron/v3"
)

// ImmutabilitySpec is the spec of an ImmutabilityRule: tags matching Tags
// in repositories matching Repositories can be created but never moved to
// another manifest or deleted, and retention never deletes them. Apply
// enforces it, so no node, client or job can get around it.
type ImmutabilitySpec struct {
	Repositories []string `json:"repositories"`
	Tags         []string `json:"tags"`
}

// Protects says whether the rule makes tag in repo immutable.
func (s ImmutabilitySpec) Protects(repo, tag string) bool {
	return MatchRepository(s.Repositories, repo) && matchTag(s.Tags, tag)
}

// matchTag matches a tag against globs ("!" excludes) with the same
// rules as repository names: doublestar globs are not path-specific.
func matchTag(patterns []string, tag string) bool { return MatchRepository(patterns, tag) }

// MatchTag is matchTag for other packages (retention's keepTags).
func MatchTag(patterns []string, tag string) bool { return matchTag(patterns, tag) }

// RetentionSpec is the spec of a RetentionPolicy. In the repositories it
// covers, a tag is kept if any keep rule holds for it (the rules are
// OR'd); every other tag is deleted, unless an ImmutabilityRule protects
// it. Ages are days ("30d") or Go durations ("720h"), kept as written.
type RetentionSpec struct {
	Repositories     []string `json:"repositories"`
	KeepLast         int      `json:"keepLast,omitempty"`
	KeepPushedWithin string   `json:"keepPushedWithin,omitempty"`
	KeepPulledWithin string   `json:"keepPulledWithin,omitempty"`
	KeepTags         []string `json:"keepTags,omitempty"`
	DeleteUntagged   bool     `json:"deleteUntagged"`
	// Schedule is a cron expression (minute hour day month weekday, or
	// @daily and the like); empty runs the policy only on demand.
	Schedule string `json:"schedule,omitempty"`
	Enabled  bool   `json:"enabled"`
}

// PushedWithin and PulledWithin are the parsed ages (0: rule unused).
func (s RetentionSpec) PushedWithin() time.Duration { d, _ := parseAge(s.KeepPushedWithin); return d }
func (s RetentionSpec) PulledWithin() time.Duration { d, _ := parseAge(s.KeepPulledWithin); return d }

// NextRun is the schedule's next time after t; ok is false without one.
func (s RetentionSpec) NextRun(t time.Time) (time.Time, bool) {
	if s.Schedule == "" {
		return time.Time{}, false
	}
	sch, err := cron.ParseStandard(s.Schedule)
	if err != nil {
		return time.Time{}, false
	}
	return sch.Next(t), true
}

// ParseSchedule checks a cron expression (five fields, or @daily and the
// like) and returns it parsed.
func ParseSchedule(expr string) (cron.Schedule, error) {
	sch, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("%q is not a cron schedule (minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\", or @daily): %w", expr, err)
	}
	return sch, nil
}

const (
	maxRetentionPatterns = 64
	maxKeepLast          = 100000
	maxAge               = 100 * 365 * 24 * time.Hour
)

// parseAge reads "30d" or a Go duration.
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a number of days such as 30d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not an age such as 30d or 12h", s)
	}
	return d, nil
}

func checkAge(o *object, key string) string {
	v, path, ok := o.get(key)
	if !ok {
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		o.p.add(path, "must be an age such as 30d or 12h, got %s", describe(v))
		return ""
	}
	d, err := parseAge(s)
	switch {
	case err != nil:
		o.p.add(path, "%v", err)
	case d > maxAge:
		o.p.add(path, "%s is more than 100 years", s)
	}
	return s
}

// checkGlobs validates a list of globs ("!" excludes) under key.
func checkGlobs(o *object, key, what string, required bool) []string {
	list, path, ok := strList(o, key, "empty: list "+what+" globs, or leave spec."+key+" out")
	if !ok {
		if required {
			o.p.required(path, "required: %s globs such as %s", what, map[bool]string{true: "team-a/**", false: "v*"}[what == "repository"])
		}
		return nil
	}
	if len(list) > maxRetentionPatterns {
		o.p.add(path, "%d patterns, at most %d allowed", len(list), maxRetentionPatterns)
		return list
	}
	for i, pat := range list {
		at := fmt.Sprintf("%s[%d]", path, i)
		glob := strings.TrimPrefix(pat, "!")
		switch {
		case glob == "":
			o.p.add(at, "empty pattern")
		case len(pat) > maxPatternLength:
			o.p.add(at, "%d characters, at most %d allowed", len(pat), maxPatternLength)
		case !doublestar.ValidatePattern(glob):
			o.p.add(at, "%q is not a valid glob (doublestar syntax: *, **, ?, [a-z], {a,b})", pat)
		}
	}
	return list
}

func validateImmutability(raw any, p *problems) any {
	o, ok := newObject("spec", raw, p)
	if !ok {
		if raw == nil {
			p.add("spec", "required: spec.repositories and spec.tags")
		}
		return nil
	}
	s := ImmutabilitySpec{Repositories: checkGlobs(o, "repositories", "repository", true), Tags: checkGlobs(o, "tags", "tag", true)}
	o.finish("repositories", "tags")
	return s
}

func validateRetention(raw any, p *problems) any {
	o, ok := newObject("spec", raw, p)
	if !ok {
		if raw == nil {
			p.add("spec", "required: spec.repositories and at least one keep rule or deleteUntagged")
		}
		return nil
	}
	s := RetentionSpec{
		Repositories:     checkGlobs(o, "repositories", "repository", true),
		KeepLast:         integer(o, "keepLast", 0, 0, maxKeepLast),
		KeepPushedWithin: checkAge(o, "keepPushedWithin"),
		KeepPulledWithin: checkAge(o, "keepPulledWithin"),
		KeepTags:         checkGlobs(o, "keepTags", "tag", false),
		Schedule:         o.str("schedule"),
		Enabled:          true,
	}
	if b := o.boolean("deleteUntagged"); b != nil {
		s.DeleteUntagged = *b
	}
	if b := o.boolean("enabled"); b != nil {
		s.Enabled = *b
	}
	if s.Schedule != "" {
		if _, err := ParseSchedule(s.Schedule); err != nil {
			p.add("spec.schedule", "%v", err)
		}
	}
	if s.KeepLast == 0 && s.KeepPushedWithin == "" && s.KeepPulledWithin == "" && len(s.KeepTags) == 0 {
		// With no keep rule every tag would go: almost always a mistake.
		p.add("spec", "no keep rule: set keepLast, keepPushedWithin, keepPulledWithin or keepTags (a policy that deletes every tag is refused)")
	}
	o.finish("repositories", "keepLast", "keepPushedWithin", "keepPulledWithin", "keepTags", "deleteUntagged", "schedule", "enabled")
	return s
}

// ImmutabilityRule and RetentionPolicy are stored documents decoded.
type ImmutabilityRule struct {
	Name       string
	Generation int64
	Spec       ImmutabilitySpec
}

type RetentionPolicy struct {
	Name       string
	Generation int64
	Spec       RetentionSpec
}

// DecodeImmutabilityRule decodes and re-validates a stored document.
func DecodeImmutabilityRule(doc []byte) (ImmutabilityRule, error) {
	name, gen, spec, err := decodeStored(doc, "ImmutabilityRule", validateImmutability)
	if err != nil {
		return ImmutabilityRule{}, err
	}
	return ImmutabilityRule{Name: name, Generation: gen, Spec: spec.(ImmutabilitySpec)}, nil
}

// DecodeRetentionPolicy decodes and re-validates a stored document.
func DecodeRetentionPolicy(doc []byte) (RetentionPolicy, error) {
	name, gen, spec, err := decodeStored(doc, "RetentionPolicy", validateRetention)
	if err != nil {
		return RetentionPolicy{}, err
	}
	return RetentionPolicy{Name: name, Generation: gen, Spec: spec.(RetentionSpec)}, nil
}
