package harness

import (
	"context"
	"net/http"
	"strings"
)

// Client is how a test reaches its registries: over HTTPS, through an
// http.Client that trusts the test's CA, or over plain HTTP. It travels in
// the context of each request (WithClient), so that one test body runs
// unchanged against plain and TLS clusters (BERTH_E2E_TLS=1 in
// e2e/cluster) and the helpers keep their signatures for e2e/single. The
// zero value is plain HTTP through http.DefaultClient.
type Client struct {
	// HTTPS makes the helpers address a bare host:port base as https://.
	HTTPS bool
	// HTTP sends the requests; nil is http.DefaultClient.
	HTTP *http.Client
}

type clientKey struct{}

// WithClient returns ctx carrying cl for every helper that takes it
// (HTTPStatus, Image.Push, Image.Verify, Token, StartUpload, ...).
func WithClient(ctx context.Context, cl Client) context.Context {
	return context.WithValue(ctx, clientKey{}, cl)
}

// ClientFrom is the Client ctx carries, or plain HTTP.
func ClientFrom(ctx context.Context) Client {
	cl, _ := ctx.Value(clientKey{}).(Client)
	return cl
}

func (cl Client) http() *http.Client {
	if cl.HTTP == nil {
		return http.DefaultClient
	}
	return cl.HTTP
}

// scheme is "https" or "http".
func (cl Client) scheme() string {
	if cl.HTTPS {
		return "https"
	}
	return "http"
}

// URL is base (host:port, or a URL with its scheme) joined with path,
// with the scheme of the Client in ctx when base has none.
func URL(ctx context.Context, base, path string) string {
	if strings.Contains(base, "://") {
		return base + path
	}
	return ClientFrom(ctx).scheme() + "://" + base + path
}
