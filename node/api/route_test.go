package api

import (
	"regexp"
	"testing"
)

// The regular expressions the router used to match with: splitRoute must
// route every path exactly as they did, in the same order of precedence.
var routeRegexps = []struct {
	ep endpoint
	re *regexp.Regexp
}{
	{epUpload, regexp.MustCompile(`^/v2/(.+)/blobs/uploads/?([^/]*)$`)},
	{epBlob, regexp.MustCompile(`^/v2/(.+)/blobs/([^/]+)$`)},
	{epManifest, regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)},
	{epTags, regexp.MustCompile(`^/v2/(.+)/tags/list$`)},
	{epReferrers, regexp.MustCompile(`^/v2/(.+)/referrers/([^/]+)$`)},
}

func referenceRoute(p string) (endpoint, string, string) {
	for _, r := range routeRegexps {
		if m := r.re.FindStringSubmatch(p); m != nil {
			arg := ""
			if len(m) > 2 {
				arg = m[2]
			}
			return r.ep, m[1], arg
		}
	}
	return epNone, "", ""
}

var routeSeeds = []string{
	"/v2/a/manifests/latest", "/v2/a/b/c/manifests/sha256:00", "/v2/a/blobs/uploads/", "/v2/a/blobs/uploads",
	"/v2/a/blobs/uploads/0123", "/v2/a/blobs/uploadsX", "/v2/a/blobs/uploads/x/y", "/v2/a/blobs/sha256:ab",
	"/v2/a/blobs/", "/v2/a/tags/list", "/v2//tags/list", "/v2/tags/list", "/v2/a/referrers/sha256:1",
	"/v2/a/manifests/", "/v2/a/manifests/x/", "/v2/manifests/x", "/v2/a/blobs/uploads/b/blobs/uploads/",
	"/v2/a/manifests/b/manifests/c", "/v2/a/blobs/b/manifests/c", "/v2/a/tags/list/manifests/x", "/v3/a/tags/list",
	"/v2/a/blobs/uploads//", "/v2/a//blobs/x", "/v2/a/blobs/uploads/blobs/x", "",
}

func TestSplitRoute(t *testing.T) {
	for _, p := range routeSeeds {
		ep, name, arg := splitRoute(p)
		wep, wname, warg := referenceRoute(p)
		if ep != wep || name != wname || arg != warg {
			t.Errorf("splitRoute(%q) = %v %q %q; the regular expressions say %v %q %q", p, ep, name, arg, wep, wname, warg)
		}
	}
}

func FuzzSplitRoute(f *testing.F) {
	for _, p := range routeSeeds {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		ep, name, arg := splitRoute(p)
		wep, wname, warg := referenceRoute(p)
		if ep != wep || name != wname || arg != warg {
			t.Fatalf("splitRoute(%q) = %v %q %q; the regular expressions say %v %q %q", p, ep, name, arg, wep, wname, warg)
		}
	})
}
