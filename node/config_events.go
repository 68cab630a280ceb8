package node

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// EventsConfig says where the published events go: a NATS JetStream
// stream (ARCHITECTURE.md rule 8, docs/design.md "Events out").
type EventsConfig struct {
	// Enabled is "true", "false" or empty for the default: on for a
	// single node (embedded NATS), on for a cluster iff nats.urls is set.
	Enabled string `yaml:"enabled"`
	// Stream is the JetStream stream's name; it takes subjects berth.>.
	Stream string `yaml:"stream"`
	// DuplicateWindow is how long JetStream remembers message IDs; it must
	// outlast any replay by a new leader (the cursor is committed about
	// once a second, so minutes are plenty).
	DuplicateWindow time.Duration `yaml:"duplicatewindow"`
	// Replicas of the stream when Berth creates it (3 on a NATS cluster).
	Replicas int              `yaml:"replicas"`
	NATS     EventsNATSConfig `yaml:"nats"`
	// Pulls turns on pull events (manifest.pulled, blob.pulled), which
	// every node publishes itself, best effort (events/pulls). Off by
	// default: a busy registry serves far more pulls than pushes.
	Pulls bool `yaml:"pulls"`
}

// EventsNATSConfig is the NATS connection.
type EventsNATSConfig struct {
	// URLs of an external NATS cluster. Empty: an embedded nats-server
	// with JetStream under <datadir>/nats (single node only).
	URLs []string `yaml:"urls"`
	// Credentials is a NATS .creds file for the external cluster.
	Credentials string          `yaml:"credentials"`
	TLS         EventsTLSConfig `yaml:"tls"`
	// Listen opens the embedded server to clients outside the process
	// (loopback if no host is given); it needs Token or TokenFile.
	Listen    string `yaml:"listen"`
	Token     string `yaml:"token"`
	TokenFile string `yaml:"tokenfile"`
}

// EventsTLSConfig is TLS to an external NATS cluster (PEM files).
type EventsTLSConfig struct {
	CAFile   string `yaml:"cafile"`
	CertFile string `yaml:"certfile"`
	KeyFile  string `yaml:"keyfile"`
}

// EventsEnabled reports whether this node publishes events (as leader).
func (c Config) EventsEnabled() bool {
	switch c.Events.Enabled {
	case "true":
		return true
	case "false":
		return false
	}
	return !c.Clustered() || len(c.Events.NATS.URLs) > 0
}

func (c Config) validateEvents() []error {
	e := c.Events
	var errs []error
	switch e.Enabled {
	case "", "true", "false":
	default:
		errs = append(errs, fmt.Errorf("events.enabled: %q is not true or false", e.Enabled))
	}
	if !c.EventsEnabled() {
		if e.Pulls {
			errs = append(errs, errors.New("events.pulls: pull events need events; turn events on or drop events.pulls"))
		}
		return errs
	}
	if e.Stream == "" {
		errs = append(errs, errors.New("events.stream: must not be empty"))
	}
	if e.DuplicateWindow < time.Minute {
		errs = append(errs, errors.New("events.duplicatewindow: must be at least 1m (it must outlast a new leader's replay; default 10m)"))
	}
	if e.Replicas < 1 || e.Replicas > 5 {
		errs = append(errs, errors.New("events.replicas: must be 1 to 5"))
	}
	n := e.NATS
	if c.Clustered() && len(n.URLs) == 0 {
		errs = append(errs, errors.New("events.nats.urls: a cluster publishes to an external NATS cluster; set its URLs or events.enabled: false"))
	}
	if len(n.URLs) == 0 && e.Replicas != 1 {
		errs = append(errs, errors.New("events.replicas: the embedded NATS server holds one replica; set 1 or use events.nats.urls"))
	}
	if n.Listen != "" {
		if len(n.URLs) > 0 {
			errs = append(errs, errors.New("events.nats.listen: only the embedded server listens; drop it or events.nats.urls"))
		}
		if _, _, err := net.SplitHostPort(n.Listen); err != nil {
			errs = append(errs, fmt.Errorf("events.nats.listen: %q is not host:port (like 127.0.0.1:4222)", n.Listen))
		}
		if n.Token == "" && n.TokenFile == "" {
			errs = append(errs, errors.New("events.nats.listen: clients must authenticate: set events.nats.token or events.nats.tokenfile"))
		}
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		errs = append(errs, errors.New("events.nats.tls: set both certfile and keyfile, or neither"))
	}
	return errs
}
