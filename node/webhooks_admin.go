package node

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/events/webhook"
	"github.com/berth-registry/berth/node/admin"
	"github.com/berth-registry/berth/node/httperr"
)

// Bounds of the webhook record listings: the streams keep at most 100
// attempts and 10000 dead letters per webhook.
const (
	defaultDeliveriesLimit  = 20
	maxDeliveriesLimit      = 100
	defaultDeadLettersLimit = 100
	maxDeadLettersLimit     = 10000
)

// webhooksAdmin serves the webhook part of the admin API (clusterctl
// webhook ...) and the event stream (clusterctl events), behind the admin
// token. Records are read on this node; redeliver and test run where the
// engine runs, on the leader, and are forwarded there.
func (n *Node) webhooksAdmin() http.Handler {
	mux := http.NewServeMux()
	const p = "/admin/v1/webhooks/{name}/"
	mux.HandleFunc("GET "+p+"deliveries", n.handleDeliveries)
	mux.HandleFunc("GET "+p+"dead-letters", n.handleDeadLetters)
	mux.HandleFunc("POST "+p+"{action}", func(w http.ResponseWriter, r *http.Request) {
		name, action := r.PathValue("name"), r.PathValue("action")
		if action != "redeliver" && action != "test" {
			adminError(w, http.StatusNotFound, "no admin endpoint "+r.URL.Path+": use redeliver or test")
			return
		}
		if !n.webhookExists(w, name) {
			return
		}
		out, err := n.webhookAction(r.Context(), name, action, r.URL.Query(), true)
		if err != nil {
			adminError(w, httperr.Status(err), err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	})
	mux.HandleFunc("GET /admin/v1/events", n.handleEventStream)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusNotFound, "no admin endpoint "+r.Method+" "+r.URL.Path)
	})
	return admin.Guard(n.token).Wrap(mux)
}

// webhookExists answers 404 when no Webhook resource has that name.
func (n *Node) webhookExists(w http.ResponseWriter, name string) bool {
	if _, ok := n.fsm.View().Resource("Webhook", name); !ok {
		adminError(w, http.StatusNotFound, "webhook "+strconv.Quote(name)+" does not exist (clusterctl get webhooks lists them)")
		return false
	}
	return true
}

// queryLimit reads ?limit=, defaulting to def and refusing values outside
// 1..maxLimit.
func queryLimit(q url.Values, def, maxLimit int) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > maxLimit {
		return 0, httperr.Errorf(http.StatusBadRequest, "limit %q must be a number from 1 to %d", s, maxLimit)
	}
	return v, nil
}

func (n *Node) handleDeliveries(w http.ResponseWriter, r *http.Request) {
	serveWebhookList(n, w, r, defaultDeliveriesLimit, maxDeliveriesLimit, (*webhook.Manager).Deliveries)
}

func (n *Node) handleDeadLetters(w http.ResponseWriter, r *http.Request) {
	serveWebhookList(n, w, r, defaultDeadLettersLimit, maxDeadLettersLimit, (*webhook.Manager).DeadLetters)
}

