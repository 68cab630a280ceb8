package api

import (
	"slices"
	"testing"
)

func TestRouteKind(t *testing.T) {
	for _, tc := range []struct {
		path, want string
	}{
		{"/v2/", KindBase},
		{"/v2", KindBase},
		{"/v2/_catalog", KindCatalog},
		{"/v2/library/alpine/manifests/latest", KindManifest},
		{"/v2/a/b/c/manifests/sha256:00", KindManifest},
		{"/v2/a/blobs/sha256:ab", KindBlob},
		{"/v2/a/blobs/uploads/", KindBlobUpload},
		{"/v2/a/blobs/uploads", KindBlobUpload},
		{"/v2/a/blobs/uploads/0123-abcd", KindBlobUploadChunk},
		{"/v2/a/tags/list", KindTags},
		{"/v2/a/referrers/sha256:1", KindReferrers},
		// A name that holds a marker routes by the last one, as the handler does.
		{"/v2/a/manifests/b/blobs/sha256:1", KindBlob},
		{"/v2/a/blobs/uploads/b/manifests/x", KindManifest},
		// Invalid names still count under their endpoint (the handler answers 400).
		{"/v2/UPPER/manifests/latest", KindManifest},
		{"/v2/a/manifests/", KindOther},
		{"/v2/a/unknown/x", KindOther},
		{"/v2/_catalog/x", KindOther},
		{"/v3/a/tags/list", KindOther},
		{"/admin/v1/cluster/status", KindOther},
		{"", KindOther},
	} {
		if got := RouteKind(tc.path); got != tc.want {
			t.Errorf("RouteKind(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

// Every kind RouteKind returns is listed in RouteKinds (which metrics
// pre-create series from), whatever the path.
func FuzzRouteKind(f *testing.F) {
	for _, p := range routeSeeds {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if k := RouteKind(p); !slices.Contains(RouteKinds, k) {
			t.Fatalf("RouteKind(%q) = %q, not in RouteKinds", p, k)
		}
	})
}

func BenchmarkRouteKind(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		RouteKind("/v2/team/app/manifests/latest")
	}
}
