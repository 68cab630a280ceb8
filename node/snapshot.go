package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/node/httperr"
)

// A backup file is one JSON header line followed by the FSM's own snapshot
// stream. The header carries the Raft index and term the state reflects, so
// a restore into a fresh cluster starts its log after them.
type backupHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Index   uint64 `json:"index"`
	Term    uint64 `json:"term"`
	Node    string `json:"node"`
	Time    string `json:"time"`
}

const backupFormat = "berth-snapshot"

// handleSnapshotSave streams a point-in-time copy of the state. It is
// taken from this node's FSM after a read-index barrier, so it holds every
// write acknowledged before the request.
func (n *Node) handleSnapshotSave(w http.ResponseWriter, r *http.Request) {
	if _, err := n.ReadView(r.Context()); err != nil {
		adminError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	snap, err := n.fsm.Snapshot()
	if err != nil {
		adminError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer snap.Release()
	hdr := backupHeader{
		Format: backupFormat, Version: 1,
		Index: n.fsm.AppliedIndex(), Term: n.raft.raft.CurrentTerm(),
		Node: n.cfg.Node.ID, Time: time.Now().UTC().Format(time.RFC3339),
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	b, _ := json.Marshal(hdr)
	if _, err := w.Write(append(b, '\n')); err != nil {
		return
	}
	sink := &writerSink{w: w}
	if err := snap.Persist(sink); err != nil {
		// Headers are gone: all we can do is cut the stream short, which
		// the client sees as a truncated file and a failed restore.
		n.logger.Error("snapshot stream failed", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// handleSnapshotRestore replaces the whole cluster's state with a backup.
// It must run on the leader, which then ships the state to followers.
func (n *Node) handleSnapshotRestore(w http.ResponseWriter, r *http.Request) {
	if n.raft.raft.State() != raft.Leader {
		if err := n.forwardRestore(r.Context(), r.Body); err != nil {
			adminError(w, httperr.Status(err), err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"restored": "ok"})
		return
	}
	if err := n.restore(r.Body); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"restored": "ok"})
}

func (n *Node) restore(body io.Reader) error {
	br := bufio.NewReader(body)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read backup header: %w", err)
	}
	var hdr backupHeader
	if err := json.Unmarshal(line, &hdr); err != nil || hdr.Format != backupFormat {
		return errors.New("not a Berth snapshot file (missing berth-snapshot header)")
	}
	if hdr.Version != 1 {
		return fmt.Errorf("snapshot file version %d is newer than this node understands", hdr.Version)
	}
	// Raft wants the size up front; spool the state to the data dir.
	tmp, err := os.CreateTemp(n.cfg.Storage.DataDir, "restore-*")
	if err != nil {
		return fmt.Errorf("spool backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	size, err := io.Copy(tmp, br)
	if err != nil {
		return fmt.Errorf("spool backup: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: hdr.Index, Term: max(hdr.Term, 1), Size: size}
	if err := n.raft.raft.Restore(meta, tmp, 5*time.Minute); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	n.logger.Info("restored state from backup", "index", hdr.Index, "from", hdr.Node, "taken", hdr.Time)
	return nil
}

func (n *Node) forwardRestore(ctx context.Context, body io.Reader) error {
	leader, err := n.engine.Leader()
	if err != nil {
		return err
	}
	leaderID := leader.ID
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+leader.APIAddr+internalPrefix+"restore", body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+n.cfg.Cluster.secret)
	resp, err := n.peers.http.Do(req)
	if err != nil {
		if isDialError(err) {
			return fmt.Errorf("%w: forward restore to leader %s: %v", errNotSent, leaderID, err)
		}
		return fmt.Errorf("forward restore to leader %s: %w", leaderID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if err := peerError(resp, "restore on leader "+leaderID, b); err != nil {
			return err
		}
		return fmt.Errorf("leader %s: %s", leaderID, peerMessage(b))
	}
	return nil
}

func (n *Node) handleInternalRestore(w http.ResponseWriter, r *http.Request) {
	if n.raft.raft.State() != raft.Leader {
		httperr.Write(w, http.StatusConflict, "not the leader")
		return
	}
	if err := n.restore(r.Body); err != nil {
		httperr.Write(w, http.StatusBadRequest, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writerSink adapts an io.Writer to raft.SnapshotSink for FSMSnapshot.Persist.
type writerSink struct{ w io.Writer }

func (s *writerSink) Write(p []byte) (int, error) { return s.w.Write(p) }
func (s *writerSink) Close() error                { return nil }
func (s *writerSink) ID() string                  { return "backup" }
func (s *writerSink) Cancel() error               { return nil }
