package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is a node's whole configuration. The YAML file, the environment and
// the command-line flags all set the same fields, in that order of
// precedence from lowest to highest: file < BERTH_<SECTION>_<KEY> < flags.
//
// Every key's environment variable is derived from its YAML path, upper-cased
// with dots and dashes turned into underscores: storage.datadir is
// BERTH_STORAGE_DATADIR, http.addr is BERTH_HTTP_ADDR.
type Config struct {
	Node    NodeConfig    `yaml:"node"`
	HTTP    HTTPConfig    `yaml:"http"`
	Storage StorageConfig `yaml:"storage"`
	Raft    RaftConfig    `yaml:"raft"`
	Gossip  GossipConfig  `yaml:"gossip"`
	Cluster ClusterConfig `yaml:"cluster"`
	Admin   AdminConfig   `yaml:"admin"`
	Limits  LimitsConfig  `yaml:"limits"`
	Log     LogConfig     `yaml:"log"`
	Secrets SecretsConfig `yaml:"secrets"`
	Events  EventsConfig  `yaml:"events"`
	GC      GCConfig      `yaml:"gc"`
	Auth    AuthConfig    `yaml:"auth"`
}

// NodeConfig identifies this node.
type NodeConfig struct {
	// ID is the node's Raft server ID, unique in the cluster for all time.
	ID string `yaml:"id"`
	// Region is gossiped for regional mirrors and shown by clusterctl.
	Region string `yaml:"region"`
}

// HTTPConfig is the OCI and admin API listener.
type HTTPConfig struct {
	Addr string `yaml:"addr"`
	// Advertise is the API address other nodes use to reach this one
	// (forwarded writes, read-index requests). Default: Addr.
	Advertise string `yaml:"advertise"`
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight requests.
	ShutdownTimeout time.Duration `yaml:"shutdowntimeout"`
	// Pprof serves Go's profiler under /debug/pprof/ (admin token
	// required). Off by default.
	Pprof bool `yaml:"pprof"`
	// MetricsAddr, when set, serves /metrics (Prometheus) on a listener
	// of its own WITHOUT authentication, for a scraper on loopback or a
	// private network. /metrics on Addr is always there, behind the admin
	// token.
	MetricsAddr string `yaml:"metricsaddr"`
	// TLS, when set, makes Addr serve HTTPS (docs: README, "TLS").
	TLS HTTPTLSConfig `yaml:"tls"`
}

// HTTPTLSConfig is the certificate and key (PEM files) that Addr serves
// HTTPS with. Both or none. The files are looked at again at most once a
// second and a changed pair is served from then on, so a certificate is
// rotated by replacing the files, without a restart (node/tlsreload).
type HTTPTLSConfig struct {
	Certificate string `yaml:"certificate"`
	Key         string `yaml:"key"`
}

// Enabled reports whether Addr serves HTTPS with this pair.
func (t HTTPTLSConfig) Enabled() bool { return t.Certificate != "" || t.Key != "" }

// StorageConfig says where state and blobs live.
type StorageConfig struct {
	// DataDir holds the Raft log, snapshots, the admin token and, with the
	// filesystem driver, the blobs.
	DataDir string `yaml:"datadir"`
	// Driver is "filesystem" (the single-node default) or "s3".
	Driver string   `yaml:"driver"`
	S3     S3Config `yaml:"s3"`
	// CacheSize bounds, in bytes, the node-local copies of hot blobs kept
	// under <datadir>/blobcache in front of S3, so repeated pulls are
	// served from local disk (blob/cache). 0 turns it off. Unused with the
	// filesystem driver, whose blobs are local already.
	CacheSize int64 `yaml:"cachesize"`
	// ReservedSpace is how many bytes must stay free in the data dir for
	// the Raft log: below it writes are refused with 507 (reads go on), so
	// the log never runs out of room mid-entry (node/diskguard.go). 0
	// refuses only after a log write failed for lack of space.
	ReservedSpace int64 `yaml:"reservedspace"`
}

