package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berth-registry/berth/blob"
)

// PurgeUploads removes upload sessions with no activity since olderThan
// (abandoned uploads) and returns how many it removed. It also removes
// what crashed or interrupted requests left behind, once it is older than
// olderThan: tmp/ objects of large Puts, chunks of sessions whose state
// is gone or damaged, and the tombstones of sessions whose signed IDs have
// expired. Empty sessions have nothing to purge: their IDs expire. It is
// for the leader's purge job (rule 9), so a node that loses leadership
// cancels ctx and the next leader resumes.
func (s *Store) PurgeUploads(ctx context.Context, olderThan time.Time) (int, error) {
	n := 0
	var errs []error
	dirs := s.c.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + "uploads/"})
	for o := range dirs {
		if o.Err != nil {
			return n, fmt.Errorf("s3 list uploads: %w", o.Err)
		}
		id := strings.TrimSuffix(strings.TrimPrefix(o.Key, s.prefix+"uploads/"), "/")
		// A signed ID stays valid until its TTL runs out: its session must
		// keep a tombstone until then, or it would come back as an empty
		// session.
		idValid := mayBeLive(id, s.now())
		st, _, err := s.loadState(ctx, id)
		switch {
		case err == nil && !st.Cancelled:
			// Every chunk rewrites the state: its time is the session's
			// last activity, so an upload still sending is never purged.
			last := st.Started
			if info, err := s.c.StatObject(ctx, s.bucket, s.stateKey(id), minio.StatObjectOptions{}); err == nil && info.LastModified.After(last) {
				last = info.LastModified
			}
			if !last.Before(olderThan) {
				continue
			}
			if idValid {
				err = s.removeSession(ctx, id, true)
			} else {
				err = s.removeAll(ctx, s.sessionDir(id), time.Time{}, "")
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			s.logger.Info("purged abandoned upload", "id", id, "started", st.Started, "offset", st.Offset)
			n++
		case err == nil, errors.Is(err, blob.ErrUploadUnknown), errors.Is(err, errDamaged), errors.Is(err, errNoState):
			// Not a live session (a tombstone, or chunks whose state is
			// gone): what is left under it is garbage once it is old
			// enough not to belong to a request in flight.
			keep := ""
			if idValid {
				keep = s.stateKey(id)
			}
			if err := s.removeAll(ctx, s.sessionDir(id), olderThan, keep); err != nil {
				errs = append(errs, err)
			}
		default:
			errs = append(errs, err)
		}
	}
	if err := s.removeAll(ctx, s.prefix+"tmp/", olderThan, ""); err != nil {
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}
