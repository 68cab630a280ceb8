package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// deliveryRecord mirrors webhook.DeliveryRecord as the admin API answers it.
type deliveryRecord struct {
	Webhook string        `json:"webhook"`
	EventID string        `json:"eventId"`
	Index   uint64        `json:"index"`
	Attempt int           `json:"attempt"`
	Status  int           `json:"status"`
	Latency time.Duration `json:"latency"`
	Error   string        `json:"error,omitempty"`
	Time    time.Time     `json:"time"`
}

func (r deliveryRecord) ok() bool { return r.Error == "" && r.Status >= 200 && r.Status < 300 }

// deadLetter mirrors webhook.DeadLetter.
type deadLetter struct {
	Webhook   string          `json:"webhook"`
	EventID   string          `json:"eventId"`
	Index     uint64          `json:"index"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"lastError"`
	Time      time.Time       `json:"time"`
	Event     json.RawMessage `json:"event"`
}

// redeliverAnswer mirrors node.RedeliverAnswer.
type redeliverAnswer struct {
	Webhook     string `json:"webhook"`
	From        uint64 `json:"from,omitempty"`
	Sequence    uint64 `json:"sequence,omitempty"`
	DeadLetters *struct {
		Delivered    int `json:"delivered"`
		DeadLettered int `json:"deadLettered"`
	} `json:"deadLetters,omitempty"`
}

func webhookPath(name, action string) string {
	return "/admin/v1/webhooks/" + url.PathEscape(name) + "/" + action
}

func webhookCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Inspect and drive webhook delivery: deliveries, dead-letters, redeliver, test",
	}
	cmd.AddCommand(webhookListCmd(g, "deliveries", "Show a webhook's recent delivery attempts (newest last)", 20),
		webhookListCmd(g, "dead-letters", "Show the events a webhook gave up on after maxDeliveries attempts", 100),
		webhookRedeliverCmd(g), webhookTestCmd(g))
	return cmd
}

func webhookListCmd(g *globals, what, short string, def int) *cobra.Command {
	var (
		output string
		limit  int
	)
	cmd := &cobra.Command{
		Use:               what + " NAME",
		Short:             short,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNamesOf(g, "Webhook"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "json"); err != nil {
				return err
			}
			path := webhookPath(args[0], what) + "?limit=" + strconv.Itoa(limit)
			w := cmd.OutOrStdout()
			if what == "deliveries" {
				var recs []deliveryRecord
				if err := g.call(cmd.Context(), "GET", path, nil, &recs); err != nil {
					return err
				}
				if output == "json" {
					return printJSON(w, recs)
				}
				printDeliveries(w, recs)
				return nil
			}
			var dls []deadLetter
			if err := g.call(cmd.Context(), "GET", path, nil, &dls); err != nil {
				return err
			}
			if output == "json" {
				return printJSON(w, dls)
			}
			printDeadLetters(w, dls)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json (default: table)")
	cmd.Flags().IntVar(&limit, "limit", def, "at most this many entries")
	return cmd
}

func printDeliveries(w io.Writer, recs []deliveryRecord) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "No delivery attempts recorded.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tINDEX\tATTEMPT\tSTATUS\tLATENCY\tERROR")
	for _, r := range recs {
		status := "-"
		if r.Status != 0 {
			status = strconv.Itoa(r.Status)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339), r.EventID, r.Index, r.Attempt,
			status, r.Latency.Round(time.Millisecond), orDash(r.Error))
	}
	tw.Flush()
}

func printDeadLetters(w io.Writer, dls []deadLetter) {
	if len(dls) == 0 {
		fmt.Fprintln(w, "No dead letters.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tINDEX\tATTEMPTS\tLAST-ERROR")
	for _, d := range dls {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", d.Time.UTC().Format(time.RFC3339), d.EventID, d.Index, d.Attempts, orDash(d.LastError))
	}
	tw.Flush()
}

func webhookRedeliverCmd(g *globals) *cobra.Command {
	var (
		output      string
		from        uint64
		deadLetters bool
	)
	cmd := &cobra.Command{
		Use:   "redeliver NAME (--from INDEX | --dead-letters)",
		Short: "Replay a webhook's events from a log index, or retry its dead letters",
		Long: `redeliver --from INDEX restarts the webhook's delivery at the first event
whose log index is at least INDEX (events already delivered are sent again:
receivers deduplicate by id). redeliver --dead-letters sends every dead
letter once more, in order; those that fail again stay dead letters.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNamesOf(g, "Webhook"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "json"); err != nil {
				return err
			}
			fromSet := cmd.Flags().Changed("from")
			if fromSet == deadLetters {
				return errors.New("give exactly one of --from INDEX or --dead-letters")
			}
			q := url.Values{}
			if deadLetters {
				q.Set("deadLetters", "true")
			} else {
				q.Set("from", strconv.FormatUint(from, 10))
			}
			var ans redeliverAnswer
			if err := g.call(cmd.Context(), "POST", webhookPath(args[0], "redeliver")+"?"+q.Encode(), nil, &ans); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				return printJSON(w, ans)
			}
			if ans.DeadLetters != nil {
				fmt.Fprintf(w, "webhook/%s: %d dead letters delivered, %d failed again (still dead letters)\n",
					ans.Webhook, ans.DeadLetters.Delivered, ans.DeadLetters.DeadLettered)
				if ans.DeadLetters.DeadLettered > 0 {
					return fmt.Errorf("%d dead letters of webhook %s failed again", ans.DeadLetters.DeadLettered, ans.Webhook)
				}
				return nil
			}
			fmt.Fprintf(w, "webhook/%s: redelivering from index %d (stream sequence %d)\n", ans.Webhook, ans.From, ans.Sequence)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json (default: text)")
	cmd.Flags().Uint64Var(&from, "from", 0, "replay from this log index")
	cmd.Flags().BoolVar(&deadLetters, "dead-letters", false, "retry the dead letters")
	return cmd
}

func webhookTestCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:               "test NAME",
		Short:             "Send a dev.berth.ping event to a webhook now and show the answer",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNamesOf(g, "Webhook"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "json"); err != nil {
				return err
			}
			var rec deliveryRecord
			if err := g.call(cmd.Context(), "POST", webhookPath(args[0], "test"), nil, &rec); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				if err := printJSON(w, rec); err != nil {
					return err
				}
			} else if rec.ok() {
				fmt.Fprintf(w, "webhook/%s: ping %s delivered: %d in %s\n", args[0], rec.EventID, rec.Status, rec.Latency.Round(time.Millisecond))
			}
			if !rec.ok() {
				return fmt.Errorf("webhook/%s: ping %s failed: status %d: %s", args[0], rec.EventID, rec.Status, orDash(rec.Error))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json (default: text)")
	return cmd
}
