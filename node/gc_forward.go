package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/berth-registry/berth/node/httperr"
)

// Garbage collection runs on the leader (rule 9), but an operator's
// clusterctl reaches whichever node the load balancer picks. A follower
// therefore forwards gc run and gc status to the leader's internal API,
// with the cluster secret, as it forwards writes; the admin token has
// already been checked on the follower.

// maxGCAnswer bounds a forwarded answer: a dry run lists every
// candidate (about 80 bytes each), so 64 MiB is some 800,000 of them.
const maxGCAnswer = 64 << 20

// gcForwardTries is how often a follower asks the leader it knows of
// before giving up: a leader that lost its term in between answers 409,
// and the next try goes to its successor.
const gcForwardTries = 3

// query is the request as the admin API's and internal API's query.
func (r GCRunRequest) query() string {
	q := url.Values{}
	q.Set("dryRun", strconv.FormatBool(r.DryRun))
	q.Set("deleteUntagged", strconv.FormatBool(r.DeleteUntagged))
	q.Set("wait", strconv.FormatBool(r.Wait))
	return q.Encode()
}

// forwardGC sends a GC call to the leader's internal API and decodes its
// answer into out.
func (n *Node) forwardGC(ctx context.Context, method, path string, out any) error {
	if n.peers == nil {
		return &UnavailableError{Err: errors.New("this node does not lead yet: retry in a second")}
	}
	var err error
	for try := range gcForwardTries {
		if try > 0 {
			select {
			case <-time.After(time.Duration(try) * 500 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		leader, lerr := n.engine.Leader()
		if lerr != nil {
			err = lerr
			continue
		}
		if leader.ID == n.cfg.Node.ID {
			err = &UnavailableError{Err: errors.New("this node is taking or giving up leadership: retry in a second")}
			continue
		}
		err = n.peers.doLimit(ctx, method, leader.APIAddr, path, nil, out, maxGCAnswer)
		if !errors.Is(err, errNotSent) {
			return gcLeaderError(err)
		}
	}
	if errors.Is(err, errNotSent) {
		err = &UnavailableError{Err: fmt.Errorf("the leader changed while this node forwarded the request: retry: %w", err)}
	}
	return err
}

// gcLeaderError turns the leader's 423 (a run in progress, read-only
// mode) back into the admin API's 409 with the leader's message.
func gcLeaderError(err error) error {
	var he *httperr.Error
	if errors.As(err, &he) && he.Code == http.StatusLocked {
		return gcConflict{he.Err.Error()}
	}
	return err
}

// gcConflict is a 409 the leader gave: a run in progress, or paused.
type gcConflict struct{ msg string }

func (e gcConflict) Error() string { return e.msg }
func (gcConflict) HTTPStatus() int { return http.StatusConflict }

// handleInternalGCRun runs a GC request a follower forwarded. It never
// forwards again: not leading (any more) is a 409 errNotSent, on which
// the follower tries the new leader; a run in progress or read-only mode
// is a 423, which the follower answers as the admin API's 409.
func (n *Node) handleInternalGCRun(w http.ResponseWriter, r *http.Request) {
	var req GCRunRequest
	for _, f := range []struct {
		name string
		v    *bool
	}{{"dryRun", &req.DryRun}, {"deleteUntagged", &req.DeleteUntagged}, {"wait", &req.Wait}} {
		if s := r.URL.Query().Get(f.name); s != "" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				httperr.Write(w, http.StatusBadRequest, f.name+": "+strconv.Quote(s)+" is not true or false")
				return
			}
			*f.v = b
		}
	}
	a, err := n.runGCHere(r.Context(), req)
	if err != nil {
		internalGCError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// handleInternalGCStatus answers gc status for a follower, if this node
// leads.
func (n *Node) handleInternalGCStatus(w http.ResponseWriter, r *http.Request) {
	if _, err := n.leaderGC(); err != nil {
		internalGCError(w, err)
		return
	}
	a, err := n.gcStatusHere(r.Context())
	if err != nil {
		internalGCError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func internalGCError(w http.ResponseWriter, err error) {
	var nl *NotLeaderError
	var st interface{ HTTPStatus() int }
	switch {
	case errors.As(err, &nl):
		internalError(w, fmt.Errorf("%w: %v", errNotSent, err))
	case errors.As(err, &st) && st.HTTPStatus() == http.StatusConflict:
		httperr.Write(w, http.StatusLocked, err.Error())
	default:
		internalError(w, err)
	}
}
