package node

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/berth-registry/berth/node/admin"
	"github.com/berth-registry/berth/replication"
)

// ReplicationStatusAnswer is GET /admin/v1/replication/status: every mirror
// policy as the leader runs it.
type ReplicationStatusAnswer struct {
	// Leader says the numbers come from the leader, which runs the
	// mirrors; false means only the committed cursors were known.
	Leader   bool                 `json:"leader"`
	Policies []replication.Status `json:"policies"`
}

// replicationAdmin serves `clusterctl replication status`, behind the
// admin token. The mirrors run on the leader, so a follower forwards.
func (n *Node) replicationAdmin() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/v1/replication/status", func(w http.ResponseWriter, r *http.Request) {
		ans := n.replicationAnswer(r.Context(), true)
		if name := r.URL.Query().Get("name"); name != "" {
			var one []replication.Status
			for _, st := range ans.Policies {
				if st.Policy == name {
					one = append(one, st)
				}
			}
			if len(one) == 0 {
				adminError(w, http.StatusNotFound, "no replication policy "+strconv.Quote(name)+" (clusterctl get replicationpolicies lists them; only enabled mirror and push policies have a status)")
				return
			}
			ans.Policies = one
		}
		writeJSON(w, http.StatusOK, ans)
	})
	mux.HandleFunc("POST /admin/v1/replication/run/{name}", n.handleReplicationRun)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusNotFound, "no admin endpoint "+r.Method+" "+r.URL.Path)
	})
	return admin.Guard(n.token).Wrap(mux)
}

// replicationAnswer is the leader's status; a follower asks the leader
// when forward is set and falls back to its own cursors.
func (n *Node) replicationAnswer(ctx context.Context, forward bool) ReplicationStatusAnswer {
	n.repl.mu.Lock()
	leading := n.repl.cur != nil || n.repl.push != nil
	n.repl.mu.Unlock()
	if !leading && forward && n.peers != nil {
		if leader, err := n.engine.Leader(); err == nil {
			fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			var ans ReplicationStatusAnswer
			if err := n.peers.do(fctx, "GET", leader.APIAddr, "replication/status", nil, &ans); err == nil {
				return ans
			}
		}
	}
	all := append(append(n.replicationStatus(ctx), n.pushStatus(ctx)...), n.proxyStatus(ctx)...)
	sort.Slice(all, func(i, j int) bool { return all[i].Policy < all[j].Policy })
	return ReplicationStatusAnswer{Leader: leading, Policies: all}
}

func (n *Node) handleInternalReplication(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.replicationAnswer(r.Context(), false))
}