// S3Config points the blob store at MinIO or any S3-compatible service.
type S3Config struct {
	Endpoint  string `yaml:"endpoint"`
	Bucket    string `yaml:"bucket"`
	Region    string `yaml:"region"`
	AccessKey string `yaml:"accesskey"`
	SecretKey string `yaml:"secretkey"`
	// AccessKeyFile and SecretKeyFile read the credentials from files
	// (Kubernetes secrets, systemd credentials) instead of the config.
	AccessKeyFile string `yaml:"accesskeyfile"`
	SecretKeyFile string `yaml:"secretkeyfile"`
	Secure        bool   `yaml:"secure"`
	PathStyle     bool   `yaml:"pathstyle"`
	// Prefix is prepended to every object key, to share a bucket.
	Prefix string `yaml:"prefix"`
	// Timeout is how long a request to S3 may make no progress (no byte
	// sent or received) before it fails with 503, so a wedged object
	// store cannot hang clients. Server-side copies may wait 20 times as
	// long for S3's answer.
	Timeout time.Duration `yaml:"timeout"`
}

// RaftConfig tunes consensus.
type RaftConfig struct {
	// Addr is the Raft transport address. Empty runs a single node with an
	// in-process transport and no listening socket.
	Addr string `yaml:"addr"`
	// Advertise is the Raft address peers dial. Default: Addr.
	Advertise string `yaml:"advertise"`
	// BootstrapExpect is how many voters must be known through gossip
	// before a brand-new cluster bootstraps. 0 or 1 bootstraps alone.
	BootstrapExpect int `yaml:"bootstrapexpect"`
	// SnapshotThreshold is how many log entries trigger a snapshot.
	SnapshotThreshold uint64 `yaml:"snapshotthreshold"`
	// SnapshotInterval is how often Raft checks whether to snapshot.
	SnapshotInterval time.Duration `yaml:"snapshotinterval"`
	// ApplyTimeout bounds how long a write waits for its event to commit.
	ApplyTimeout time.Duration `yaml:"applytimeout"`
}

// GossipConfig is memberlist: discovery, failure detection, node metadata.
type GossipConfig struct {
	// Addr is the gossip bind address (TCP and UDP). Empty means single node.
	Addr string `yaml:"addr"`
	// Advertise is the gossip address peers use. Default: Addr.
	Advertise string `yaml:"advertise"`
	// Join lists gossip addresses of existing nodes to contact on start.
	Join []string `yaml:"join"`
}

// ClusterConfig holds what all nodes of one cluster share.
type ClusterConfig struct {
	// Secret authenticates node-to-node calls (forwarded writes, read
	// index) and encrypts gossip. Every node needs the same value.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secretfile"`
	// Consistency of reads: "strong" (default; a read-index barrier, rule 6)
	// or "stale" (serve from local state; for mirrors).
	Consistency string `yaml:"consistency"`
	// TLS, when set, makes Raft peers authenticate each other with mutual
	// TLS instead of the secret handshake (node/raftnet), and makes the
	// internal API mutual TLS too: the API listener then serves HTTPS
	// (with the cluster certificate if http.tls is not set) and the
	// internal API refuses callers without a certificate from the cluster
	// CA (node/peertls).
	TLS ClusterTLSConfig `yaml:"tls"`

	secret string // resolved from Secret or SecretFile
}

// ClusterTLSConfig is the cluster CA and this node's certificate and key
// (PEM files) for mutual TLS between Raft peers. All three or none.
type ClusterTLSConfig struct {
	CAFile   string `yaml:"cafile"`
	CertFile string `yaml:"certfile"`
	KeyFile  string `yaml:"keyfile"`
}

// Enabled reports whether Raft uses mutual TLS.
func (t ClusterTLSConfig) Enabled() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != ""
}

// AdminConfig secures the admin API that clusterctl uses.
type AdminConfig struct {
	// Token is the admin bearer token itself. A cluster gives every node
	// the same one (here or in TokenFile) so clusterctl works through the
	// load balancer.
	Token string `yaml:"token"`
	// TokenFile holds the admin bearer token. Empty means
	// <datadir>/admin.token, generated on first start. A cluster points
	// every node at the same token.
	TokenFile string `yaml:"tokenfile"`
}

