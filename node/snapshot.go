package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/fsm"
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

// maxBackupHeader bounds the backup header line: a foreign file without
// newlines is refused after this many bytes instead of being buffered.
const maxBackupHeader = 64 << 10

// handleSnapshotSave streams a point-in-time copy of the state. It is
// taken from this node's FSM after a read-index barrier, so it holds every
// write acknowledged before the request. The header's index comes with the
// rows from one FSM step (SnapshotAt): a restore resumes the log exactly
// after the state it installs.
func (n *Node) handleSnapshotSave(w http.ResponseWriter, r *http.Request) {
	if _, err := n.ReadView(r.Context()); err != nil {
		adminError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	snap, index := n.fsm.SnapshotAt()
	defer snap.Release()
	hdr := backupHeader{
		Format: backupFormat, Version: 1,
		Index: index, Term: n.raft.raft.CurrentTerm(),
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

// restoreError carries the HTTP status of a refused restore.
type restoreError struct {
	code int
	msg  string
}

func (e *restoreError) Error() string { return e.msg }

func restoreStatus(err error) int {
	var re *restoreError
	if errors.As(err, &re) {
		return re.code
	}
	return httperr.Status(err)
}

// parseForce reads the force query parameter of a restore.
func parseForce(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("force")
	if v == "" {
		return false, nil
	}
	force, err := strconv.ParseBool(v)
	if err != nil {
		return false, &restoreError{http.StatusBadRequest, fmt.Sprintf("force=%q is not true or false", v)}
	}
	return force, nil
}

// handleSnapshotRestore replaces the whole cluster's state with a backup.
// It must run on the leader, which then ships the state to followers.
func (n *Node) handleSnapshotRestore(w http.ResponseWriter, r *http.Request) {
	force, err := parseForce(r)
	if err == nil {
		if n.raft.raft.State() != raft.Leader {
			err = n.forwardRestore(r.Context(), r.Body, force)
		} else {
			err = n.restore(r.Context(), r.Body, force)
		}
	}
	if err != nil {
		adminError(w, restoreStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"restored": "ok"})
}

// restore checks a whole backup before Raft sees any of it: Raft saves
// the snapshot first and panics if the FSM then refuses it, and a node
// whose newest snapshots are bad can never start again. So a damaged,
// truncated or foreign file, or a header Raft would choke on, is refused
// here with the state untouched.
func (n *Node) restore(ctx context.Context, body io.Reader, force bool) error {
	br := bufio.NewReaderSize(body, maxBackupHeader)
	line, err := br.ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read backup header: %w", err)
	}
	var hdr backupHeader
	if err != nil || json.Unmarshal(line, &hdr) != nil || hdr.Format != backupFormat {
		return &restoreError{http.StatusBadRequest, "not a Berth snapshot file (no berth-snapshot header line): pass a file written by clusterctl snapshot save"}
	}
	switch {
	case hdr.Version != 1:
		return &restoreError{http.StatusBadRequest, fmt.Sprintf("snapshot file version %d is not one this node reads (1): a newer Berth wrote it, upgrade this node", hdr.Version)}
	case hdr.Index > fsm.MaxIndex || hdr.Term > fsm.MaxIndex:
		return &restoreError{http.StatusBadRequest, fmt.Sprintf("backup header index %d, term %d are beyond any real log: the file is damaged", hdr.Index, hdr.Term)}
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
	info, err := fsm.CheckSnapshot(tmp)
	if err != nil {
		return &restoreError{http.StatusBadRequest, fmt.Sprintf("backup is damaged or incomplete, nothing was restored: %v", err)}
	}
	if info.Index > hdr.Index {
		return &restoreError{http.StatusBadRequest, fmt.Sprintf("backup header index %d is below the index %d of its state: the file is damaged", hdr.Index, info.Index)}
	}
	// The file first, then the state it would replace: a damaged file
	// says so whether or not --force was given.
	if !force {
		v, err := n.ReadView(ctx)
		if err != nil {
			return err
		}
		if !v.Empty() {
			return &restoreError{http.StatusConflict, "the cluster already holds repositories or resources, and a restore replaces all of it: restore into a fresh cluster, or pass --force (force=true) to overwrite"}
		}
	}
	if info.Version < 2 {
		n.logger.Warn("restoring a version 1 backup: it has no checksum, so a file cut between rows cannot be detected", "rows", info.Rows)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: hdr.Index, Term: max(hdr.Term, 1), Size: size}
	if err := n.raft.raft.Restore(meta, tmp, 5*time.Minute); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	n.logger.Info("restored state from backup", "index", hdr.Index, "from", hdr.Node, "taken", hdr.Time, "rows", info.Rows, "forced", force)
	return nil
}

func (n *Node) forwardRestore(ctx context.Context, body io.Reader, force bool) error {
	leader, err := n.engine.Leader()
	if err != nil {
		return err
	}
	leaderID := leader.ID
	req, err := http.NewRequestWithContext(ctx, "POST", n.peers.url(leader.APIAddr, "restore?force="+strconv.FormatBool(force)), body)
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
		code := http.StatusBadGateway
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusConflict {
			code = resp.StatusCode // the leader refused the file or the state: pass its answer on
		}
		return &restoreError{code, fmt.Sprintf("leader %s: %s", leaderID, bytes.TrimSpace(b))}
	}
	return nil
}

func (n *Node) handleInternalRestore(w http.ResponseWriter, r *http.Request) {
	if n.raft.raft.State() != raft.Leader {
		httperr.Write(w, http.StatusConflict, "not the leader")
		return
	}
	force, err := parseForce(r)
	if err == nil {
		err = n.restore(r.Context(), r.Body, force)
	}
	if err != nil {
		httperr.Write(w, restoreStatus(err), err.Error())
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
