// Package node runs one Berth registry node: Raft wiring, gossip
// membership, the proposal and read paths (with leader forwarding and
// read-index reads), and the HTTP servers (OCI API, admin API, internal
// node-to-node API, health).
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/blob/cache"
	"github.com/berth-registry/berth/blob/s3"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/node/access"
	"github.com/berth-registry/berth/node/admin"
	"github.com/berth-registry/berth/node/api"
	cs "github.com/berth-registry/berth/node/consensus"
	"github.com/berth-registry/berth/node/console"
	"github.com/berth-registry/berth/node/limit"
	"github.com/berth-registry/berth/node/metrics"
	"github.com/berth-registry/berth/node/peertls"
	"github.com/berth-registry/berth/node/secrets"
	"github.com/berth-registry/berth/replication"
)

// Node is one running registryd. Create it with New, then call Run.
type Node struct {
	cfg     Config
	version string
	logger  *slog.Logger
	fsm     *fsm.FSM
	raft    *consensus
	blobs   blob.Store
	token   string
	ln      net.Listener
	srv     *http.Server
	// tls is the API listener's HTTPS (http.tls, cluster.tls); its zero
	// value is plain HTTP.
	tls     apiTLS
	metrics *metrics.Metrics
	// metricsLn serves /metrics without a token (http.metricsaddr); nil
	// when unset.
	metricsLn net.Listener

	// Cluster parts; nil for a single node.
	members *membership
	peers   *peerClient

	// engine is the consensus surface (propose, read index, leadership)
	// over raft; see node/consensus.
	engine *cs.Engine
	stop   context.CancelFunc

	// events publishes to NATS; nil when events are off.
	events *nodeEvents
	// webhooks delivers webhooks on the leader (node/webhooks.go).
	webhooks *nodeWebhooks
	// gc is the leader's garbage collection loop (gc.go).
	gc nodeGC
	// repl runs the mirror policies on the leader (replication.go).
	repl nodeReplication
	// access is the OCI API's token endpoint and gate; nil when
	// authentication is off (auth.go).
	access *access.Server
	// sealSecret seals and opens the token signing keys (auth.go).
	sealSecret []byte
	// oidc refreshes an OIDC provider's keys; nil without auth.oidc.
	oidc *oidcProvider
	// pullTimes batches manifest pull times for retention.
	pullTimes *pullTimes
	// joinRefused is the last refusal logged per node that could not
	// prove its cluster certificate (peerProvesMembership); only the
	// leader's reconcile, one term at a time, touches it.
	joinRefused map[string]string
}

