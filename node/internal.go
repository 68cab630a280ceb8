package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/berth-registry/berth/events"
	cs "github.com/berth-registry/berth/node/consensus"
	"github.com/berth-registry/berth/node/httpauth"
	"github.com/berth-registry/berth/node/httperr"
)

// The internal API is how nodes talk to each other over the same HTTP
// listener: a follower forwards a proposal to the leader, asks it for a
// read index, or asks any peer for its status. Every call carries the
// cluster secret; without one configured the internal API is off.
const internalPrefix = "/internal/v1/"

// NodeStatus is one node's view of Raft, served to peers and clusterctl.
type NodeStatus struct {
	ID           string `json:"id"`
	APIAddr      string `json:"apiAddr"`
	RaftAddr     string `json:"raftAddr"`
	Region       string `json:"region,omitempty"`
	State        string `json:"state"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commitIndex"`
	AppliedIndex uint64 `json:"appliedIndex"`
	LastIndex    uint64 `json:"lastIndex"`
	Leader       string `json:"leader"`
	Version      string `json:"version,omitempty"`
	Voter        bool   `json:"voter"`
	Gossip       string `json:"gossip,omitempty"`
	Error        string `json:"error,omitempty"`
	// Halted is set when this node stopped applying the log at an entry
	// its binary cannot decode (fsm.HaltError).
	Halted string `json:"halted,omitempty"`
	// Events is the event outbox as this node sees it.
	Events *EventsStatus `json:"events,omitempty"`
	// ReadOnly is set while this node's state has the registry in
	// read-only mode: every node that applied the switch shows it.
	ReadOnly bool `json:"readOnly,omitempty"`
}

func (n *Node) internalHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+internalPrefix+"apply", n.handleForwardedApply)
	mux.HandleFunc("GET "+internalPrefix+"readindex", n.handleReadIndex)
	mux.HandleFunc("GET "+internalPrefix+"status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, n.localStatus())
	})
	mux.HandleFunc("POST "+internalPrefix+"raft/remove", n.handleRemove)
	mux.HandleFunc("POST "+internalPrefix+"raft/transfer", n.handleTransfer)
	mux.HandleFunc("POST "+internalPrefix+"restore", n.handleInternalRestore)
	mux.HandleFunc("POST "+internalPrefix+"webhooks/{name}/{action}", n.handleInternalWebhook)
	mux.HandleFunc("POST "+internalPrefix+"gc/run", n.handleInternalGCRun)
	mux.HandleFunc("GET "+internalPrefix+"gc/status", n.handleInternalGCStatus)
	mux.HandleFunc("GET "+internalPrefix+"replication/status", n.handleInternalReplication)
	mux.HandleFunc("POST "+internalPrefix+"replication/run/{name}", n.handleInternalReplicationRun)
	h := httpauth.Guard{
		Token: n.cfg.Cluster.secret,
		Realm: "berth-internal",
		Hint:  "cluster secret missing or wrong: every node needs the same cluster.secret",
	}.Wrap(mux)
	if n.tls.cluster != nil {
		// With cluster.tls the caller must also be a member by
		// certificate; checked first, so a node of another CA is told so.
		h = n.tls.cluster.Guard(h)
	}
	return h
}

