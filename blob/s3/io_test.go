package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/blob/s3"
)

const mib = 1 << 20

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func blobKey(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()[:2] + "/" + d.Encoded()
}

func TestTraffic(t *testing.T) {
	srv := startMinIO(t)
	ctx := context.Background()

	// A Range request served with http.ServeContent from Open moves about
	// what it asks for, not the blob.
	t.Run("range requests do not download the blob", func(t *testing.T) {
		bucket := newBucket()
		data := random(64 * mib)
		d := digest.FromBytes(data)
		if _, err := srv.store(t, srv.addr, bucket, "").Put(ctx, d, int64(len(data)), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		p := startProxy(t, srv.addr)
		node := srv.store(t, p.addr, bucket, "")
		web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f, _, err := node.Open(r.Context(), d)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer f.Close()
			w.Header().Set("Content-Type", "application/octet-stream")
			http.ServeContent(w, r, "", time.Time{}, f)
		}))
		defer web.Close()
		for _, tc := range []struct {
			rng  string
			want [][]byte // the parts
		}{
			{"bytes=1048576-1048675", [][]byte{data[mib : mib+100]}},
			{"bytes=-10", [][]byte{data[len(data)-10:]}},
			{"bytes=0-9,33554432-33554441", [][]byte{data[:10], data[32*mib : 32*mib+10]}},
		} {
			_, before := p.settle()
			req, _ := http.NewRequest(http.MethodGet, web.URL, nil)
			req.Header.Set("Range", tc.rng)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusPartialContent {
				t.Fatalf("%s: %s: %s", tc.rng, resp.Status, body)
			}
			for _, part := range tc.want {
				if !bytes.Contains(body, part) {
					t.Fatalf("%s: response lacks the requested bytes", tc.rng)
				}
			}
			if len(tc.want) == 1 && !bytes.Equal(body, tc.want[0]) {
				t.Fatalf("%s: got %d bytes, not the range", tc.rng, len(body))
			}
			_, after := p.settle()
			moved := after - before
			if moved > 16*mib {
				t.Fatalf("%s of a 64 MiB blob moved %d bytes from S3", tc.rng, moved)
			}
			t.Logf("%s of a 64 MiB blob moved %d bytes from S3", tc.rng, moved)
		}
	})

	// Chunks S3 can compose are concatenated server-side at Commit; the
	// committing node moves only requests, not the blob.
	t.Run("commit of large chunks composes server-side", func(t *testing.T) {
		bucket := newBucket()
		a := srv.store(t, srv.addr, bucket, "")
		p := startProxy(t, srv.addr)
		node := srv.store(t, p.addr, bucket, "")
		data := random(10*mib + 1)
		st, _ := a.StartUpload(ctx, repo, digest.SHA256)
		for _, c := range [][2]int{{0, 5 * mib}, {5 * mib, 10 * mib}, {10 * mib, len(data)}} {
			if _, err := a.Append(ctx, repo, st.ID, int64(c[0]), bytes.NewReader(data[c[0]:c[1]])); err != nil {
				t.Fatal(err)
			}
		}
		d := digest.FromBytes(data)
		if _, err := node.Commit(ctx, repo, st.ID, d); err != nil {
			t.Fatal(err)
		}
		if up, down := p.settle(); up+down > mib {
			t.Fatalf("commit moved %d bytes up and %d down through the node", up, down)
		}
		f, _, err := a.Open(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if got, _ := io.ReadAll(f); !bytes.Equal(got, data) {
			t.Fatal("composed blob differs")
		}
	})

	// Whatever succeeds or fails, the bucket ends up holding the blobs at
	// their content addresses and nothing else: no tmp/ objects, no
	// upload objects, no unfinished multipart uploads.
	t.Run("no leftovers", func(t *testing.T) {
		bucket := newBucket()
		s := srv.store(t, srv.addr, bucket, "")
		var want []string
		put := func(data []byte, size int64) {
			d := digest.FromBytes(data)
			if _, err := s.Put(ctx, d, size, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			want = append(want, blobKey(d))
		}
		session := func(data []byte, sizes []int, d digest.Digest) (string, error) {
			st, err := s.StartUpload(ctx, repo, digest.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			off := 0
			for _, n := range sizes {
				if _, err := s.Append(ctx, repo, st.ID, int64(off), bytes.NewReader(data[off:off+n])); err != nil {
					t.Fatal(err)
				}
				off += n
			}
			_, err = s.Commit(ctx, repo, st.ID, d)
			return st.ID, err
		}
		big := random(17 * mib)
		if _, err := s.Put(ctx, digest.FromBytes(big[1:]), -1, bytes.NewReader(big)); !errors.Is(err, blob.ErrDigestMismatch) {
			t.Fatalf("wrong big put: %v", err)
		}
		if _, err := s.Put(ctx, digest.FromBytes(big), int64(len(big))-1, bytes.NewReader(big)); !errors.Is(err, blob.ErrSizeMismatch) {
			t.Fatalf("oversized big put: %v", err)
		}
		put(big, -1)
		put(big[:1000], 1000)
		for _, sizes := range [][]int{{1000, 1000}, {1000, 17*mib - 2000}, {5 * mib, 10}} {
			data := big[1 : 1+sum(sizes)]
			if _, err := session(data, sizes, digest.FromBytes(data)); err != nil {
				t.Fatal(err)
			}
			want = append(want, blobKey(digest.FromBytes(data)))
		}
		if _, err := session(big[2:3000], []int{1000, 1998}, digest.FromString("other")); !errors.Is(err, blob.ErrDigestMismatch) {
			t.Fatalf("wrong commit: %v", err)
		}
		st, _ := s.StartUpload(ctx, repo, digest.SHA256)
		dropped := io.MultiReader(bytes.NewReader(big), iotestErr{})
		if _, err := s.Append(ctx, repo, st.ID, 0, dropped); err == nil {
			t.Fatal("append of a failing body succeeded")
		}
		if err := s.CancelUpload(ctx, repo, st.ID); err != nil {
			t.Fatal(err)
		}

		// Ended sessions leave only tombstones (their IDs stay signed),
		// which a purge takes away; then only the blobs and the upload-ID
		// key remain.
		want = append(want, "meta/upload-id-key")
		slices.Sort(want)
		ended, rest := srv.tombstones(t, bucket, srv.keys(t, bucket))
		if len(ended) != 5 || !slices.Equal(rest, want) {
			t.Fatalf("bucket holds %d tombstones (want 5) and\n  %s\nwant\n  %s", len(ended), strings.Join(rest, "\n  "), strings.Join(want, "\n  "))
		}
		// Tombstones stay while their IDs' signatures are valid, and go
		// with the first purge after that.
		time.Sleep(10 * time.Millisecond)
		if _, err := s.PurgeUploads(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		if ended, _ := srv.tombstones(t, bucket, srv.keys(t, bucket)); len(ended) != 5 {
			t.Fatalf("a purge while the IDs are valid left %d of 5 tombstones", len(ended))
		}
		s3.SetClock(s, func() time.Time { return time.Now().Add(25 * time.Hour) })
		if _, err := s.PurgeUploads(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		if got := srv.keys(t, bucket); !slices.Equal(got, want) {
			t.Fatalf("after purge the bucket holds\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		for u := range srv.raw.ListIncompleteUploads(ctx, bucket, "", true) {
			t.Errorf("unfinished multipart upload left: %s (%v)", u.Key, u.Err)
		}
	})
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func sum(sizes []int) int {
	n := 0
	for _, s := range sizes {
		n += s
	}
	return n
}
