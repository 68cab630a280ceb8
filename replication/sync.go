package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// initialSync copies everything the policy covers from a listing of the
// origin and commits the cursor the stream resumes from.
//
// The stream's last sequence is read before the listing: every event
// published up to it was applied on the origin before the listing's first
// read, whose Berth-Applied-Index is therefore at least its index. So the
// listing holds all of them, the stream resumes after that sequence, and
// any later event the listing already reflects is either skipped (index
// up to the listing's) or harmlessly applied again.
func (m *mirror) initialSync(ctx context.Context, stream jetstream.Stream) (Cursor, error) {
	m.update(func(s *Status) { s.Syncing = true })
	m.rep.started(ctx, "initial-sync")
	defer m.update(func(s *Status) { s.Syncing = false })
	info, err := stream.Info(ctx)
	if err != nil {
		return Cursor{}, fmt.Errorf("origin stream info: %w", err)
	}
	seq := info.State.LastSeq
	repos, index, err := m.copy.origin.catalog(ctx)
	if err != nil {
		return Cursor{}, fmt.Errorf("initial sync: list the origin: %w", err)
	}
	ctx = events.WithOrigin(ctx, events.Origin{Actor: "replication:" + m.p.Name, RequestID: "initial-sync"})
	listed := map[string]bool{}
	for _, src := range repos {
		if !m.p.Covers(src) {
			continue
		}
		dst := m.p.Destination(src)
		listed[dst] = true
		if err := m.syncRepo(ctx, src, dst); err != nil {
			return Cursor{}, fmt.Errorf("initial sync of %s: %w", src, err)
		}
	}
	c := Cursor{Index: index, Seq: seq}
	if err := m.copy.propose(ctx, events.MirrorCursor{Policy: m.p.Name, Index: c.Index, Seq: c.Seq, Synced: true}); err != nil {
		return Cursor{}, fmt.Errorf("commit the initial sync's cursor: %w", err)
	}
	m.logger.Info("initial sync done", "repositories", len(listed), "index", index, "seq", seq)
	return c, nil
}

// syncRepo copies one repository's tags, what they point at and their
// referrers; with deletion on, tags the origin no longer has go here too.
func (m *mirror) syncRepo(ctx context.Context, src, dst string) error {
	tags, err := m.copy.origin.tags(ctx, src)
	if errors.Is(err, errGone) {
		tags, err = nil, nil // deleted since the catalog was read
	}
	if err != nil {
		return err
	}
	for _, tag := range tags {
		if !m.p.WantsTag(tag) {
			continue
		}
		d, err := m.copy.origin.manifestByTag(ctx, src, tag)
		if errors.Is(err, errGone) {
			continue
		}
		if err != nil {
			return err
		}
		if err := m.copyArtifact(ctx, m.copy, src, dst, d, []string{tag}); err != nil && !errors.Is(err, errGone) {
			return err
		}
		if err := m.syncReferrers(ctx, src, dst, d); err != nil {
			return err
		}
	}
	if !m.p.Deletion {
		return nil
	}
	for _, tag := range m.target.View().Tags(dst) {
		if m.p.WantsTag(tag) && !slices.Contains(tags, tag) {
			if err := m.copy.propose(ctx, events.TagDeleted{Repo: dst, Tag: tag}); err != nil {
				return fmt.Errorf("delete tag %s:%s the origin no longer has: %w", dst, tag, err)
			}
		}
	}
	return nil
}

// syncReferrers copies the signatures, SBOMs and other referrers of d.
func (m *mirror) syncReferrers(ctx context.Context, src, dst string, d digest.Digest) error {
	refs, err := m.copy.origin.referrers(ctx, src, d)
	if errors.Is(err, errGone) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, r := range refs {
		if err := m.copyArtifact(ctx, m.copy, src, dst, r, nil); err != nil && !errors.Is(err, errGone) {
			return err
		}
	}
	return nil
}
