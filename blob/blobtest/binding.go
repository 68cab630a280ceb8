package blobtest

import (
	"context"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// untouched fails the test if anything reads it: a store must refuse a
// session of another repository before it reads the body.
type untouched struct{ t *testing.T }

func (u untouched) Read([]byte) (int, error) {
	u.t.Error("the store read the body of a request it refused")
	return 0, errors.New("must not be read")
}

// testRepositoryBinding: a session belongs to the repository it was started
// in. Under any other name, however close, every operation finds no such
// session and changes nothing, on either node; the session then still
// finishes in its own repository.
func testRepositoryBinding(t *testing.T, open Open, data []byte) {
	ctx := context.Background()
	others := []string{"team-b/app", "team-a/other", "team-a", "team-a/app/sub", "team-a/ap", ""}
	const total = 3000
	want := data[:total]
	for _, tc := range []struct {
		name   string
		filled int // bytes appended before the wrong-repository attempts
	}{
		{"empty session", 0},
		{"session with bytes", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t)
			st, err := a.StartUpload(ctx, repo, digest.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			// An empty session may live only where it started (the
			// filesystem driver's are in memory): see committer.
			nodes := []blob.Store{a}
			if tc.filled > 0 {
				upload(t, []blob.Store{a}, st.ID, data, []int{tc.filled})
				nodes = append(nodes, b)
			}
			soFar := digest.FromBytes(data[:tc.filled])
			for _, s := range nodes {
				for _, wrong := range others {
					unknown := func(op string, err error) {
						t.Helper()
						if !errors.Is(err, blob.ErrUploadUnknown) {
							t.Errorf("%s as %q: %v, want ErrUploadUnknown", op, wrong, err)
						}
					}
					_, err := s.UploadStatus(ctx, wrong, st.ID)
					unknown("UploadStatus", err)
					_, err = s.Append(ctx, wrong, st.ID, int64(tc.filled), untouched{t})
					unknown("Append", err)
					_, err = s.PutUpload(ctx, wrong, st.ID, digest.FromBytes(want), total, untouched{t})
					unknown("PutUpload", err)
					// The digest of what the session holds: a Commit that
					// ignored the repository would succeed.
					_, err = s.Commit(ctx, wrong, st.ID, soFar)
					unknown("Commit", err)
					unknown("CancelUpload", s.CancelUpload(ctx, wrong, st.ID))
				}
			}
			if _, err := a.Stat(ctx, soFar); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("a refused Commit stored the blob: %v", err)
			}
			got, err := nodes[len(nodes)-1].UploadStatus(ctx, repo, st.ID)
			if err != nil || got.Offset != int64(tc.filled) {
				t.Fatalf("own repository after the refusals: %+v, %v; want offset %d", got, err, tc.filled)
			}
			upload(t, nodes, st.ID, data, []int{total - tc.filled})
			if _, err := b.Commit(ctx, repo, st.ID, digest.FromBytes(want)); err != nil {
				t.Fatalf("commit in its own repository: %v", err)
			}
			readBack(t, b, digest.FromBytes(want), want)
		})
	}
}