// serveWebhookList answers one of a webhook's records (deliveries, dead
// letters) from this node's JetStream connection: any node can.
func serveWebhookList[T any](n *Node, w http.ResponseWriter, r *http.Request, def, maxLimit int,
	read func(*webhook.Manager, context.Context, string, int) ([]T, error)) {
	name := r.PathValue("name")
	limit, err := queryLimit(r.URL.Query(), def, maxLimit)
	if err != nil {
		adminError(w, httperr.Status(err), err.Error())
		return
	}
	if !n.webhookExists(w, name) {
		return
	}
	m, err := n.webhookManager(r.Context())
	if err != nil {
		adminError(w, httperr.Status(err), err.Error())
		return
	}
	list, err := read(m, r.Context(), name, limit)
	if err != nil {
		adminError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if list == nil {
		list = []T{} // [] rather than null
	}
	writeJSON(w, http.StatusOK, list)
}

// RedeliverAnswer is the answer of POST .../redeliver.
type RedeliverAnswer struct {
	Webhook string `json:"webhook"`
	// From and Sequence are set by ?from=: delivery restarts at the
	// first event with an index at least From, stream sequence Sequence.
	From     uint64 `json:"from,omitempty"`
	Sequence uint64 `json:"sequence,omitempty"`
	// DeadLetters is set by ?deadLetters=true.
	DeadLetters *webhook.RedeliverResult `json:"deadLetters,omitempty"`
}

// webhookAction runs redeliver or test on the leader's engine and returns
// the JSON answer. On a follower it forwards to the leader when forward is
// set (the admin API), and refuses with errNotSent otherwise (the
// internal API, so the caller retries against the new leader).
func (n *Node) webhookAction(ctx context.Context, name, action string, q url.Values, forward bool) ([]byte, error) {
	var (
		from        uint64
		deadLetters bool
	)
	if action != "redeliver" && action != "test" {
		return nil, httperr.Errorf(http.StatusNotFound, "no webhook action %q: use redeliver or test", action)
	}
	if action == "redeliver" {
		dl, f := q.Get("deadLetters"), q.Get("from")
		deadLetters = dl == "true"
		if dl != "" && dl != "true" && dl != "false" {
			return nil, httperr.Errorf(http.StatusBadRequest, "deadLetters %q must be true or false", dl)
		}
		switch {
		case deadLetters && f != "":
			return nil, httperr.Errorf(http.StatusBadRequest, "give either from=INDEX or deadLetters=true, not both")
		case !deadLetters && f == "":
			return nil, httperr.Errorf(http.StatusBadRequest, "redeliver needs from=INDEX (replay from a log index) or deadLetters=true (retry the dead letters)")
		case f != "":
			v, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return nil, httperr.Errorf(http.StatusBadRequest, "from %q is not a log index (a number >= 0)", f)
			}
			from = v
		}
	}
	m, err := n.leaderWebhookManager(ctx)
	if errors.Is(err, errNotSent) && forward {
		return n.forwardWebhookAction(ctx, name, action, q)
	}
	if err != nil {
		return nil, err
	}
	if msg, bad := n.webhookSecretProblem(name); bad {
		return nil, httperr.Errorf(http.StatusConflict, "webhook %s is not delivering: its signing secret is not readable on the leader: %s", name, msg)
	}
	var out any
	switch {
	case action == "test":
		rec, err := m.Test(ctx, name)
		if err != nil && rec.Webhook == "" {
			return nil, notActive(name, err)
		}
		out = rec // a failed delivery is an answer, not an API error
	case deadLetters:
		res, err := m.RedeliverDeadLetters(ctx, name)
		if err != nil {
			return nil, notActive(name, err)
		}
		out = RedeliverAnswer{Webhook: name, DeadLetters: &res}
	default:
		seq, err := m.RedeliverFrom(ctx, name, from)
		if err != nil {
			return nil, notActive(name, err)
		}
		out = RedeliverAnswer{Webhook: name, From: from, Sequence: seq}
	}
	return json.Marshal(out)
}

// notActive marks the engine's "not configured" (the leader has not synced
// a just-applied webhook yet) as retryable.
func notActive(name string, err error) error {
	if strings.Contains(err.Error(), "is not configured") {
		return &UnavailableError{Err: errors.New("webhook " + name + " is not active on the leader yet (just applied?): retry in a few seconds")}
	}
	return err
}

func (n *Node) webhookSecretProblem(name string) (string, bool) {
	w := n.webhooks
	w.mu.Lock()
	defer w.mu.Unlock()
	msg, bad := w.secretErr[name]
	return msg, bad
}

// forwardWebhookAction sends the action to the leader's internal API.
func (n *Node) forwardWebhookAction(ctx context.Context, name, action string, q url.Values) ([]byte, error) {
	if n.peers == nil {
		return nil, &UnavailableError{Err: errors.New("this node is not the leader yet: retry in a second")}
	}
	leader, err := n.engine.Leader()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var out json.RawMessage
	path := "webhooks/" + url.PathEscape(name) + "/" + action + "?" + q.Encode()
	if err := n.peers.do(ctx, "POST", leader.APIAddr, path, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// handleInternalWebhook runs a forwarded webhook action on the leader.
func (n *Node) handleInternalWebhook(w http.ResponseWriter, r *http.Request) {
	out, err := n.webhookAction(r.Context(), r.PathValue("name"), r.PathValue("action"), r.URL.Query(), false)
	if err != nil {
		internalError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}
