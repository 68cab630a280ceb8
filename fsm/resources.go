package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/berth-registry/berth/events"
)

// historyLimit is how many earlier generations of a resource are kept.
const historyLimit = 10

// resourceApplied assigns metadata.generation deterministically: 1 on
// create, +1 when spec, labels or annotations change, and no change at all
// for an identical apply (so `clusterctl apply` is idempotent).
func (w writer) resourceApplied(p events.ResourceApplied) error {
	if p.Kind == KindNamespace {
		w.touch(p.Name) // its quota may change: a warning may be due
	}
	var doc map[string]any
	if err := json.Unmarshal(p.Document, &doc); err != nil {
		return refuse(CodeInvalid, "resource %s/%s: document is not a JSON object: %v", p.Kind, p.Name, err)
	}
	meta, _ := doc["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		doc["metadata"] = meta
	}
	now := w.ev.Time.UTC().Format(time.RFC3339)
	res := Resource{Kind: p.Kind, Name: p.Name, Generation: 1, Created: w.ev.Time, Updated: w.ev.Time}
	if w.recordsActors() {
		res.Actor = w.ev.Origin.Actor
	}

	old, ok := w.first(tResource, p.Kind, p.Name).(*Resource)
	if !ok {
		// A new resource starts a new history: what was kept of an
		// earlier one of the same name (deleted) goes.
		w.dropHistory(p.Kind, p.Name)
	}
	if ok {
		var prev map[string]any
		if err := json.Unmarshal(old.Document, &prev); err != nil {
			panic(fmt.Sprintf("fsm: stored resource %s/%s is not JSON: %v", p.Kind, p.Name, err))
		}
		if sameDesiredState(prev, doc) {
			return nil
		}
		res.Generation = old.Generation + 1
		res.Created = old.Created
		w.insert(tHistory, &historyRow{Kind: p.Kind, Name: p.Name, Generation: uint64(old.Generation), Resource: *old})
		w.trimHistory(p.Kind, p.Name, uint64(res.Generation))
	}
	meta["generation"] = res.Generation
	meta["creationTimestamp"] = res.Created.UTC().Format(time.RFC3339)
	meta["updateTimestamp"] = now
	b, err := json.Marshal(doc) // map keys marshal sorted: deterministic bytes
	if err != nil {
		return refuse(CodeInvalid, "resource %s/%s: %v", p.Kind, p.Name, err)
	}
	res.Document = b
	w.insert(tResource, &res)
	if p.Kind == KindNamespace {
		w.setQuota(p.Name)
	}
	return nil
}

// resourcesApplied applies several resources in one transaction, each as
// resourceApplied would: if any is refused, the refusal names it and none
// of the others is applied (a multi-document apply is all or nothing).
func (w writer) resourcesApplied(p events.ResourcesApplied) error {
	if len(p.Resources) == 0 {
		return refuse(CodeInvalid, "an apply of no resources")
	}
	for _, r := range p.Resources {
		err := w.resourceApplied(r)
		var ref *Refusal
		switch {
		case errors.As(err, &ref):
			return &Refusal{Code: ref.Code, Missing: ref.Missing, Message: fmt.Sprintf("%s %q was refused, so none of the %d resources of this apply was: %s",
				r.Kind, r.Name, len(p.Resources), ref.Message)}
		case err != nil:
			return err
		}
	}
	return nil
}

// sameDesiredState compares what the user controls, ignoring the fields
// the FSM owns (generation and timestamps).
func sameDesiredState(a, b map[string]any) bool {
	pick := func(d map[string]any) [4]any {
		m, _ := d["metadata"].(map[string]any)
		var labels, annotations any
		if m != nil {
			labels, annotations = m["labels"], m["annotations"]
		}
		return [4]any{d["apiVersion"], d["spec"], labels, annotations}
	}
	return reflect.DeepEqual(pick(a), pick(b))
}

func (w writer) trimHistory(kind, name string, current uint64) {
	var rows []*historyRow
	it, err := w.txn.Get(tHistory, idx+"_prefix", kind, name)
	if err != nil {
		panic(err)
	}
	for o := it.Next(); o != nil; o = it.Next() {
		if h := o.(*historyRow); h.Kind == kind && h.Name == name {
			rows = append(rows, h)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Generation < rows[j].Generation })
	for len(rows) > historyLimit {
		w.delete(tHistory, rows[0])
		rows = rows[1:]
	}
}

func (w writer) resourceDeleted(p events.ResourceDeleted) error {
	r, ok := w.first(tResource, p.Kind, p.Name).(*Resource)
	if !ok {
		return refuse(CodeResourceUnknown, "%s %q does not exist", p.Kind, p.Name)
	}
	if p.Kind == KindNamespace {
		w.touch(p.Name)
	}
	w.delete(tResource, r)
	if p.Kind == KindNamespace {
		w.setQuota(p.Name) // gone: unlimited
	}
	if !w.recordsActors() {
		// A binary older than generation 3 drops the history with the
		// resource; until every voter runs a newer one, so does this.
		w.dropHistory(p.Kind, p.Name)
		return nil
	}
	// The history outlives the resource, ending with the generation that
	// was deleted, so `clusterctl history` still shows what it was and
	// who deleted it; applying the name again starts afresh.
	at := w.ev.Time.UTC()
	w.insert(tHistory, &historyRow{Kind: p.Kind, Name: p.Name, Generation: uint64(r.Generation), Resource: *r,
		Deleted: &at, DeletedBy: w.ev.Origin.Actor})
	w.trimHistory(p.Kind, p.Name, uint64(r.Generation))
	return nil
}

// dropHistory deletes every kept generation of a resource.
func (w writer) dropHistory(kind, name string) {
	var rows []any
	it, err := w.txn.Get(tHistory, idx+"_prefix", kind, name)
	if err != nil {
		panic(err)
	}
	for o := it.Next(); o != nil; o = it.Next() {
		if h := o.(*historyRow); h.Kind == kind && h.Name == name {
			rows = append(rows, h)
		}
	}
	for _, h := range rows {
		w.delete(tHistory, h)
	}
}

// recordsActors reports whether this entry is applied only by binaries
// that record who applied and deleted a resource and keep its history
// past a delete. QuotasEnabled is committed once every voter decodes
// generation 3 (node/quota.go), and an older binary stops at it, so from
// its index on every node folds these details in alike; before it, Apply
// does exactly what generation 2 binaries do.
func (w writer) recordsActors() bool {
	return w.cluster().Quotas
}
