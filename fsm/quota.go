package fsm

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm/resource"
)

// Namespace storage usage and quotas (issue 10; docs/design.md, "Namespace
// quotas").
//
// A namespace owns the repositories whose first path component is its
// name. Its usage is the deduplicated size of what the manifests stored in
// those repositories reach: each manifest's own bytes and the blobs it
// lists (config and layers; an index's children are manifests and count as
// their own rows). Apply keeps a reference count per (namespace, digest),
// so a blob two repositories share counts once, and the namespace's total
// beside it, so the quota check of a push costs only the push's digests.
//
// A row's size is a pure function of the state: the size of any link of
// the digest (every link of a digest has the same bytes), else the size of
// a manifest row of it, else 0 (a referenced blob whose every link was
// deleted). Whatever changes that function's input (a link made or
// removed) recomputes the rows of the digest. So the rows can be rebuilt
// from the manifests and links of a snapshot, which is what Restore does:
// they are not written to snapshots, whose format stays as it was, and a
// restored node holds exactly the numbers of the nodes that applied the
// log. The same rows, kept per repository and for the whole registry, give
// the storage accounting of accounting.go.
const (
	tUsage   = "nsusage"
	tNSUsage = "nsusagetotal"
	// tNSQuota caches each Namespace resource's spec.quota.storage, so a
	// push reads a row instead of parsing a document that may list a
	// thousand members. Derived like the usage rows.
	tNSQuota = "nsquota"

	// KindNamespace is the resource kind whose spec.quota.storage bounds
	// a namespace's usage.
	KindNamespace = "Namespace"
	// QuotaWarnPercent is the share of the quota at which Apply emits a
	// quota warning (once, until usage falls below it again).
	QuotaWarnPercent = 85
)

// CodeQuotaExceeded refuses a manifest put that would take its namespace
// over its storage quota; the OCI API answers 403 DENIED.
const CodeQuotaExceeded Code = "QUOTA_EXCEEDED"

// usageRow counts the references an owner's manifest rows make to one
// digest. The owner is a namespace in tUsage, a repository in tRepoUsage
// and the registry (regOwner) in tRegUsage (accounting.go).
type usageRow struct {
	Owner  string
	Digest digest.Digest
	// Refs counts manifest rows that are Digest or list it as a blob.
	Refs int
	// ManifestRefs counts the manifest rows of Digest itself, and
	// ManifestSize is their size (the same bytes in every repository).
	ManifestRefs int
	ManifestSize int64
	// Size is what the digest adds to the owner (see sizeOfUsage).
	Size int64
	// Link, in the registry's rows only, is the link state every row of
	// Digest was sized with (see usageResize).
	Link linkState
}

// nsUsageRow is a namespace's total: the sum of its usage rows' sizes.
type nsUsageRow struct {
	Namespace string
	Bytes     int64
}

// nsQuotaRow is a namespace's quota in bytes; no row: unlimited.
type nsQuotaRow struct {
	Namespace string
	Bytes     int64
}

func init() {
	schema.Tables[tUsage] = &memdb.TableSchema{Name: tUsage, Indexes: map[string]*memdb.IndexSchema{
		idx:       {Name: idx, Unique: true, Indexer: compound("Owner", "Digest")},
		idxDigest: {Name: idxDigest, Indexer: str("Digest")},
	}}
	schema.Tables[tNSUsage] = &memdb.TableSchema{Name: tNSUsage, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: str("Namespace")},
	}}
	schema.Tables[tNSQuota] = &memdb.TableSchema{Name: tNSQuota, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: str("Namespace")},
	}}
}

// NamespaceOf is the namespace that owns a repository: its first path
// component ("team-a/app" is in "team-a", "alpine" in "alpine"). It is the
// same rule as auth.NamespaceOf, which fsm may not import.
func NamespaceOf(repository string) string {
	ns, _, _ := strings.Cut(repository, "/")
	return ns
}

// quotaChanges collects, over one event, the namespaces whose usage or
// quota changed and what they were before, to derive warnings afterwards.
type quotaChanges struct {
	before map[string][2]int64 // namespace: usage, quota before the event
	order  []string
}

