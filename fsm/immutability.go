package fsm

import (
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/fsm/resource"
)

// CodeImmutable refuses a change to a tag an ImmutabilityRule protects:
// moving it to another manifest, deleting it, or deleting the manifest or
// repository that holds it. Creating it, or pushing it again at the same
// digest, is allowed. Apply decides, so the rule binds every node, every
// client and every job (retention included) in log order.
const CodeImmutable Code = "IMMUTABLE"

// immutability holds the rules in force for one event.
type immutability []resource.ImmutabilityRule

// immutabilityRules decodes the ImmutabilityRule resources. With none
// (the usual case) it costs one empty index lookup. A stored rule that no
// longer decodes protects nothing: every node runs the same binary over
// the same log, so they agree.
func (w writer) immutabilityRules() immutability {
	it, err := w.txn.Get(tResource, idx+"_prefix", "ImmutabilityRule\x00")
	if err != nil {
		panic(err)
	}
	var rules immutability
	for o := it.Next(); o != nil; o = it.Next() {
		if r, err := resource.DecodeImmutabilityRule(o.(*Resource).Document); err == nil {
			rules = append(rules, r)
		}
	}
	return rules
}

// protecting returns the rule that protects repo:tag, if any.
func (rules immutability) protecting(repo, tag string) (resource.ImmutabilityRule, bool) {
	for _, r := range rules {
		if r.Spec.Protects(repo, tag) {
			return r, true
		}
	}
	return resource.ImmutabilityRule{}, false
}

func immutable(r resource.ImmutabilityRule, repo, tag, what string) *Refusal {
	return refuse(CodeImmutable, "tag %s:%s is immutable (ImmutabilityRule %s): it cannot be %s; push a new tag instead", repo, tag, r.Name, what)
}

// checkTagMoves refuses setting tags that exist at another digest.
func (w writer) checkTagMoves(repo string, tags []string, to digest.Digest) error {
	if len(tags) == 0 {
		return nil
	}
	rules := w.immutabilityRules()
	if len(rules) == 0 {
		return nil
	}
	idx := w.repo(repo).tags
	for _, tag := range tags {
		if cur, ok := idx.get(tag); ok && cur != to {
			if r, ok := rules.protecting(repo, tag); ok {
				return immutable(r, repo, tag, "moved to "+to.String())
			}
		}
	}
	return nil
}

// checkTagRemovals refuses removing protected tags.
func (w writer) checkTagRemovals(repo string, tags []string, what string) error {
	if len(tags) == 0 {
		return nil
	}
	rules := w.immutabilityRules()
	for _, tag := range tags {
		if r, ok := rules.protecting(repo, tag); ok {
			return immutable(r, repo, tag, what)
		}
	}
	return nil
}
