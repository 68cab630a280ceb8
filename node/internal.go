package node

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/fsm"
)

// The internal API is how nodes talk to each other over the same HTTP
// listener: a follower forwards a proposal to the leader, asks it for a
// read index, or asks any peer for its status. Every call carries the
// cluster secret; without one configured the internal API is off.
const internalPrefix = "/internal/v1/"

// applyResult is the leader's answer to a forwarded proposal.
type applyResult struct {
	Index   uint64       `json:"index"`
	Refusal *fsm.Refusal `json:"refusal,omitempty"`
	// Gate is set when a voter cannot decode the event yet.
	Gate  *GateError `json:"gate,omitempty"`
	Error string     `json:"error,omitempty"`
}

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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := n.cfg.Cluster.secret
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if secret == "" || subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
			http.Error(w, "cluster secret required", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// handleForwardedApply commits an encoded event on behalf of a follower.
// It answers 409 when this node is not the leader so the follower can
// retry against the new one: nothing was applied in that case.
func (n *Node) handleForwardedApply(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if n.raft.raft.State() != raft.Leader {
		http.Error(w, "not the leader", http.StatusConflict)
		return
	}
	idx, err := n.applyLocal(body)
	res := applyResult{Index: idx}
	var refusal *fsm.Refusal
	var unavailable *UnavailableError
	var bad *BadEntryError
	var gate *GateError
	switch {
	case err == nil:
	case errors.As(err, &bad):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case errors.As(err, &gate):
		res.Gate = gate
	case errors.As(err, &refusal):
		res.Refusal = refusal
	case errors.As(err, &unavailable):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	default:
		res.Error = err.Error()
	}
	writeJSON(w, http.StatusOK, res)
}

func (n *Node) handleReadIndex(w http.ResponseWriter, r *http.Request) {
	if n.raft.raft.State() != raft.Leader {
		http.Error(w, "not the leader", http.StatusConflict)
		return
	}
	ans, err := n.leaderReadIndexFor(r.Context(), r.URL.Query().Get("from"))
	if errors.Is(err, errNotSent) {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

func (n *Node) handleRemove(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ID == "" {
		http.Error(w, "body must be {\"id\": NODE}", http.StatusBadRequest)
		return
	}
	if err := n.removeServer(req.ID); err != nil {
		http.Error(w, err.Error(), statusFor(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) handleTransfer(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "body must be {\"id\": NODE} (id may be empty)", http.StatusBadRequest)
		return
	}
	if err := n.transferLeadership(req.ID); err != nil {
		http.Error(w, err.Error(), statusFor(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func statusFor(err error) int {
	var u *UnavailableError
	if errors.As(err, &u) {
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// peerClient calls other nodes' internal API.
type peerClient struct {
	http   *http.Client
	secret string
}

func newPeerClient(secret string) *peerClient {
	return &peerClient{
		secret: secret,
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}},
	}
}

// errNotSent marks a call that certainly did not reach a leader that acted
// on it (connection refused, peer not leader), so it is safe to retry.
var errNotSent = errors.New("not delivered")

func (c *peerClient) do(ctx context.Context, method, apiAddr, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+apiAddr+internalPrefix+path, bytes.NewReader(body))
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
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusConflict:
		return fmt.Errorf("%w: %s: %s", errNotSent, apiAddr, strings.TrimSpace(string(b)))
	case resp.StatusCode == http.StatusServiceUnavailable:
		return &UnavailableError{Err: fmt.Errorf("%s: %s", apiAddr, strings.TrimSpace(string(b)))}
	case resp.StatusCode >= 300:
		return fmt.Errorf("%s %s on %s: %s: %s", method, path, apiAddr, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode %s answer from %s: %w", path, apiAddr, err)
	}
	return nil
}

// isDialError reports whether the request never left this node: a failed
// dial means the peer cannot have acted on it.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