// New opens the data dir, the blob store and Raft, binds the HTTP listener
// and (in a cluster) starts gossip, so that when it returns the node's
// ports are taken. It does not serve until Run. Everything the node and its
// libraries (Raft, memberlist) log goes through logger; the io.Writer is
// no longer written to and stays only so callers need not change.
func New(ctx context.Context, cfg Config, version string, logger *slog.Logger, _ io.Writer) (_ *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if err := cfg.resolveFiles(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	apiTLS, err := loadAPITLS(cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	// Bind first: a taken port fails at once, before anything is created
	// in the data dir.
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another registry running? pass --addr)", cfg.HTTP.Addr, err)
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	mln, err := listenMetrics(cfg.HTTP.MetricsAddr)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && mln != nil {
			mln.Close()
		}
	}()
	m := metrics.New(version)
	if err := os.MkdirAll(cfg.Storage.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// raft.db's lock first: the blob store clears <datadir>/tmp, which a
	// registryd already running on this dir is writing to.
	store, err := openLog(cfg)
	if err != nil {
		return nil, err
	}
	ownsStore := true // until openRaft takes it over
	defer func() {
		if err != nil && ownsStore {
			store.Close()
		}
	}()
	n := &Node{cfg: cfg, version: version, logger: logger, ln: limit.Listener(ln, cfg.Limits.MaxConnections), stop: func() {},
		metrics: m, metricsLn: mln, tls: apiTLS}

	tokenFile := cfg.Admin.TokenFile
	if tokenFile == "" {
		tokenFile = filepath.Join(cfg.Storage.DataDir, TokenFile)
	}
	if n.token = cfg.Admin.Token; n.token == "" {
		if n.token, err = loadOrCreateToken(tokenFile); err != nil {
			return nil, err
		}
	}
	if n.blobs, err = openBlobs(ctx, cfg, logger, m); err != nil {
		return nil, err
	}
	if c, ok := n.blobs.(*cache.Store); ok {
		m.WatchCache(c.Stats)
	}
	n.fsm = fsm.New(logger)
	ownsStore = false
	if n.raft, err = openRaft(cfg, store, n.fsm, logger); err != nil {
		return nil, err
	}
	m.WatchRaft(n.raft.raft, n.fsm.Halted)
	m.WatchReadOnly(func() bool { return n.readOnly().On })
	m.WatchNamespaces(n.fsm.View)
	m.WatchStorage(n.fsm.View)
	m.WatchGC(n.fsm.View)
	n.repl.secrets = secrets.New(cfg.SecretsDir())
	m.WatchReplication(func() []replication.Status { return n.replicationAnswer(context.Background(), false).Policies })
	if cfg.Clustered() {
		n.peers = newPeerClient(cfg.Cluster.secret, apiTLS)
		self := Meta{ID: cfg.Node.ID, RaftAddr: n.raftAdvertise(), APIAddr: n.apiAdvertise(), Region: cfg.Node.Region, Version: version, Codec: events.Generation()}
		if host, _, _ := net.SplitHostPort(self.APIAddr); net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
			n.close()
			return nil, fmt.Errorf("http address %q is not reachable by peers: set http.advertise (--advertise) to this node's address", self.APIAddr)
		}
		apiTLS.warnUntrustedPeers(self.APIAddr, logger)
		if n.members, err = newMembership(cfg, self, logger); err != nil {
			n.close()
			return nil, err
		}
	} else {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := n.raft.waitLeader(wctx); err != nil {
			n.close()
			return nil, err
		}
	}
	if n.engine, err = n.openEngine(); err != nil {
		n.close()
		return nil, err
	}
	if n.events, err = openEvents(cfg, logger); err != nil {
		n.close()
		return nil, err
	}
	n.openPulls()
	n.pullTimes = newPullTimes()
	n.webhooks = newNodeWebhooks()
	if n.access, err = n.openAccess(); err != nil {
		n.close()
		return nil, err
	}
	n.metrics.WatchEvents(n.eventsStats, n.webhooks.counters)
	n.srv = &http.Server{
		Handler:           n.handler(),
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          serverLog(logger),
		TLSConfig:         apiTLS.server,
	}
	if apiTLS.cluster != nil {
		// A place per connection for the internal API's verdict on the
		// client certificate (node/peertls).
		n.srv.ConnContext = peertls.ConnContext
	}
	return n, nil
}

