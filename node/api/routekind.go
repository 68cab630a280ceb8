package api

// Route kinds: the bounded set of values RouteKind returns, named as CNCF
// Distribution names its routes so that dashboards built for its
// registry_http_* metrics work unchanged.
const (
	KindBase            = "base"
	KindCatalog         = "catalog"
	KindManifest        = "manifest"
	KindBlob            = "blob"
	KindBlobUpload      = "blob_upload"
	KindBlobUploadChunk = "blob_upload_chunk"
	KindTags            = "tags"
	KindReferrers       = "referrers"
	KindOther           = "other"
)

// RouteKinds lists every value RouteKind can return, so a caller can
// prepare one metric series per kind.
var RouteKinds = []string{KindBase, KindCatalog, KindManifest, KindBlob, KindBlobUpload,
	KindBlobUploadChunk, KindTags, KindReferrers, KindOther}

// RouteKind names the OCI endpoint a request path addresses, for metric
// labels: never the repository, reference or session, which clients
// choose, so the label set stays bounded. It routes exactly as the
// handler does (splitRoute), without checking the name: a request with
// an invalid name still counts under its endpoint. It does not allocate.
func RouteKind(path string) string {
	switch path {
	case "/v2/", "/v2":
		return KindBase
	case "/v2/_catalog":
		return KindCatalog
	}
	ep, _, arg := splitRoute(path)
	switch ep {
	case epUpload:
		if arg == "" {
			return KindBlobUpload
		}
		return KindBlobUploadChunk
	case epBlob:
		return KindBlob
	case epManifest:
		return KindManifest
	case epTags:
		return KindTags
	case epReferrers:
		return KindReferrers
	}
	return KindOther
}
