package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/events/webhook"
	"github.com/berth-registry/berth/fsm/resource"
	"github.com/berth-registry/berth/node/httperr"
)

// Bounds of GET /admin/v1/events: without follow at most
// defaultEventsLimit events unless ?limit= says otherwise, and never more
// than maxEventsLimit, so one request cannot stream the whole history
// by accident.
const (
	defaultEventsLimit = 10000
	maxEventsLimit     = 1000000
	eventsFetchBatch   = 256
)

var shortTypeRE = regexp.MustCompile(`^[a-z]+(\.[a-z]+)+$`)

// eventsQuery is a parsed GET /admin/v1/events.
type eventsQuery struct {
	repo   string // doublestar glob; "" means every event
	typ    string // short type; "" means every type
	actor  string // exact actor (audit); "" means everyone
	since  uint64
	follow bool
	limit  int // 0: unbounded (follow without limit)
}

func parseEventsQuery(r *http.Request) (eventsQuery, error) {
	q := r.URL.Query()
	e := eventsQuery{repo: q.Get("repo"), typ: events.ShortType(q.Get("type")), actor: q.Get("actor")}
	if len(e.actor) > 256 {
		return e, httperr.Errorf(http.StatusBadRequest, "actor: at most 256 bytes")
	}
	if e.repo != "" && !doublestar.ValidatePattern(e.repo) {
		return e, httperr.Errorf(http.StatusBadRequest, "repo %q is not a valid glob (like team-a/** or library/*)", e.repo)
	}
	if e.typ != "" && !shortTypeRE.MatchString(e.typ) {
		return e, httperr.Errorf(http.StatusBadRequest, "type %q is not an event type like manifest.pushed or dev.berth.tag.deleted", q.Get("type"))
	}
	if s := q.Get("since"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return e, httperr.Errorf(http.StatusBadRequest, "since %q is not a log index (a number >= 0)", s)
		}
		e.since = v
	}
	switch f := q.Get("follow"); f {
	case "", "false":
	case "true":
		e.follow = true
	default:
		return e, httperr.Errorf(http.StatusBadRequest, "follow %q must be true or false", f)
	}
	if !e.follow {
		e.limit = defaultEventsLimit
	}
	if q.Get("limit") != "" {
		v, err := queryLimit(q, defaultEventsLimit, maxEventsLimit)
		if err != nil {
			return e, err
		}
		e.limit = v
	}
	return e, nil
}

func (e eventsQuery) wants(ce events.CloudEvent) bool {
	if e.typ != "" && events.ShortType(ce.Type) != e.typ {
		return false
	}
	if e.actor != "" && ce.Data.Actor != e.actor {
		return false
	}
	if e.repo == "" {
		return true
	}
	return ce.Data.Repository != "" && resource.MatchRepository([]string{e.repo}, ce.Data.Repository)
}

// handleEventStream writes the events stream as NDJSON CloudEvents, from
// the first event whose index is at least since. Without follow it stops
// at the end of the stream as it was when the request came; with follow
// it flushes each event as it arrives until the client goes away.
func (n *Node) handleEventStream(w http.ResponseWriter, r *http.Request) {
	q, err := parseEventsQuery(r)
	if err != nil {
		adminError(w, httperr.Status(err), err.Error())
		return
	}
	if n.events == nil {
		adminError(w, http.StatusConflict, errEventsOff.Error())
		return
	}
	ctx := r.Context()
	js := n.events.broker.JetStream()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	stream, err := js.Stream(sctx, n.cfg.Events.Stream)
	var seq uint64
	if err == nil {
		seq, err = webhook.SeqForIndex(sctx, stream, q.since)
	}
	// The server removes the consumer once the request stops pulling.
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: max(seq, 1), InactiveThreshold: 30 * time.Second}
	if q.typ != "" {
		cfg.FilterSubjects = []string{events.SubjectPrefix + "." + strings.ReplaceAll(q.typ, ".", "_") + ".>"}
	}
	var cons jetstream.Consumer
	var pending uint64
	if err == nil {
		cons, err = stream.OrderedConsumer(sctx, cfg)
	}
	if err == nil {
		var info *jetstream.ConsumerInfo
		if info, err = cons.Info(sctx); err == nil {
			pending = info.NumPending
		}
	}
	cancel()
	if err != nil {
		adminError(w, http.StatusServiceUnavailable, "read the event stream "+n.cfg.Events.Stream+" from NATS: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	write := func(data []byte) bool {
		var ce events.CloudEvent
		if json.Unmarshal(data, &ce) != nil || !q.wants(ce) {
			return false
		}
		var line bytes.Buffer
		if json.Compact(&line, data) != nil {
			return false
		}
		line.WriteByte('\n')
		bw.Write(line.Bytes())
		return true
	}
	written := 0
	if !q.follow {
		for pending > 0 && written < q.limit && ctx.Err() == nil {
			batch, err := cons.Fetch(int(min(pending, eventsFetchBatch)), jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				n.logger.Warn("events: reading the stream failed", "err", err)
				return
			}
			got := 0
			for msg := range batch.Messages() {
				got++
				pending--
				if written < q.limit && write(msg.Data()) {
					written++
				}
			}
			if got == 0 {
				return // messages removed by the stream's limits since we looked
			}
		}
		return
	}
	bw.Flush()
	rc.Flush()
	it, err := cons.Messages()
	if err != nil {
		n.logger.Warn("events: following the stream failed", "err", err)
		return
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for q.limit == 0 || written < q.limit {
		msg, err := it.Next()
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() == nil {
				n.logger.Warn("events: following the stream failed", "err", err)
			}
			return
		}
		if write(msg.Data()) {
			written++
			if bw.Flush() != nil || rc.Flush() != nil {
				return
			}
		}
	}
}
