// Package broker is where Berth's NATS comes from: an embedded nats-server
// with JetStream under the data dir (a single node), or a connection to an
// external NATS cluster (a Berth cluster). It also owns the event stream's
// settings and checks that an existing stream is compatible.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/berth-registry/berth/events"
)

// Config says where NATS is and how the stream looks.
type Config struct {
	// URLs of an external NATS cluster. Empty runs an embedded server.
	URLs []string
	// Credentials is a NATS creds file for the external cluster.
	Credentials string
	// CAFile, CertFile and KeyFile configure TLS to the external cluster.
	CAFile, CertFile, KeyFile string

	// StoreDir holds the embedded server's JetStream files.
	StoreDir string
	// Listen, if set, lets clients outside the process reach the embedded
	// server; Token is then required of every client.
	Listen string
	Token  string

	Stream          string
	DuplicateWindow time.Duration
	Replicas        int
	// AckTimeout bounds how long a publish waits for JetStream's answer.
	AckTimeout time.Duration
}

// Broker is an open NATS connection with JetStream, and the embedded
// server if there is one.
type Broker struct {
	cfg    Config
	logger *slog.Logger
	srv    *server.Server // nil with an external cluster
	nc     *nats.Conn
	js     jetstream.JetStream
}

// ErrIncompatibleStream is returned when the stream exists with settings
// that would lose or misroute events; Berth never changes them itself.
var ErrIncompatibleStream = errors.New("incompatible stream")

// Open starts the embedded server (when no URLs are configured) and
// connects. An external cluster that is not reachable yet is not an error:
// the connection keeps retrying in the background.
func Open(cfg Config, logger *slog.Logger) (*Broker, error) {
	b := &Broker{cfg: cfg, logger: logger}
	opts := []nats.Option{
		nats.Name("berth-outbox"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		// A publish during an outage fails at once rather than sit in a
		// buffer: the outbox retries from its cursor anyway.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Debug("nats disconnected", "err", err)
			}
		}),
	}
	url := ""
	if len(cfg.URLs) == 0 {
		srv, err := startEmbedded(cfg)
		if err != nil {
			return nil, err
		}
		b.srv = srv
		opts = append(opts, nats.InProcessServer(srv))
		if cfg.Token != "" {
			opts = append(opts, nats.Token(cfg.Token))
		}
	} else {
		url = joinURLs(cfg.URLs)
		if cfg.Credentials != "" {
			opts = append(opts, nats.UserCredentials(cfg.Credentials))
		}
		if cfg.CAFile != "" {
			opts = append(opts, nats.RootCAs(cfg.CAFile))
		}
		if cfg.CertFile != "" {
			opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
		}
		if cfg.Token != "" {
			opts = append(opts, nats.Token(cfg.Token))
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	b.nc = nc
	timeout := cfg.AckTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024), jetstream.WithPublishAsyncTimeout(timeout))
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.js = js
	return b, nil
}

func joinURLs(urls []string) string {
	s := ""
	for i, u := range urls {
		if i > 0 {
			s += ","
		}
		s += u
	}
	return s
}

// startEmbedded runs nats-server in this process. JetStream syncs every
// write before acknowledging it (SyncAlways), so an acknowledged event
// survives a power cut, not only a crash of the process (see
// docs/durability-events.md).
func startEmbedded(cfg Config) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "berth-embedded",
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      true,
		DontListen: cfg.Listen == "",
		// The monitoring and cluster ports stay closed.
		HTTPPort: 0,
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("events.nats.listen %q: %w", cfg.Listen, err)
		}
		if host == "" {
			host = "127.0.0.1" // loopback unless asked otherwise
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("events.nats.listen %q: port: %w", cfg.Listen, err)
		}
		opts.Host, opts.Port = host, p
		opts.Authorization = cfg.Token
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats-server with JetStream under %s did not start within 30s", cfg.StoreDir)
	}
	return srv, nil
}

// StoreDir is where the embedded server of a data dir keeps JetStream.
func StoreDir(dataDir string) string { return filepath.Join(dataDir, "nats") }

// StreamConfig is the stream Berth creates when there is none.
func (b *Broker) StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        b.cfg.Stream,
		Description: "Berth registry events (CloudEvents 1.0 JSON), one per accepted log entry",
		Subjects:    []string{events.SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Duplicates:  b.cfg.DuplicateWindow,
		Replicas:    max(b.cfg.Replicas, 1),
	}
}

// Ensure creates the stream, or checks that the existing one takes every
// Berth subject into file storage with a duplicate window at least as
// long as configured. It never changes an existing stream: that is the
// operator's call.
func (b *Broker) Ensure(ctx context.Context) error {
	want := b.StreamConfig()
	s, err := b.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := b.js.CreateStream(ctx, want); err != nil {
			return fmt.Errorf("create stream %s: %w", want.Name, err)
		}
		b.logger.Info("created event stream", "stream", want.Name, "subjects", want.Subjects, "replicas", want.Replicas, "duplicatewindow", want.Duplicates)
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", want.Name, err)
	}
	return CheckStream(s.CachedInfo().Config, want)
}

// CheckStream compares an existing stream's settings with what Berth
// needs.
func CheckStream(got, want jetstream.StreamConfig) error {
	var problems []error
	if !slices.Contains(got.Subjects, want.Subjects[0]) {
		problems = append(problems, fmt.Errorf("its subjects %v do not include %q: events would not be stored", got.Subjects, want.Subjects[0]))
	}
	if got.Duplicates < want.Duplicates {
		problems = append(problems, fmt.Errorf("its duplicate window %s is shorter than events.duplicatewindow %s: a new leader's replay could store events twice", got.Duplicates, want.Duplicates))
	}
	if got.Storage != jetstream.FileStorage {
		problems = append(problems, errors.New("it keeps messages in memory: a NATS restart would lose them"))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %s: %w; fix the stream (nats stream edit) or point events.stream elsewhere", ErrIncompatibleStream, got.Name, errors.Join(problems...))
	}
	return nil
}

// PublishMsgAsync publishes one message and returns its acknowledgement
// future.
func (b *Broker) PublishMsgAsync(m *nats.Msg) (jetstream.PubAckFuture, error) {
	return b.js.PublishMsgAsync(m)
}

// JetStream is the broker's JetStream handle, for the webhook engine and
// for reading the stream (clusterctl events) on any node.
func (b *Broker) JetStream() jetstream.JetStream { return b.js }

// Connected reports whether the connection to NATS is up.
func (b *Broker) Connected() bool { return b.nc != nil && b.nc.IsConnected() }

// Close drains nothing (the outbox's cursor covers what was not acked),
// closes the connection and stops the embedded server.
func (b *Broker) Close() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}
