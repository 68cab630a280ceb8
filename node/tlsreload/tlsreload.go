// Package tlsreload serves a TLS certificate and key from PEM files and
// picks up new files without a restart, so an operator (or cert-manager,
// or certbot) rotates a certificate by replacing the files.
//
// GetCertificate looks at the files' modification time and size at most
// once per Interval. When either changed it loads the pair again; if the
// new pair does not load (the certificate was written but not yet its key,
// or the files are broken) it keeps serving the old pair and logs the
// problem once, until the files change again.
package tlsreload

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultInterval is how often the files are looked at: often enough that
// a rotation takes effect at once, rarely enough to cost nothing on a busy
// listener (one stat pair a second at most).
const DefaultInterval = time.Second

// Options tune a Reloader; the zero value is the default.
type Options struct {
	// Interval between looks at the files; 0 means DefaultInterval.
	Interval time.Duration
	// Logger gets one line per reload and per failed reload.
	Logger *slog.Logger
	// Key names the configuration keys in messages, e.g. "http.tls".
	Key string
}

// Reloader holds the current certificate. Its methods are safe for
// concurrent use.
type Reloader struct {
	certFile, keyFile string
	opts              Options

	mu      sync.Mutex
	cert    *tls.Certificate
	stamps  [2]stamp  // the files as last loaded or last tried
	checked time.Time // when the files were last looked at
}

// stamp is what tells a changed file: its modification time and size.
type stamp struct {
	mod  time.Time
	size int64
}

// New loads the pair once; an error here means the node must not start,
// since it has no certificate to serve.
func New(certFile, keyFile string, opts Options) (*Reloader, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Key == "" {
		opts.Key = "tls"
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, opts: opts}
	stamps, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert, r.stamps, r.checked = cert, stamps, time.Now()
	return r, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Current(), nil
}

// Current returns the pair to serve, reloading it first if the files
// changed and the interval has passed.
func (r *Reloader) Current() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.checked) < r.opts.Interval {
		return r.cert
	}
	r.checked = now
	stamps, err := r.stat()
	if err != nil {
		// A file being replaced may be missing for a moment: keep serving
		// and look again next time, logging only a new kind of failure.
		if stamps != r.stamps {
			r.stamps = stamps
			r.opts.Logger.Warn("tls: cannot read the certificate files; still serving the previous certificate", "key", r.opts.Key, "err", err)
		}
		return r.cert
	}
	if stamps == r.stamps {
		return r.cert
	}
	// Remember what was tried, so a broken pair is parsed and logged once,
	// not every second, and a fixed one is tried as soon as it changes.
	r.stamps = stamps
	cert, err := r.load()
	if err != nil {
		r.opts.Logger.Warn("tls: the changed certificate does not load; still serving the previous one", "key", r.opts.Key, "err", err)
		return r.cert
	}
	r.cert = cert
	r.opts.Logger.Info("tls: certificate reloaded", "key", r.opts.Key, "subject", cert.Leaf.Subject.String(), "notAfter", cert.Leaf.NotAfter)
	return r.cert
}

func (r *Reloader) stat() ([2]stamp, error) {
	var out [2]stamp
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return out, fmt.Errorf("%s: %w", r.opts.Key, err)
		}
		out[i] = stamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return out, nil
}

func (r *Reloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: load certificate %s and key %s: %w", r.opts.Key, r.certFile, r.keyFile, err)
	}
	// Leaf is parsed by LoadX509KeyPair since Go 1.23; it is what the
	// log line and a test need.
	if cert.Leaf == nil {
		return nil, fmt.Errorf("%s: %s holds no certificate", r.opts.Key, r.certFile)
	}
	return &cert, nil
}
