// Package gc is Berth's online garbage collection (ARCHITECTURE.md rules
// 9 and 10): a pure mark over a read view of the state, and a leader-only,
// fenced job that commits the mark, the sweep and its end through the log
// and deletes the bytes in between. docs/design.md ("Garbage collection")
// argues why no read-only mode is needed.
package gc

import (
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// View is the part of fsm.View the mark reads.
type View interface {
	Index() uint64
	EachManifest(fn func(fsm.Manifest) bool)
	EachBlobLink(fn func(fsm.BlobLink) bool)
	EachTag(fn func(repo, tag string, d digest.Digest) bool)
	EachGCOrphan(fn func(d digest.Digest, size int64, since time.Time) bool)
}

// Options select what a run collects.
type Options struct {
	// DeleteUntagged makes manifests that no tag, kept index or kept
	// subject reaches garbage. Without it every manifest is kept.
	DeleteUntagged bool
	// Grace is how old a link or untagged manifest must be before being
	// unreferenced makes it garbage (gc.uploadmaxage): a layer whose
	// manifest has not come yet, or the children of an index being pushed,
	// are young.
	Grace time.Duration
}

// Mark is the result of a mark: what the sweep would delete.
type Mark struct {
	Index uint64 // the view's index
	// Blobs are digests whose bytes no repository keeps, sorted; Sizes
	// holds each one's size.
	Blobs []digest.Digest
	Sizes []int64
	// Manifests are the manifest rows to remove (DeleteUntagged), sorted.
	Manifests []events.ManifestRef
}

// Bytes is the total size of the blob candidates.
func (m Mark) Bytes() int64 {
	var n int64
	for _, s := range m.Sizes {
		n += s
	}
	return n
}

type ref struct {
	repo string
	d    digest.Digest
}

// ComputeMark finds what nothing reaches in v, with now as the time the
// grace period is measured against (the GCStarted event's time for a real
// run, so every node would compute the same). It is a pure function of its
// inputs.
//
// Reachable are: every tagged manifest; with !DeleteUntagged every
// manifest, with DeleteUntagged untagged ones younger than Grace; and,
// from a kept manifest, its config and layers, its index children and the
// manifests whose subject it is (referrers). A blob's bytes are kept if any
// repository keeps the digest (bytes are shared) or links it since less
// than Grace. Digests the state no longer names (fsm's orphans: deleted
// manifests, unlinked blobs) are garbage unless something keeps them.
func ComputeMark(v View, opt Options, now time.Time) Mark {
	cutoff := now.Add(-opt.Grace)
	manifests := map[ref]fsm.Manifest{}
	referrers := map[ref][]digest.Digest{}
	var roots []ref
	v.EachManifest(func(m fsm.Manifest) bool {
		r := ref{m.Repo, m.Digest}
		manifests[r] = m
		if m.Subject != "" {
			s := ref{m.Repo, m.Subject}
			referrers[s] = append(referrers[s], m.Digest)
		}
		if !opt.DeleteUntagged || m.Created.After(cutoff) {
			roots = append(roots, r)
		}
		return true
	})
	v.EachTag(func(repo, _ string, d digest.Digest) bool {
		roots = append(roots, ref{repo, d})
		return true
	})
	keptM := map[ref]bool{}
	keptD := map[digest.Digest]bool{}
	for len(roots) > 0 {
		r := roots[len(roots)-1]
		roots = roots[:len(roots)-1]
		if keptM[r] {
			continue
		}
		m, ok := manifests[r]
		if !ok {
			continue
		}
		keptM[r] = true
		keptD[r.d] = true
		for _, b := range m.Blobs {
			keptD[b] = true
		}
		for _, c := range m.Manifests {
			roots = append(roots, ref{r.repo, c})
		}
		for _, x := range referrers[r] {
			roots = append(roots, ref{r.repo, x})
		}
	}
	sizes := map[digest.Digest]int64{}
	v.EachBlobLink(func(l fsm.BlobLink) bool {
		if l.Linked.After(cutoff) {
			keptD[l.Digest] = true
		}
		if !keptD[l.Digest] {
			sizes[l.Digest] = l.Size
		}
		return true
	})
	// Bytes a deleted manifest, unlink or repository deletion left behind.
	// Like links, they wait out the grace period.
	v.EachGCOrphan(func(d digest.Digest, size int64, since time.Time) bool {
		if since.After(cutoff) {
			keptD[d] = true
		}
		if _, ok := sizes[d]; !ok && !keptD[d] {
			sizes[d] = size
		}
		return true
	})
	out := Mark{Index: v.Index()}
	for r, m := range manifests {
		if keptM[r] {
			continue
		}
		out.Manifests = append(out.Manifests, events.ManifestRef{Repo: r.repo, Digest: r.d})
		if _, ok := sizes[r.d]; !ok {
			sizes[r.d] = m.Size
		}
	}
	for d := range sizes {
		if !keptD[d] {
			out.Blobs = append(out.Blobs, d)
		}
	}
	slices.Sort(out.Blobs)
	for _, d := range out.Blobs {
		out.Sizes = append(out.Sizes, sizes[d])
	}
	slices.SortFunc(out.Manifests, func(a, b events.ManifestRef) int {
		if a.Repo != b.Repo {
			return cmpStr(a.Repo, b.Repo)
		}
		return cmpStr(string(a.Digest), string(b.Digest))
	})
	return out
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Chunks splits a mark into GCMarked events of at most events.MaxGCChunk
// digests each.
func (m Mark) Chunks(run string) []events.GCMarked {
	var out []events.GCMarked
	cur := events.GCMarked{Run: run}
	n := 0
	flush := func() {
		if n > 0 {
			out = append(out, cur)
		}
		cur, n = events.GCMarked{Run: run}, 0
	}
	for _, d := range m.Blobs {
		if n == events.MaxGCChunk {
			flush()
		}
		cur.Blobs = append(cur.Blobs, d)
		n++
	}
	for _, r := range m.Manifests {
		if n == events.MaxGCChunk {
			flush()
		}
		cur.Manifests = append(cur.Manifests, r)
		n++
	}
	flush()
	return out
}