// handleForwardedApply commits an encoded event on behalf of a follower.
// It answers 409 when this node is not the leader so the follower can
// retry against the new one: nothing was applied in that case.
func (n *Node) handleForwardedApply(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		httperr.Write(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	if _, err := events.Decode(body); err != nil {
		// Bytes no node can decode would halt every FSM that met them.
		httperr.Write(w, http.StatusBadRequest, (&BadEntryError{Err: err}).Error())
		return
	}
	res, err := n.engine.ServeApply(body, time.Now().Add(n.cfg.Raft.ApplyTimeout))
	if err != nil {
		internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (n *Node) handleReadIndex(w http.ResponseWriter, r *http.Request) {
	ans, err := n.engine.ServeReadIndex(r.Context(), r.URL.Query().Get("from"))
	if err != nil {
		internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

func (n *Node) handleRemove(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ID == "" {
		httperr.Write(w, http.StatusBadRequest, `body must be {"id": NODE}`)
		return
	}
	if err := n.removeServer(req.ID); err != nil {
		internalError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) handleTransfer(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		httperr.Write(w, http.StatusBadRequest, `body must be {"id": NODE} (id may be empty)`)
		return
	}
	if err := n.transferLeadership(req.ID); err != nil {
		internalError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// internalError answers a failed internal call. It is the mapping of
// node/httperr with one addition that the forwarding protocol needs: an
// error wrapping errNotSent (this node is not the leader, so it did
// nothing) is 409, on which the calling follower retries against the new
// leader (peerClient.do, consensus.Peers).
func internalError(w http.ResponseWriter, err error) {
	code := httperr.Status(err)
	if errors.Is(err, errNotSent) {
		code = http.StatusConflict
	}
	httperr.Write(w, code, err.Error())
}

// writeJSON answers v as JSON (node/httperr.JSON).
func writeJSON(w http.ResponseWriter, code int, v any) { httperr.JSON(w, code, v) }

// peerClient calls other nodes' internal API.
type peerClient struct {
	http   *http.Client
	secret string
	scheme string // http or https, as this node's own listener
}

// newPeerClient calls peers over HTTPS when this node serves HTTPS; with
// cluster.tls it presents the cluster certificate and wants the peer's
// (node/peertls), otherwise it verifies the peer as any HTTPS client does.
func newPeerClient(secret string, t apiTLS) *peerClient {
	tr := &http.Transport{
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	if t.cluster != nil {
		tr.DialTLSContext = t.cluster.DialTLSContext
	}
	return &peerClient{secret: secret, scheme: t.scheme(), http: &http.Client{Transport: tr}}
}

// url is the address of an internal API call on the peer at apiAddr
// (host:port, as gossiped).
func (c *peerClient) url(apiAddr, path string) string {
	return c.scheme + "://" + apiAddr + internalPrefix + path
}

// errNotSent marks a call that certainly did not reach a leader that acted
// on it (connection refused, peer not leader), so it is safe to retry.
var errNotSent = cs.ErrNotSent

func (c *peerClient) do(ctx context.Context, method, apiAddr, path string, body []byte, out any) error {
	return c.doLimit(ctx, method, apiAddr, path, body, out, 1<<20)
}

// doLimit is do for answers of up to limit bytes (a GC dry run lists
// every candidate).
func (c *peerClient) doLimit(ctx context.Context, method, apiAddr, path string, body []byte, out any, limit int64) error {
	req, err := http.NewRequestWithContext(ctx, method, c.url(apiAddr, path), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.secret)
	resp, err := c.http.Do(req)
	if err != nil {
		if isDialError(err) {
			return fmt.Errorf("%w: %v", errNotSent, err)
		}
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err := peerError(resp, method+" "+path+" on "+apiAddr, b); err != nil {
		return err
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode %s answer from %s: %w", path, apiAddr, err)
	}
	return nil
}

// peerError maps a peer's error answer onto the forwarding protocol: 409
// is errNotSent (the peer did nothing; retry elsewhere), 503 an
// *UnavailableError, another 4xx but 401/403 the same status for the
// caller's client.
func peerError(resp *http.Response, what string, body []byte) error {
	switch code := resp.StatusCode; {
	case code == http.StatusConflict:
		return fmt.Errorf("%w: %s: %s", errNotSent, what, peerMessage(body))
	case code == http.StatusServiceUnavailable:
		return &UnavailableError{Err: fmt.Errorf("%s: %s", what, peerMessage(body))}
	case code >= 400 && code < 500 && code != http.StatusUnauthorized && code != http.StatusForbidden:
		// The peer judged the request itself wrong: the caller's client
		// made the same mistake, and sees the same status. (A 401 is this
		// cluster's secret, not the client's token: that stays a 500.)
		return httperr.Errorf(code, "%s: %s", what, peerMessage(body))
	case code >= 300:
		return fmt.Errorf("%s: %s: %s", what, resp.Status, peerMessage(body))
	}
	return nil
}

// peerMessage is the message of a peer's error answer: the "error" of a
// JSON body (httperr.Write), or the text as it is.
func peerMessage(b []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	return strings.TrimSpace(string(b))
}

// isDialError reports whether the request never left this node: a failed
// dial means the peer cannot have acted on it.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