// openBlobs opens the configured driver, timed by m, with the cache (which
// m does not time: it counts its own hits) in front of S3.
func openBlobs(ctx context.Context, cfg Config, logger *slog.Logger, m *metrics.Metrics) (blob.Store, error) {
	switch cfg.Storage.Driver {
	case "s3":
		c := cfg.Storage.S3
		s3cfg := s3.Config{
			Endpoint: c.Endpoint, Bucket: c.Bucket, Region: c.Region,
			AccessKey: c.AccessKey, SecretKey: c.SecretKey,
			Secure: c.Secure, PathStyle: c.PathStyle, Prefix: c.Prefix, Timeout: c.Timeout,
		}
		// Object storage often starts alongside the registry (compose,
		// Kubernetes): wait for it for a while rather than exit at once.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			st, err := s3.New(ctx, s3cfg, logger)
			if err == nil && cfg.Storage.CacheSize > 0 {
				return cache.New(m.Store(st, "s3"), filepath.Join(cfg.Storage.DataDir, "blobcache"), cfg.Storage.CacheSize, logger)
			}
			if err == nil {
				return m.Store(st, "s3"), nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, fmt.Errorf("open s3 blob store: %w", err)
			}
			logger.Warn("object storage not reachable yet; retrying", "endpoint", c.Endpoint, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	default:
		st, err := blob.NewFS(cfg.Storage.DataDir, logger, blob.FSLimits{MaxEmptyUploads: cfg.Limits.MaxEmptyUploads, EmptyUploadTTL: cfg.Limits.EmptyUploadTTL})
		if err != nil {
			return nil, fmt.Errorf("open blob store: %w", err)
		}
		return m.Store(st, "filesystem"), nil
	}
}

// Addr is the address the HTTP server listens on (useful with port 0).
func (n *Node) Addr() string { return n.ln.Addr().String() }

func (n *Node) apiAdvertise() string {
	if n.cfg.HTTP.Advertise != "" {
		return n.cfg.HTTP.Advertise
	}
	return n.Addr()
}

func (n *Node) raftAdvertise() string {
	if n.cfg.Raft.Advertise != "" {
		return n.cfg.Raft.Advertise
	}
	return n.cfg.Raft.Addr
}

func (n *Node) handler() http.Handler {
	mux := http.NewServeMux()
	lim := n.cfg.Limits // health, admin and peer endpoints are not limited
	// Metrics outermost, so requests refused with 429 are counted too.
	limited := func(h http.Handler) http.Handler {
		return limit.NewRequests(limit.Config{MaxConcurrent: lim.MaxConcurrentRequests, MaxPerClient: lim.MaxRequestsPerClient, RetryAfter: time.Second}, h)
	}
	// The access log outermost of all, so refused requests (429, 401) get
	// their line.
	mux.Handle("/v2/", api.AccessLog(n.logger, n.metrics.HTTP(limited(n.guardAPI(
		api.New(api.Config{MaxManifestSize: lim.MaxManifestSize, ReferrersPageSize: lim.ReferrersPageSize, BodyReadTimeout: lim.BodyReadTimeout, Pulls: n.pullHook(), ReadOnly: n.readOnly, Mirrored: n.mirroredRepo, PullThrough: n.newPullThrough(lim.MaxManifestSize)}, n, n, n.blobs, n.logger))),
		api.RouteKinds, api.RouteKind)))
	if n.access != nil {
		mux.Handle("/token", limited(n.access.TokenHandler()))
	}
	mux.Handle("/admin/v1/cluster/", n.clusterAdmin())
	mux.Handle("/admin/v1/auth/", n.authAdmin())
	mux.Handle("/admin/v1/retention/", n.retentionAdmin())
	mux.Handle("/admin/v1/webhooks/", n.webhooksAdmin())
	mux.Handle("/admin/v1/events", n.webhooksAdmin())
	mux.Handle("/admin/v1/replication/", n.replicationAdmin())
	// Webhook and Registry GETs show whether this node can read the
	// secrets they reference (status.conditions).
	mux.Handle("/admin/", admin.New(n.token, n, n, n.logger, admin.WithConditions(secrets.New(n.cfg.SecretsDir()).Conditions), admin.WithGC(gcAdmin{n})))
	mux.Handle(console.Prefix, limited(n.webConsole()))
	mux.Handle(internalPrefix, n.internalHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", n.readyz)
	mux.Handle("GET /metrics", n.requireToken(n.metrics.Handler()))
	if n.cfg.HTTP.Pprof {
		mux.Handle("/debug/pprof/", n.requireToken(http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/profile", n.requireToken(http.HandlerFunc(pprof.Profile)))
	}
	return mux
}

// readyz is what a load balancer asks before sending traffic: this node is
// a voter, a leader is known, and the FSM is within a few entries of the
// commit index this node has heard of.
func (n *Node) readyz(w http.ResponseWriter, _ *http.Request) {
	st := n.localStatus()
	switch {
	case st.Halted != "":
		http.Error(w, st.Halted, http.StatusServiceUnavailable)
	case st.Leader == "":
		http.Error(w, "no raft leader", http.StatusServiceUnavailable)
	case !st.Voter:
		http.Error(w, "not (yet) a member of the raft configuration", http.StatusServiceUnavailable)
	case st.Leader == st.ID && n.engine.ReadyTerm() != st.Term:
		// A leader serves reads only after its barrier: before it, the FSM
		// may not yet hold what was acknowledged before a restart.
		http.Error(w, "leader still committing its first entry of the term", http.StatusServiceUnavailable)
	case st.CommitIndex > st.AppliedIndex+readyLag:
		http.Error(w, fmt.Sprintf("catching up: applied %d of %d", st.AppliedIndex, st.CommitIndex), http.StatusServiceUnavailable)
	default:
		w.Write([]byte("ready\n"))
	}
}

// readyLag is how far behind its commit index a node may be and still take
// traffic; reads wait for the read index anyway.
const readyLag = 64

// Run serves until ctx is cancelled (or Leave is called), then shuts down
// in order: hand over leadership, stop taking requests and drain in-flight
// ones, take a snapshot, close Raft.
func (n *Node) Run(ctx context.Context) error {
	ctx, n.stop = context.WithCancel(ctx)
	defer n.stop()
	n.logger.Info("registry listening", "addr", n.Addr(), "scheme", n.tls.scheme(), "data", n.cfg.Storage.DataDir, "node", n.cfg.Node.ID, "driver", n.cfg.Storage.Driver)
	go n.leaderLoop(ctx)
	go n.runPullTimes(ctx)
	if n.oidc != nil {
		go n.oidc.refresh(ctx, n.logger.Warn)
	}
	n.runPulls(ctx)
	if n.members != nil {
		go n.joinLoop(ctx)
		if n.raft.fresh {
			go n.bootstrapLoop(ctx)
		}
	}
	errc := make(chan error, 1)
	go func() {
		if n.srv.TLSConfig != nil {
			// The certificates come from TLSConfig.GetCertificate.
			errc <- n.srv.ServeTLS(n.ln, "", "")
			return
		}
		errc <- n.srv.Serve(n.ln)
	}()
	stopMetrics := n.serveMetrics()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	n.logger.Info("shutting down")
	if n.members != nil && n.raft.raft.State() == raft.Leader {
		// Hand over now rather than leave the cluster to notice we're gone.
		if err := n.raft.raft.LeadershipTransfer().Error(); err != nil {
			n.logger.Warn("leadership transfer before shutdown failed", "err", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), n.cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := n.srv.Shutdown(sctx); err != nil {
		n.logger.Warn("drain incomplete", "err", err)
	}
	stopMetrics(sctx)
	err := n.close()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return errors.Join(fmt.Errorf("http server: %w", serveErr), err)
	}
	if err == nil {
		n.logger.Info("shutdown complete")
	}
	return err
}

func (n *Node) close() error {
	if n.metricsLn != nil {
		n.metricsLn.Close()
	}
	n.metrics.Close()
	if n.members != nil {
		n.members.list.Shutdown()
	}
	if n.ln != nil {
		n.ln.Close()
	}
	err := n.raft.close(n.logger)
	n.events.close()
	return err
}

// joinLoop contacts the configured peers until one answers, so nodes can
// start in any order.
func (n *Node) joinLoop(ctx context.Context) {
	if len(n.cfg.Gossip.Join) == 0 {
		return
	}
	for {
		k, err := n.members.join(n.cfg.Gossip.Join)
		if k > 0 {
			n.logger.Info("joined gossip", "contacted", k)
			return
		}
		n.logger.Warn("no peer answered; retrying", "join", n.cfg.Gossip.Join, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// requireToken guards operator endpoints with the admin token, the same
// way as the admin API.
func (n *Node) requireToken(h http.Handler) http.Handler {
	return admin.Guard(n.token).Wrap(h)
}
