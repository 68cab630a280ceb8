package replication

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
)

// client returns the upstream client for one repository of pol. The
// upstream may answer with a Basic challenge (htpasswd) or a Bearer one
// (a token service, as Docker Hub and Berth with auth): go-containerregistry's
// transport pings it, follows whichever it asks for and refreshes tokens,
// scoped to pulling this repository. Clients are kept, bounded, so the
// token dance runs once per repository, not per pull.
func (p *Proxy) client(ctx context.Context, pol ProxyPolicy, src string) (*originClient, error) {
	key := pol.Key + "\x00" + src
	p.mu.Lock()
	c, ok := p.clients[key]
	lim := p.limits[pol.Name]
	p.mu.Unlock()
	if ok {
		return c, nil
	}
	u, err := url.Parse(pol.Upstream.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("registry %q: url %q is not a registry address: fix the Registry's spec.url", pol.Registry, pol.Upstream.URL)
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", pol.Registry, err)
	}
	var auth authn.Authenticator = authn.Anonymous
	if pol.Upstream.Username != "" || pol.Upstream.Password != "" {
		auth = &authn.Basic{Username: pol.Upstream.Username, Password: pol.Upstream.Password}
	}
	base := http.DefaultTransport
	if pol.Upstream.HTTP != nil && pol.Upstream.HTTP.Transport != nil {
		base = pol.Upstream.HTTP.Transport
	}
	rt, err := transport.NewWithContext(ctx, reg, auth, base, []string{reg.Repo(src).Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", pol.Upstream.URL, err)
	}
	c = &originClient{
		o:     Origin{URL: pol.Upstream.URL, HTTP: &http.Client{Transport: rt, Timeout: fetchTimeout}},
		limit: lim,
		max:   p.cfg.MaxManifest,
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.clients) >= maxClients {
		for k := range p.clients {
			delete(p.clients, k) // the next pull of that repository pings again
			break
		}
	}
	p.clients[key] = c
	return c, nil
}

// head asks where a tag points at the upstream: a HEAD, which registries
// such as Docker Hub do not count against the pull rate limit. An
// upstream that names no digest in its answer is asked with a GET, and the
// digest computed from the bytes.
func (c *originClient) head(ctx context.Context, repo, tag string) (digest.Digest, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, strings.TrimRight(c.o.URL, "/")+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		return "", fmt.Errorf("upstream request: %w", err)
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := c.o.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("upstream %s: %w", c.o.URL, err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return "", fmt.Errorf("HEAD %s:%s: %w", repo, tag, errGone)
	default:
		return "", fmt.Errorf("upstream %s: HEAD %s:%s: %s", c.o.URL, repo, tag, resp.Status)
	}
	d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return c.manifestByTag(ctx, repo, tag)
	}
	return d, nil
}