// Clustered reports whether this node is configured to run with peers.
func (c Config) Clustered() bool { return c.Raft.Addr != "" }

// LimitsConfig guards against abusive or mistaken input (rule 12).
//
// The connection and request bounds keep a flood of clients, or of slow
// ones, to a fixed cost: an open connection holds a goroutine, buffers and
// a file descriptor (about 20 KiB before its headers arrive, so 4096 are
// under 100 MiB), and a slow-header connection is reaped after
// ReadHeaderTimeout (10 s: any real client sends its headers within
// milliseconds, and a slowloris then needs 400 new connections a second to
// keep 4096 open). Requests over MaxConcurrentRequests or
// MaxRequestsPerClient get 429 TOOMANYREQUESTS with Retry-After at once.
type LimitsConfig struct {
	MaxManifestSize int64 `yaml:"maxmanifestsize"`
	// MaxConnections caps open HTTP connections; more wait in the backlog.
	MaxConnections int `yaml:"maxconnections"`
	// MaxConcurrentRequests caps OCI API (/v2/) requests in flight.
	MaxConcurrentRequests int `yaml:"maxconcurrentrequests"`
	// MaxRequestsPerClient caps /v2/ requests in flight from one client
	// address; 0 turns it off (behind a proxy, where all share one).
	MaxRequestsPerClient int `yaml:"maxrequestsperclient"`
	// ReadHeaderTimeout closes a connection whose request headers have
	// not all arrived in time.
	ReadHeaderTimeout time.Duration `yaml:"readheadertimeout"`
	// ReferrersPageSize caps the descriptors of one referrers response.
	ReferrersPageSize int `yaml:"referrerspagesize"`
	// BodyReadTimeout ends a request whose body stops arriving: no byte
	// for this long and the request fails, its connection closed, so a
	// stalled client holds nothing for longer (node/api/body.go).
	BodyReadTimeout time.Duration `yaml:"bodyreadtimeout"`
	// MaxEmptyUploads bounds the upload sessions without data that the
	// filesystem driver keeps in memory; a POST past it gets 429.
	MaxEmptyUploads int `yaml:"maxemptyuploads"`
	// EmptyUploadTTL is how long such a session stays usable.
	EmptyUploadTTL time.Duration `yaml:"emptyuploadttl"`
}

// LogConfig controls log/slog output.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// DefaultConfig is the single-node default: `registryd serve` with no flags.
func DefaultConfig() Config {
	return Config{
		Node: NodeConfig{ID: "node-1"},
		HTTP: HTTPConfig{Addr: "127.0.0.1:5000", ShutdownTimeout: 30 * time.Second},
		Storage: StorageConfig{
			DataDir: "./data", Driver: "filesystem", CacheSize: 4 << 30, ReservedSpace: 32 << 20,
			S3: S3Config{Timeout: 30 * time.Second},
		},
		Raft: RaftConfig{
			SnapshotThreshold: 8192,
			SnapshotInterval:  2 * time.Minute,
			ApplyTimeout:      30 * time.Second,
		},
		Cluster: ClusterConfig{Consistency: "strong"},
		Limits: LimitsConfig{
			MaxManifestSize: 4 << 20, MaxConnections: 4096, MaxConcurrentRequests: 1024,
			MaxRequestsPerClient: 256, ReadHeaderTimeout: 10 * time.Second, ReferrersPageSize: 1000,
			BodyReadTimeout: 30 * time.Second,
			MaxEmptyUploads: 10000,
			EmptyUploadTTL:  15 * time.Minute,
		},
		Log:    LogConfig{Level: "info", Format: "text"},
		Events: EventsConfig{Stream: "BERTH_EVENTS", DuplicateWindow: 10 * time.Minute, Replicas: 1},
		GC:     defaultGCConfig(),
		Auth:   defaultAuthConfig(),
	}
}

