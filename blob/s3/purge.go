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

// PurgeUploads removes upload sessions started before olderThan
// (abandoned uploads) and returns how many it removed. It also removes
// what crashed or interrupted requests left behind, once it is older than
// olderThan: tmp/ objects of large Puts, and chunks of sessions whose
// state is gone or damaged. It is for the leader's purge job (rule 9), so
// a node that loses leadership cancels ctx and the next leader resumes.
func (s *Store) PurgeUploads(ctx context.Context, olderThan time.Time) (int, error) {
	n := 0
	var errs []error
	dirs := s.c.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + "uploads/"})
	for o := range dirs {
		if o.Err != nil {
			return n, fmt.Errorf("s3 list uploads: %w", o.Err)
		}
		id := strings.TrimSuffix(strings.TrimPrefix(o.Key, s.prefix+"uploads/"), "/")
		st, _, err := s.load(ctx, id)
		switch {
		case err == nil:
			if !st.Started.Before(olderThan) {
				continue
			}
			if err := s.removeSession(ctx, id); err != nil {
				errs = append(errs, err)
				continue
			}
			s.logger.Info("purged abandoned upload", "id", id, "started", st.Started, "offset", st.Offset)
			n++
		case errors.Is(err, blob.ErrUploadUnknown) || errors.Is(err, errDamaged):
			// Not a live session: what is left under it is garbage once
			// it is old enough not to belong to a request in flight.
			if err := s.removeAll(ctx, s.sessionDir(id), olderThan); err != nil {
				errs = append(errs, err)
			}
		default:
			errs = append(errs, err)
		}
	}
	if err := s.removeAll(ctx, s.prefix+"tmp/", olderThan); err != nil {
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}
