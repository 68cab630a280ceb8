package node

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/berth-registry/berth/node/admin"
	"github.com/berth-registry/berth/node/httperr"
)

// clusterAdmin serves the membership part of the admin API that clusterctl
// uses: status, members, join, leave, remove, transfer-leader and snapshots.
// It shares the admin token with node/admin.
func (n *Node) clusterAdmin() http.Handler {
	mux := http.NewServeMux()
	const p = "/admin/v1/cluster/"
	mux.HandleFunc("GET "+p+"status", func(w http.ResponseWriter, r *http.Request) {
		leader, nodes := n.ClusterStatus(r.Context())
		// The mode as this node applied it; each node's own view is in
		// nodes[].readOnly.
		writeJSON(w, http.StatusOK, map[string]any{"leader": leader, "nodes": nodes, "readOnly": n.readOnly()})
	})
	mux.HandleFunc("GET "+p+"members", func(w http.ResponseWriter, r *http.Request) {
		if n.members == nil {
			writeJSON(w, http.StatusOK, []Member{{Meta: Meta{ID: n.cfg.Node.ID, APIAddr: n.apiAdvertise(), Region: n.cfg.Node.Region, Version: n.version}, State: "alive"}})
			return
		}
		writeJSON(w, http.StatusOK, n.members.Members())
	})
	mux.HandleFunc("POST "+p+"join", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Addrs []string `json:"addrs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Addrs) == 0 {
			adminError(w, http.StatusBadRequest, `body must be {"addrs": ["host:gossip-port", ...]}`)
			return
		}
		k, err := n.Join(req.Addrs)
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"contacted": k})
	})
	mux.HandleFunc("POST "+p+"leave", func(w http.ResponseWriter, r *http.Request) {
		if err := n.Leave(r.Context()); err != nil {
			adminError(w, http.StatusConflict, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"left": n.cfg.Node.ID})
	})
	mux.HandleFunc("POST "+p+"remove", func(w http.ResponseWriter, r *http.Request) {
		id, ok := readID(w, r, true)
		if !ok {
			return
		}
		if err := n.removeServer(id); err != nil {
			adminError(w, httperr.Status(err), err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"removed": id})
	})
	mux.HandleFunc("POST "+p+"transfer-leader", func(w http.ResponseWriter, r *http.Request) {
		id, ok := readID(w, r, false)
		if !ok {
			return
		}
		if err := n.transferLeadership(id); err != nil {
			adminError(w, httperr.Status(err), err.Error())
			return
		}
		// Report who leads now, once the new leader is known.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if _, l := n.raft.raft.LeaderWithID(); l != "" && (id == "" || string(l) == id) {
				writeJSON(w, http.StatusOK, map[string]string{"leader": string(l)})
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		_, l := n.raft.raft.LeaderWithID()
		writeJSON(w, http.StatusOK, map[string]string{"leader": string(l)})
	})
	mux.HandleFunc("GET "+p+"snapshot", n.handleSnapshotSave)
	mux.HandleFunc("POST "+p+"snapshot", n.handleSnapshotRestore)
	return admin.Guard(n.token).Wrap(mux)
}

func readID(w http.ResponseWriter, r *http.Request, required bool) (string, bool) {
	var req struct {
		ID string `json:"id"`
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
	if len(b) > 0 {
		if err := json.Unmarshal(b, &req); err != nil {
			adminError(w, http.StatusBadRequest, `body must be {"id": "NODE"}`)
			return "", false
		}
	}
	if required && req.ID == "" {
		adminError(w, http.StatusBadRequest, "a node id is required")
		return "", false
	}
	return req.ID, true
}

func adminError(w http.ResponseWriter, code int, msg string) { httperr.Write(w, code, msg) }