// LoadConfig reads path (if not empty) over the defaults, then applies
// environment overrides from env (use os.Environ()).
func LoadConfig(path string, env []string) (Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		// An empty file decodes as io.EOF: it just means "all defaults".
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, env); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Validate reports every problem with cfg at once.
func (c Config) Validate() error {
	var errs []error
	if c.Node.ID == "" {
		errs = append(errs, errors.New("node.id: must not be empty"))
	}
	if c.HTTP.Addr == "" {
		errs = append(errs, errors.New("http.addr: must not be empty"))
	}
	if c.Storage.DataDir == "" {
		errs = append(errs, errors.New("storage.datadir: must not be empty"))
	}
	if c.Storage.CacheSize < 0 {
		errs = append(errs, errors.New("storage.cachesize: must be 0 (off) or a positive number of bytes"))
	}
	if c.Storage.ReservedSpace < 0 {
		errs = append(errs, errors.New("storage.reservedspace: must be 0 or a positive number of bytes"))
	}
	switch c.Storage.Driver {
	case "filesystem":
		if c.Clustered() {
			errs = append(errs, errors.New("storage.driver: a cluster needs shared blob storage: set storage.driver: s3"))
		}
	case "s3":
		if c.Storage.S3.Endpoint == "" {
			errs = append(errs, errors.New("storage.s3.endpoint: required with storage.driver s3"))
		}
		if c.Storage.S3.Bucket == "" {
			errs = append(errs, errors.New("storage.s3.bucket: required with storage.driver s3"))
		}
		if c.Storage.S3.Timeout <= 0 {
			errs = append(errs, errors.New("storage.s3.timeout: must be a positive duration such as 30s"))
		}
	default:
		errs = append(errs, fmt.Errorf("storage.driver: %q is not supported (use filesystem or s3)", c.Storage.Driver))
	}
	if c.Clustered() {
		if c.Gossip.Addr == "" {
			errs = append(errs, errors.New("gossip.addr: required when raft.addr is set"))
		}
		if c.Cluster.Secret == "" && c.Cluster.SecretFile == "" {
			errs = append(errs, errors.New("cluster.secret: a cluster needs a shared secret (cluster.secret or cluster.secretfile)"))
		}
		if c.Node.ID == "" {
			errs = append(errs, errors.New("node.id: every cluster node needs a unique --node-id"))
		}
	}
	if t := c.Cluster.TLS; t.Enabled() && (t.CAFile == "" || t.CertFile == "" || t.KeyFile == "") {
		errs = append(errs, errors.New("cluster.tls: set all of cafile, certfile and keyfile (mutual TLS for Raft) or none (the cluster secret handshake)"))
	}
	if t := c.HTTP.TLS; t.Enabled() && (t.Certificate == "" || t.Key == "") {
		errs = append(errs, errors.New("http.tls: set both certificate and key (PEM files) to serve HTTPS, or neither for plain HTTP"))
	}
	switch c.Cluster.Consistency {
	case "strong", "stale":
	default:
		errs = append(errs, fmt.Errorf("cluster.consistency: %q is not one of strong, stale", c.Cluster.Consistency))
	}
	if c.Raft.BootstrapExpect < 0 {
		errs = append(errs, errors.New("raft.bootstrapexpect: must not be negative"))
	}
	if c.Limits.MaxManifestSize <= 0 {
		errs = append(errs, errors.New("limits.maxmanifestsize: must be positive"))
	}
	for _, l := range []struct {
		key string
		ok  bool
	}{
		{"limits.maxconnections", c.Limits.MaxConnections > 0},
		{"limits.maxconcurrentrequests", c.Limits.MaxConcurrentRequests > 0},
		{"limits.readheadertimeout", c.Limits.ReadHeaderTimeout > 0},
		{"limits.referrerspagesize", c.Limits.ReferrersPageSize > 0},
	} {
		if !l.ok {
			errs = append(errs, fmt.Errorf("%s: must be positive", l.key))
		}
	}
	if c.Limits.MaxRequestsPerClient < 0 {
		errs = append(errs, errors.New("limits.maxrequestsperclient: must not be negative (0 turns it off)"))
	}
	if c.Limits.BodyReadTimeout <= 0 {
		errs = append(errs, errors.New("limits.bodyreadtimeout: must be a positive duration like 30s"))
	}
	if c.Limits.MaxEmptyUploads <= 0 {
		errs = append(errs, errors.New("limits.maxemptyuploads: must be positive"))
	}
	if c.Limits.EmptyUploadTTL <= 0 {
		errs = append(errs, errors.New("limits.emptyuploadttl: must be a positive duration like 15m"))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not one of text, json", c.Log.Format))
	}
	if c.Raft.ApplyTimeout <= 0 {
		errs = append(errs, errors.New("raft.applytimeout: must be positive"))
	}
	errs = append(errs, c.validateEvents()...)
	errs = append(errs, c.GC.validate()...)
	errs = append(errs, c.Auth.validate()...)
	return errors.Join(errs...)
}

