package node

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/berth-registry/berth/fsm/resource"
	"github.com/berth-registry/berth/node/httperr"
	"github.com/berth-registry/berth/replication"
)

// ReplicationRunAnswer is POST /admin/v1/replication/run/{name}: the job
// the leader started. Its progress shows in `clusterctl replication
// status NAME`.
type ReplicationRunAnswer struct {
	Policy string `json:"policy"`
	Job    string `json:"job"`
}

// runError is a run the leader refused, with the status the admin API
// answers it with.
type runError struct {
	code int
	msg  string
}

func (e runError) Error() string   { return e.msg }
func (e runError) HTTPStatus() int { return e.code }

// runPushHere starts a job of policy name on this node, if it leads.
func (n *Node) runPushHere(name string) (ReplicationRunAnswer, error) {
	n.repl.mu.Lock()
	mg := n.repl.push
	n.repl.mu.Unlock()
	if mg == nil {
		return ReplicationRunAnswer{}, &NotLeaderError{}
	}
	job, err := mg.Run(name)
	switch {
	case errors.Is(err, replication.ErrNoPushPolicy):
		msg := "no push policy " + strconv.Quote(name) + " is enabled (clusterctl get replicationpolicies lists them; only mode: push policies run jobs)"
		if r, ok := n.fsm.View().Resource("ReplicationPolicy", name); ok {
			if p, err := resource.DecodeReplicationPolicy(r.Document); err == nil && p.Spec.Mode == "push" && p.Spec.Enabled {
				// Applied a moment ago: the leader picks it up within seconds.
				return ReplicationRunAnswer{}, runError{http.StatusServiceUnavailable, "push policy " + strconv.Quote(name) + " is starting on the leader: retry in a few seconds"}
			}
		}
		return ReplicationRunAnswer{}, runError{http.StatusNotFound, msg}
	case errors.Is(err, replication.ErrJobRunning):
		return ReplicationRunAnswer{}, runError{http.StatusConflict, "push policy " + strconv.Quote(name) + ": " + err.Error()}
	case err != nil:
		return ReplicationRunAnswer{}, runError{http.StatusConflict, "push policy " + strconv.Quote(name) + " cannot run: " + err.Error()}
	}
	return ReplicationRunAnswer{Policy: name, Job: job}, nil
}

// handleReplicationRun serves `clusterctl replication run NAME`: the
// leader runs push jobs, so a follower forwards to it.
func (n *Node) handleReplicationRun(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ans, err := n.runPushHere(name)
	var nl *NotLeaderError
	if errors.As(err, &nl) {
		err = n.forwardGC(r.Context(), "POST", "replication/run/"+name, &ans)
	}
	if err != nil {
		adminError(w, httperr.Status(err), err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, ans)
}

// handleInternalReplicationRun runs a job a follower forwarded; it never
// forwards again (not leading is errNotSent: the follower tries anew).
func (n *Node) handleInternalReplicationRun(w http.ResponseWriter, r *http.Request) {
	ans, err := n.runPushHere(r.PathValue("name"))
	if err != nil {
		internalGCError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}
