// Package retention decides which tags and untagged manifests a
// RetentionPolicy deletes. Evaluate is a pure function of a consistent
// view, the policy, the immutability rules and the clock, so a dry run at
// an index lists exactly what the real run at that index deletes; the
// node's job turns the plan into TagDeleted and ManifestDeleted events
// with the actor retention:<name>, and Apply still refuses anything an
// ImmutabilityRule protects by then.
package retention

import (
	"cmp"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
)

// Reasons a tag or manifest is kept or deleted, as plans show them.
const (
	ReasonNoRuleKeeps = "no keep rule matches"
	ReasonUntagged    = "untagged"
)

// TagDeletion is one tag the policy deletes.
type TagDeletion struct {
	Repo   string        `json:"repository"`
	Tag    string        `json:"tag"`
	Digest digest.Digest `json:"digest"`
	Pushed time.Time     `json:"pushed"`
	// Pulled is the last reported pull, zero if none.
	Pulled time.Time `json:"pulled,omitempty"`
}

// ManifestDeletion is one untagged manifest the policy deletes.
type ManifestDeletion struct {
	Repo   string        `json:"repository"`
	Digest digest.Digest `json:"digest"`
	Pushed time.Time     `json:"pushed"`
}

// Plan is what one run of a policy deletes, in the order it deletes it:
// tags first, then the manifests nothing kept reaches any more.
type Plan struct {
	Policy       string             `json:"policy"`
	Index        uint64             `json:"index"`
	Repositories int                `json:"repositories"`
	KeptTags     int                `json:"keptTags"`
	Tags         []TagDeletion      `json:"tags"`
	Manifests    []ManifestDeletion `json:"manifests"`
}

// Options are what the plan depends on besides the view and the policy.
type Options struct {
	Now time.Time
	// Immutable are the ImmutabilityRules in force: retention never
	// deletes what they protect.
	Immutable []resource.ImmutabilityRule
	// UntaggedGrace spares untagged manifests younger than it: the
	// children of a multi-arch index are untagged until the index comes.
	UntaggedGrace time.Duration
}

type tagRow struct {
	tag    string
	digest digest.Digest
}

// Evaluate plans one run of policy p at view v.
func Evaluate(v *fsm.View, p resource.RetentionPolicy, opt Options) Plan {
	plan := Plan{Policy: p.Name, Index: v.Index(), Tags: []TagDeletion{}, Manifests: []ManifestDeletion{}}
	tags := map[string][]tagRow{}
	v.EachTag(func(repo, tag string, d digest.Digest) bool {
		if resource.MatchRepository(p.Spec.Repositories, repo) {
			tags[repo] = append(tags[repo], tagRow{tag, d})
		}
		return true
	})
	var manifests map[string][]fsm.Manifest
	if p.Spec.DeleteUntagged {
		manifests = map[string][]fsm.Manifest{}
		v.EachManifest(func(m fsm.Manifest) bool {
			if resource.MatchRepository(p.Spec.Repositories, m.Repo) {
				manifests[m.Repo] = append(manifests[m.Repo], m)
			}
			return true
		})
	}
	repos := make([]string, 0, len(tags)+len(manifests))
	for r := range tags {
		repos = append(repos, r)
	}
	for r := range manifests {
		if _, ok := tags[r]; !ok {
			repos = append(repos, r)
		}
	}
	slices.Sort(repos)
	plan.Repositories = len(repos)
	for _, repo := range repos {
		kept := planTags(v, p.Spec, opt, repo, tags[repo], &plan)
		if p.Spec.DeleteUntagged {
			planUntagged(v, opt, repo, kept, manifests[repo], &plan)
		}
	}
	// Repositories were visited in order; within one, by name and digest.
	slices.SortFunc(plan.Tags, func(a, b TagDeletion) int {
		return cmp.Or(cmp.Compare(a.Repo, b.Repo), cmp.Compare(a.Tag, b.Tag))
	})
	slices.SortFunc(plan.Manifests, func(a, b ManifestDeletion) int {
		return cmp.Or(cmp.Compare(a.Repo, b.Repo), cmp.Compare(a.Digest, b.Digest))
	})
	return plan
}

// planTags decides one repository's tags and returns the digests the
// kept tags point at.
func planTags(v *fsm.View, s resource.RetentionSpec, opt Options, repo string, rows []tagRow, plan *Plan) map[digest.Digest]bool {
	type cand struct {
		tagRow
		pushed, pulled time.Time
	}
	cands := make([]cand, 0, len(rows))
	for _, r := range rows {
		c := cand{tagRow: r}
		if m, ok := v.Manifest(repo, r.digest); ok {
			c.pushed = m.Created
		}
		c.pulled, _ = v.LastPulled(repo, r.digest)
		cands = append(cands, c)
	}
	// Most recently pushed first; the tag name breaks ties, so the plan
	// is the same on every evaluation.
	slices.SortFunc(cands, func(a, b cand) int {
		if c := b.pushed.Compare(a.pushed); c != 0 {
			return c
		}
		return cmp.Compare(a.tag, b.tag)
	})
	pushedWithin, pulledWithin := s.PushedWithin(), s.PulledWithin()
	kept := map[digest.Digest]bool{}
	for i, c := range cands {
		keep := i < s.KeepLast ||
			(pushedWithin > 0 && opt.Now.Sub(c.pushed) < pushedWithin) ||
			(pulledWithin > 0 && !c.pulled.IsZero() && opt.Now.Sub(c.pulled) < pulledWithin) ||
			(len(s.KeepTags) > 0 && resource.MatchTag(s.KeepTags, c.tag)) ||
			protected(opt.Immutable, repo, c.tag)
		if keep {
			kept[c.digest] = true
			plan.KeptTags++
			continue
		}
		plan.Tags = append(plan.Tags, TagDeletion{Repo: repo, Tag: c.tag, Digest: c.digest, Pushed: c.pushed, Pulled: c.pulled})
	}
	return kept
}

func protected(rules []resource.ImmutabilityRule, repo, tag string) bool {
	for _, r := range rules {
		if r.Spec.Protects(repo, tag) {
			return true
		}
	}
	return false
}

// planUntagged deletes the repository's manifests that no kept tag
// reaches after the tag deletions: not a kept tag's manifest, not a child
// of a kept index, not a referrer of a kept subject, and older than the
// grace period.
func planUntagged(v *fsm.View, opt Options, repo string, roots map[digest.Digest]bool, ms []fsm.Manifest, plan *Plan) {
	byDigest := make(map[digest.Digest]fsm.Manifest, len(ms))
	referrers := map[digest.Digest][]digest.Digest{}
	for _, m := range ms {
		byDigest[m.Digest] = m
		if m.Subject != "" {
			referrers[m.Subject] = append(referrers[m.Subject], m.Digest)
		}
	}
	reached := map[digest.Digest]bool{}
	var visit func(d digest.Digest)
	visit = func(d digest.Digest) {
		if reached[d] {
			return
		}
		reached[d] = true
		for _, c := range byDigest[d].Manifests {
			visit(c)
		}
		for _, r := range referrers[d] {
			visit(r)
		}
	}
	for d := range roots {
		visit(d)
	}
	for _, m := range ms {
		if reached[m.Digest] || opt.Now.Sub(m.Created) < opt.UntaggedGrace {
			continue
		}
		// A tag this run keeps is a root; one it deletes is gone. A tag
		// the policy does not cover cannot exist here (same repository).
		plan.Manifests = append(plan.Manifests, ManifestDeletion{Repo: repo, Digest: m.Digest, Pushed: m.Created})
	}
}