// EnvKeys lists every environment variable the config understands, with its
// YAML path, for documentation and `registryd config env`.
func EnvKeys() [][2]string {
	var out [][2]string
	walkFields(reflect.ValueOf(&Config{}).Elem(), "", func(path string, _ reflect.Value) error {
		out = append(out, [2]string{envName(path), path})
		return nil
	})
	return out
}

func envName(path string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return "BERTH_" + strings.ToUpper(r.Replace(path))
}

func applyEnv(cfg *Config, env []string) error {
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "BERTH_") {
			vars[k] = v
		}
	}
	return walkFields(reflect.ValueOf(cfg).Elem(), "", func(path string, f reflect.Value) error {
		name := envName(path)
		v, ok := vars[name]
		if !ok {
			return nil
		}
		if err := setField(f, v); err != nil {
			return fmt.Errorf("environment %s: %w", name, err)
		}
		return nil
	})
}

// walkFields visits every leaf field of a config struct with its YAML path.
func walkFields(v reflect.Value, prefix string, visit func(path string, f reflect.Value) error) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		path := tag
		if prefix != "" {
			path = prefix + "." + tag
		}
		f := v.Field(i)
		if f.Kind() == reflect.Struct && f.Type() != reflect.TypeOf(time.Duration(0)) {
			if err := walkFields(f, path, visit); err != nil {
				return err
			}
			continue
		}
		if err := visit(path, f); err != nil {
			return err
		}
	}
	return nil
}

func setField(f reflect.Value, s string) error {
	switch {
	case f.Type() == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 30s or 5m", s)
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(s)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		f.SetBool(b)
	case f.Kind() == reflect.Int || f.Kind() == reflect.Int64 || f.Kind() == reflect.Int32:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		f.SetInt(n)
	case f.Kind() == reflect.Uint64 || f.Kind() == reflect.Uint || f.Kind() == reflect.Uint32:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a non-negative integer", s)
		}
		f.SetUint(n)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		f.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("unsupported field kind %s", f.Kind())
	}
	return nil
}

// resolveFiles reads the secrets that may live in files, so that the rest
// of the node sees only values. Called once by New.
func (c *Config) resolveFiles() error {
	read := func(key, path string, dst *string) error {
		if path == "" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		*dst = strings.TrimSpace(string(b))
		if *dst == "" {
			return fmt.Errorf("%s: %s is empty", key, path)
		}
		return nil
	}
	c.Cluster.secret = c.Cluster.Secret
	return errors.Join(
		read("cluster.secretfile", c.Cluster.SecretFile, &c.Cluster.secret),
		read("storage.s3.accesskeyfile", c.Storage.S3.AccessKeyFile, &c.Storage.S3.AccessKey),
		read("storage.s3.secretkeyfile", c.Storage.S3.SecretKeyFile, &c.Storage.S3.SecretKey),
		read("events.nats.tokenfile", c.Events.NATS.TokenFile, &c.Events.NATS.Token),
	)
}