// touch records ns's usage and quota before the event first changes them.
func (w writer) touch(ns string) {
	if w.quota == nil {
		return // a snapshot being loaded: no warnings
	}
	if _, ok := w.quota.before[ns]; ok {
		return
	}
	if w.quota.before == nil {
		w.quota.before = map[string][2]int64{}
	}
	w.quota.before[ns] = [2]int64{w.usageOf(ns), quotaOf(w.txn, ns)}
	w.quota.order = append(w.quota.order, ns)
}

// quotasEnabled starts enforcing quotas (events.QuotasEnabled says why it
// is an event). A second one, from a racing leader, changes nothing.
func (w writer) quotasEnabled() error {
	c := w.cluster()
	if !c.Quotas {
		c.Quotas = true
		w.insert(tCluster, &c)
	}
	return nil
}

// QuotasEnforced reports whether QuotasEnabled was committed: before it,
// usage is counted but no push is refused and no warning is kept.
func (v *View) QuotasEnforced() bool {
	r, ok := v.first(tCluster, clusterKey).(*clusterRow)
	return ok && r.Quotas
}

// quotaWarnings lists, in namespace order, the namespaces the event took
// from below the warning level to at or above it.
func (w writer) quotaWarnings(p events.Payload) []events.QuotaWarning {
	if w.quota == nil || len(w.quota.order) == 0 || !w.cluster().Quotas {
		return nil
	}
	names := slices.Clone(w.quota.order)
	slices.Sort(names)
	var repo string
	if mp, ok := p.(events.ManifestPut); ok {
		repo = mp.Repo
	}
	var out []events.QuotaWarning
	for _, ns := range names {
		b := w.quota.before[ns]
		usage, quota := w.usageOf(ns), quotaOf(w.txn, ns)
		if !warnLevel(b[0], b[1]) && warnLevel(usage, quota) {
			wn := events.QuotaWarning{Namespace: ns, Usage: usage, Quota: quota}
			if NamespaceOf(repo) == ns {
				wn.Repo = repo
			}
			out = append(out, wn)
		}
	}
	return out
}

// warnLevel reports whether usage is at or above QuotaWarnPercent of a
// quota (0: none). It avoids usage*100, which could overflow.
func warnLevel(usage, quota int64) bool {
	if quota <= 0 || usage <= 0 {
		return false
	}
	threshold := quota/100*QuotaWarnPercent + quota%100*QuotaWarnPercent/100
	return usage >= threshold
}

// quotaOf is a namespace's quota in bytes, 0 for none (unlimited).
func quotaOf(txn *memdb.Txn, ns string) int64 {
	o, err := txn.First(tNSQuota, idx, ns)
	if err != nil {
		panic(fmt.Sprintf("fsm: lookup quota: %v", err))
	}
	if r, ok := o.(*nsQuotaRow); ok {
		return r.Bytes
	}
	return 0
}

// setQuota caches the quota of the Namespace resource ns as stored now
// (none once it is deleted).
func (w writer) setQuota(ns string) {
	var q int64
	if r, ok := w.first(tResource, KindNamespace, ns).(*Resource); ok {
		q = parseQuota(r.Document)
	}
	old := w.first(tNSQuota, ns)
	switch {
	case q > 0:
		w.insert(tNSQuota, &nsQuotaRow{Namespace: ns, Bytes: q})
	case old != nil:
		w.delete(tNSQuota, old)
	}
}

// parseQuota reads spec.quota.storage of a stored Namespace document: 0
// when it sets none. The document passed resource validation when it was
// applied; one that does not parse now counts as unlimited rather than
// failing every push.
func parseQuota(doc []byte) int64 {
	var d struct {
		Spec struct {
			Quota *struct {
				Storage json.RawMessage `json:"storage"`
			} `json:"quota"`
		} `json:"spec"`
	}
	if json.Unmarshal(doc, &d) != nil || d.Spec.Quota == nil {
		return 0
	}
	var s string
	if json.Unmarshal(d.Spec.Quota.Storage, &s) != nil {
		s = string(d.Spec.Quota.Storage) // a plain number of bytes
	}
	n, err := resource.ParseSize(s)
	if err != nil {
		return 0
	}
	return n
}

