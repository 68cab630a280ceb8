package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// streamedEvent is the part of a CloudEvent the table shows.
type streamedEvent struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	Subject string    `json:"subject"`
	Data    struct {
		Index     uint64 `json:"index"`
		Actor     string `json:"actor"`
		UserAgent string `json:"userAgent"`
	} `json:"data"`
}

// maxEventLine bounds one NDJSON line; events are small.
const maxEventLine = 1 << 20

func eventsCmd(g *globals) *cobra.Command {
	var (
		output, repo, typ, actor string
		since                    uint64
		follow                   bool
		limit                    int
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print the registry's events from the event stream (NATS JetStream)",
		Long: `events prints committed events (CloudEvents) from the event stream, oldest
first, starting at log index --since. Without --follow it stops at the end of
the stream (at most 10000 events unless --limit); with --follow it keeps
printing new events as they are published, until Ctrl-C.

-o json prints each event as one line of JSON (NDJSON).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "json"); err != nil {
				return err
			}
			q := url.Values{}
			if repo != "" {
				q.Set("repo", repo)
			}
			if typ != "" {
				q.Set("type", typ)
			}
			if actor != "" {
				q.Set("actor", actor)
			}
			q.Set("since", strconv.FormatUint(since, 10))
			if follow {
				q.Set("follow", "true")
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			return streamEvents(cmd.Context(), g, "/admin/v1/events?"+q.Encode(), cmd.OutOrStdout(), output == "json", follow)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "", "output format: json (one event per line; default: table)")
	f.StringVar(&repo, "repo", "", "only events of repositories matching this glob (team-a/**)")
	f.StringVar(&typ, "type", "", "only events of this type (manifest.pushed, tag.deleted, ...)")
	f.StringVar(&actor, "actor", "", "only events caused by this actor (alice, robot:ci, berth:admin)")
	f.Uint64Var(&since, "since", 0, "start at this log index")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new events until Ctrl-C")
	f.IntVar(&limit, "limit", 0, "stop after this many events")
	return cmd
}

// streamEvents prints the NDJSON answer line by line as it arrives, so
// that --follow shows each event at once. Ctrl-C ends it without error.
func streamEvents(ctx context.Context, g *globals, path string, w io.Writer, raw, follow bool) error {
	timeout := 30 * time.Minute
	if follow {
		timeout = 0 // until Ctrl-C
	}
	resp, err := g.doTimeout(ctx, "GET", path, nil, timeout)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return serverError(resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	const row = "%-8s  %-20s  %-20s  %-40s  %s\n"
	if !raw {
		fmt.Fprintf(w, row, "INDEX", "TIME", "TYPE", "SUBJECT", "ACTOR/USER-AGENT")
	}
	for sc.Scan() {
		line := sc.Bytes()
		if raw {
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		var ev streamedEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("unexpected event line from server: %w", err)
		}
		who := ev.Data.Actor
		if ev.Data.UserAgent != "" {
			who = strings.TrimPrefix(who+" / "+ev.Data.UserAgent, " / ")
		}
		fmt.Fprintf(w, row, strconv.FormatUint(ev.Data.Index, 10), ev.Time.UTC().Format(time.RFC3339),
			strings.TrimPrefix(ev.Type, "dev.berth."), orDash(ev.Subject), orDash(who))
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read events: %w", err)
	}
	return nil // Ctrl-C ends --follow without an error
}
