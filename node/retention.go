package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
	"github.com/berth-registry/berth/gc/retention"
	"github.com/berth-registry/berth/node/admin"
	"github.com/berth-registry/berth/node/httperr"
)

// RetentionResult is what a run of a policy did (or, dry, would do).
type RetentionResult struct {
	DryRun bool           `json:"dryRun"`
	Plan   retention.Plan `json:"plan"`
	// Deleted and Skipped count the plan's deletions Apply accepted and
	// refused (a tag moved, deleted or made immutable since the plan).
	DeletedTags      int `json:"deletedTags"`
	DeletedManifests int `json:"deletedManifests"`
	Skipped          int `json:"skipped"`
}

// RunRetention plans policy name at a consistent view and, unless dry,
// deletes what the plan lists, each deletion an event with the actor
// retention:<name>, then commits RetentionApplied. A dry run at index N
// lists exactly what a real run at N deletes: both use retention.Evaluate
// on the same state, and Apply refuses anything protected since.
func (n *Node) RunRetention(ctx context.Context, name string, dryRun bool) (RetentionResult, error) {
	view, err := n.ReadView(ctx)
	if err != nil {
		return RetentionResult{}, err
	}
	r, ok := view.Resource("RetentionPolicy", name)
	if !ok {
		return RetentionResult{}, httperr.Errorf(http.StatusNotFound, "RetentionPolicy %q not found (clusterctl get retentionpolicies)", name)
	}
	p, err := resource.DecodeRetentionPolicy(r.Document)
	if err != nil {
		return RetentionResult{}, fmt.Errorf("RetentionPolicy %s: %w", name, err)
	}
	plan := retention.Evaluate(view, p, retention.Options{Now: time.Now(), Immutable: immutabilityRules(view), UntaggedGrace: n.cfg.GC.UploadMaxAge})
	res := RetentionResult{DryRun: dryRun, Plan: plan}
	if dryRun {
		return res, nil
	}
	if ro := view.ReadOnly(); ro.On {
		return res, httperr.Errorf(http.StatusConflict, "%s", ro.Message())
	}
	ctx = events.WithOrigin(ctx, events.Origin{Actor: "retention:" + name})
	propose := func(p events.Payload) (bool, error) {
		_, err := n.Propose(ctx, p)
		var ref *fsm.Refusal
		if errors.As(err, &ref) {
			return false, nil
		}
		return err == nil, err
	}
	for _, t := range plan.Tags {
		ok, err := propose(events.TagDeleted{Repo: t.Repo, Tag: t.Tag})
		if err != nil {
			return res, fmt.Errorf("delete tag %s:%s: %w", t.Repo, t.Tag, err)
		}
		if ok {
			res.DeletedTags++
		} else {
			res.Skipped++
		}
	}
	for _, m := range plan.Manifests {
		ok, err := propose(events.ManifestDeleted{Repo: m.Repo, Digest: m.Digest})
		if err != nil {
			return res, fmt.Errorf("delete manifest %s@%s: %w", m.Repo, m.Digest, err)
		}
		if ok {
			res.DeletedManifests++
		} else {
			res.Skipped++
		}
	}
	if _, err := n.Propose(ctx, events.RetentionApplied{Policy: name, Index: plan.Index, DeletedTags: res.DeletedTags,
		DeletedManifests: res.DeletedManifests, KeptTags: plan.KeptTags, Skipped: res.Skipped}); err != nil {
		return res, fmt.Errorf("record the run: %w", err)
	}
	n.logger.Info("retention run", "policy", name, "index", plan.Index, "deletedTags", res.DeletedTags,
		"deletedManifests", res.DeletedManifests, "kept", plan.KeptTags, "skipped", res.Skipped)
	return res, nil
}

func immutabilityRules(v *fsm.View) []resource.ImmutabilityRule {
	var out []resource.ImmutabilityRule
	for _, r := range v.Resources("ImmutabilityRule") {
		if rule, err := resource.DecodeImmutabilityRule(r.Document); err == nil {
			out = append(out, rule)
		}
	}
	return out
}

// runRetentionSchedule runs every enabled policy with a schedule at its
// times while this node leads. A slot missed while no node led is run
// once when the next term notices it, not once per missed slot.
func (n *Node) runRetentionSchedule(ctx context.Context) {
	next := map[string]time.Time{} // policy -> next run, for the generation seen
	gens := map[string]int64{}
	t := time.NewTicker(20 * time.Second)
	defer t.Stop()
	for {
		now := time.Now()
		for _, r := range n.fsm.View().Resources("RetentionPolicy") {
			p, err := resource.DecodeRetentionPolicy(r.Document)
			if err != nil || !p.Spec.Enabled || p.Spec.Schedule == "" {
				delete(next, r.Name)
				continue
			}
			if gens[r.Name] != r.Generation {
				gens[r.Name] = r.Generation
				if at, ok := p.Spec.NextRun(now); ok {
					next[r.Name] = at
				}
				continue
			}
			if at, ok := next[r.Name]; ok && !now.Before(at) {
				if _, err := n.RunRetention(ctx, r.Name, false); err != nil && ctx.Err() == nil {
					n.logger.Warn("scheduled retention run failed; it runs again at its next time", "policy", r.Name, "err", err)
				}
				if at, ok := p.Spec.NextRun(time.Now()); ok {
					next[r.Name] = at
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retentionAdmin serves POST /admin/v1/retention/{name}/run?dryRun=.
func (n *Node) retentionAdmin() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/v1/retention/{name}/run", func(w http.ResponseWriter, r *http.Request) {
		dry := false
		if v := r.URL.Query().Get("dryRun"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				adminError(w, http.StatusBadRequest, "dryRun: "+strconv.Quote(v)+" is not true or false")
				return
			}
			dry = b
		}
		res, err := n.RunRetention(r.Context(), r.PathValue("name"), dry)
		if err != nil {
			adminError(w, httperr.Status(err), err.Error())
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	return admin.Guard(n.token).Wrap(mux)
}

// retentionBeforeGC runs, before a scheduled GC run, every enabled
// RetentionPolicy that has no schedule of its own: those follow GC's.
func (n *Node) retentionBeforeGC(ctx context.Context) {
	for _, r := range n.fsm.View().Resources("RetentionPolicy") {
		p, err := resource.DecodeRetentionPolicy(r.Document)
		if err != nil || !p.Spec.Enabled || p.Spec.Schedule != "" {
			continue
		}
		if _, err := n.RunRetention(ctx, r.Name, false); err != nil && ctx.Err() == nil {
			n.logger.Warn("retention run before gc failed", "policy", r.Name, "err", err)
		}
	}
}