func (w writer) usageOf(ns string) int64 {
	if r, ok := w.first(tNSUsage, ns).(*nsUsageRow); ok {
		return r.Bytes
	}
	return 0
}

func (w writer) addUsage(ns string, delta int64) {
	if delta == 0 {
		return
	}
	w.touch(ns)
	r := nsUsageRow{Namespace: ns, Bytes: w.usageOf(ns) + delta}
	if r.Bytes == 0 {
		if old := w.first(tNSUsage, ns); old != nil {
			w.delete(tNSUsage, old)
		}
		return
	}
	w.insert(tNSUsage, &r)
}

// linkState is what the links of a digest say about its size: the size
// of its first link, if it has one.
type linkState struct {
	Linked bool
	Size   int64
}

func (w writer) linkOf(d digest.Digest) linkState {
	o, err := w.txn.First(tBlob, idxDigest, d.String())
	if err != nil {
		panic(fmt.Sprintf("fsm: read links: %v", err))
	}
	if l, ok := o.(*BlobLink); ok {
		return linkState{Linked: true, Size: l.Size}
	}
	return linkState{}
}

// sizeOfUsage is what a referenced digest adds to its owner: the size of
// any link of it, else of the owner's manifest rows of it, else 0.
func sizeOfUsage(r *usageRow, link linkState) int64 {
	if link.Linked {
		return link.Size
	}
	if r.ManifestRefs > 0 {
		return r.ManifestSize
	}
	return 0
}

// usageRef changes the references of one owner (a namespace, a
// repository or the registry: table says which, accounting.go) to d and
// keeps the row's size and the owner's totals in step.
func (w writer) usageRef(table, owner string, d digest.Digest, refs, manifestRefs int, manifestSize int64) {
	r := usageRow{Owner: owner, Digest: d}
	old, existed := w.first(table, owner, d.String()).(*usageRow)
	if existed {
		r = *old
	}
	oldSize, oldRefs := r.Size, int64(r.Refs)
	r.Refs += refs
	r.ManifestRefs += manifestRefs
	if manifestRefs > 0 {
		r.ManifestSize = manifestSize
	}
	if r.Refs <= 0 {
		if existed {
			w.delete(table, old)
			w.addTotals(table, owner, -oldRefs*oldSize, -oldSize, -1)
		}
		return
	}
	link := w.linkOf(d)
	r.Size = sizeOfUsage(&r, link)
	if table == tRegUsage {
		r.Link = link
	}
	w.insert(table, &r)
	added := 0
	if !existed {
		added = 1
	}
	w.addTotals(table, owner, int64(r.Refs)*r.Size-oldRefs*oldSize, r.Size-oldSize, added)
}

// manifestUsage adds (sign 1) or removes (sign -1) the references of one
// manifest row, in its namespace, its repository and the registry: its
// own digest and each distinct blob it lists.
func (w writer) manifestUsage(m *Manifest, sign int) {
	blobs := slices.Clone(m.Blobs)
	slices.Sort(blobs)
	blobs = slices.Compact(blobs)
	for _, table := range usageTables {
		owner := usageOwner(table, m.Repo)
		w.usageRef(table, owner, m.Digest, sign, sign, m.Size)
		for _, b := range blobs {
			if b != m.Digest {
				w.usageRef(table, owner, b, sign, 0, 0)
			}
		}
	}
}

