package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamEvent is one message of Berth's event stream as a consumer sees it.
type StreamEvent struct {
	ID    string // the CloudEvent id and Nats-Msg-Id, "<cluster id>:<index>"
	Index uint64 // the Berth-Index header
	Type  string
	Repo  string // data.repository
}

// ReadEvents reads every message of the stream, in stream order. opts
// authenticate (nats.Token, nats.UserCredentials).
func ReadEvents(ctx context.Context, urls []string, stream string, opts ...nats.Option) ([]StreamEvent, error) {
	nc, err := nats.Connect(strings.Join(urls, ","), append(opts, nats.Timeout(5*time.Second))...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []StreamEvent
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", seq, err)
		}
		var ce struct {
			ID   string `json:"id"`
			Type string `json:"type"`
			Data struct {
				Repository string `json:"repository"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data, &ce); err != nil {
			return nil, fmt.Errorf("message %d is not a CloudEvent: %w", seq, err)
		}
		if strings.HasSuffix(ce.Type, ".pulled") {
			// Pull events are not in the log: no index (events/pulls).
			if m.Header.Get("Nats-Msg-Id") != ce.ID || m.Header.Get("Berth-Index") != "" {
				return nil, fmt.Errorf("message %d: pull event %q has Nats-Msg-Id %q and Berth-Index %q", seq, ce.ID, m.Header.Get("Nats-Msg-Id"), m.Header.Get("Berth-Index"))
			}
			out = append(out, StreamEvent{ID: ce.ID, Type: ce.Type, Repo: ce.Data.Repository})
			continue
		}
		idx, err := strconv.ParseUint(m.Header.Get("Berth-Index"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("message %d: Berth-Index: %w", seq, err)
		}
		if m.Header.Get("Nats-Msg-Id") != ce.ID || !strings.HasSuffix(ce.ID, ":"+strconv.FormatUint(idx, 10)) {
			return nil, fmt.Errorf("message %d: Nats-Msg-Id %q, id %q and Berth-Index %d disagree", seq, m.Header.Get("Nats-Msg-Id"), ce.ID, idx)
		}
		out = append(out, StreamEvent{ID: ce.ID, Index: idx, Type: ce.Type, Repo: ce.Data.Repository})
	}
	return out, nil
}

// CheckEvents compares the manifest.pushed events of a stream, of the
// repositories under repoPrefix, with the acknowledged pushes: every acknowledged index is published exactly once,
// all under one cluster ID, in index order, and any other push event is
// one of at most maxInFlight pushes that were in flight at a kill (they
// may have committed without their answer reaching the client).
func CheckEvents(t testing.TB, got []StreamEvent, repoPrefix string, acked []uint64, maxInFlight int) {
	t.Helper()
	seen := map[uint64]int{}
	cluster := ""
	var last uint64
	for _, e := range got {
		if e.Type != "dev.berth.manifest.pushed" || !strings.HasPrefix(e.Repo, repoPrefix) {
			continue
		}
		seen[e.Index]++
		c, _, _ := strings.Cut(e.ID, ":")
		if cluster == "" {
			cluster = c
		} else if c != cluster {
			t.Errorf("event %s: cluster id changed from %s", e.ID, cluster)
		}
		if e.Index <= last {
			t.Errorf("event %s out of order after index %d", e.ID, last)
		}
		last = e.Index
	}
	extra := len(seen)
	var missing []uint64
	for _, i := range acked {
		if seen[i] == 0 {
			missing = append(missing, i)
		} else {
			extra--
		}
	}
	for i, n := range seen {
		if n > 1 {
			t.Errorf("index %d is in the stream %d times", i, n)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	if len(missing) > 0 {
		t.Errorf("%d of %d acknowledged pushes have no event: indexes %v", len(missing), len(acked), missing)
	}
	if extra > maxInFlight {
		t.Errorf("%d push events match no acknowledged push (at most %d were in flight)", extra, maxInFlight)
	}
	t.Logf("EVENTS: %d acknowledged pushes, %d push events in the stream (%d from in-flight pushes), cluster %s", len(acked), len(seen), extra, cluster)
}