// usageResize recomputes every row of d, in every namespace, repository
// and the registry, after a link of d was made or removed: the size of a
// row comes from the links. Most link events change nothing (a mount of a
// layer that is linked elsewhere already), and a popular layer has a row
// in each of thousands of repositories; so the registry's row, which
// exists while any owner references d, records the link state the rows
// were sized with, and nothing else is read unless it changed.
func (w writer) usageResize(d digest.Digest) {
	reg, ok := w.first(tRegUsage, regOwner, d.String()).(*usageRow)
	if !ok {
		return // no manifest reaches d: no owner has a row of it
	}
	link := w.linkOf(d)
	if reg.Link == link {
		return
	}
	for _, table := range usageTables {
		it, err := w.txn.Get(table, idxDigest, d.String())
		if err != nil {
			panic(fmt.Sprintf("fsm: read %s: %v", table, err))
		}
		var rows []*usageRow
		for o := it.Next(); o != nil; o = it.Next() {
			rows = append(rows, o.(*usageRow))
		}
		for _, old := range rows {
			r := *old
			r.Size = sizeOfUsage(&r, link)
			if table == tRegUsage {
				r.Link = link
			}
			if r != *old {
				w.insert(table, &r)
			}
			if r.Size != old.Size {
				w.addTotals(table, r.Owner, int64(r.Refs)*(r.Size-old.Size), r.Size-old.Size, 0)
			}
		}
	}
}

// checkQuota refuses a manifest put that added bytes to a namespace that
// is now over its quota. A put that adds nothing is accepted even above a
// lowered quota: it stores nothing new.
func (w writer) checkQuota(repo string, before int64) error {
	ns := NamespaceOf(repo)
	after := w.usageOf(ns)
	quota := quotaOf(w.txn, ns)
	if quota <= 0 || after <= quota || after <= before || !w.cluster().Quotas {
		return nil
	}
	return refuse(CodeQuotaExceeded,
		"namespace %s would exceed its storage quota (quota %s, usage %s, this push adds %s); delete tags and run GC, or raise spec.quota.storage of Namespace %s",
		ns, bytesText(quota), bytesText(before), bytesText(after-before), ns)
}

// bytesText is a size for people: "10Mi (10485760 bytes)".
func bytesText(n int64) string {
	if s := resource.FormatSize(n); s != fmt.Sprint(n) {
		return fmt.Sprintf("%s (%d bytes)", s, n)
	}
	return fmt.Sprintf("%d bytes", n)
}

// deriveUsage rebuilds the usage rows (namespaces, repositories, the
// registry) and the quota rows from a loaded snapshot's manifests, links
// and Namespace resources.
func deriveUsage(txn *memdb.Txn) error {
	it, err := txn.Get(tManifest, idx)
	if err != nil {
		return err
	}
	var ms []*Manifest
	for o := it.Next(); o != nil; o = it.Next() {
		ms = append(ms, o.(*Manifest))
	}
	w := writer{txn: txn}
	for _, m := range ms {
		w.manifestUsage(m, 1)
	}
	it, err = txn.Get(tResource, idx+"_prefix", KindNamespace+"\x00")
	if err != nil {
		return err
	}
	var names []string
	for o := it.Next(); o != nil; o = it.Next() {
		names = append(names, o.(*Resource).Name)
	}
	for _, ns := range names {
		w.setQuota(ns)
	}
	return nil
}

// NamespaceUsage is a namespace's usage in bytes and its quota (0: none).
type NamespaceUsage struct {
	Namespace string
	Bytes     int64
	Quota     int64
}

// NamespaceUsage returns one namespace's usage and quota.
func (v *View) NamespaceUsage(ns string) NamespaceUsage {
	u := NamespaceUsage{Namespace: ns, Quota: quotaOf(v.txn, ns)}
	if r, ok := v.first(tNSUsage, ns).(*nsUsageRow); ok {
		u.Bytes = r.Bytes
	}
	return u
}

// NamespaceUsages lists, by name, every namespace that stores something
// or has a Namespace resource.
func (v *View) NamespaceUsages() []NamespaceUsage {
	names := map[string]bool{}
	v.each(tNSUsage, func(o any) bool { names[o.(*nsUsageRow).Namespace] = true; return true })
	for _, r := range v.Resources(KindNamespace) {
		names[r.Name] = true
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	slices.Sort(list)
	out := make([]NamespaceUsage, len(list))
	for i, n := range list {
		out[i] = v.NamespaceUsage(n)
	}
	return out
}
