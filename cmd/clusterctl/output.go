package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"
)

// field digs a value out of a decoded resource by dotted path.
func field(doc map[string]any, path string) any {
	var cur any = doc
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func str(doc map[string]any, path string) string {
	switch v := field(doc, path).(type) {
	case nil:
		return ""
	case float64:
		return fmt.Sprintf("%d", int64(v))
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%v", k, v[k])
		}
		return strings.Join(parts, ",")
	default:
		return fmt.Sprint(v)
	}
}

// age renders how long ago an RFC 3339 timestamp was, kubectl style.
func age(ts string, now time.Time) string {
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return "<unknown>"
	}
	d := now.Sub(t)
	switch {
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printList(w io.Writer, items []map[string]any, output string) error {
	switch output {
	case "json":
		return printJSON(w, map[string]any{"items": items})
	case "yaml":
		for i, it := range items {
			if i > 0 {
				fmt.Fprintln(w, "---")
			}
			enc := yaml.NewEncoder(w)
			enc.SetIndent(2)
			if err := enc.Encode(it); err != nil {
				return err
			}
		}
		return nil
	}
	if len(items) == 0 {
		fmt.Fprintln(w, "No resources found.")
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	if output == "wide" {
		fmt.Fprintln(tw, "NAME\tTYPE\tURL\tENABLED\tGENERATION\tAGE\tINSECURE\tCREDENTIALS\tLABELS\tCREATED\tDESCRIPTION")
	} else {
		fmt.Fprintln(tw, "NAME\tTYPE\tURL\tENABLED\tGENERATION\tAGE")
	}
	for _, it := range items {
		row := []string{str(it, "metadata.name"), str(it, "spec.type"), str(it, "spec.url"), str(it, "spec.enabled"),
			str(it, "metadata.generation"), age(str(it, "metadata.updateTimestamp"), now)}
		if output == "wide" {
			row = append(row, orDash(str(it, "spec.insecure")), orDash(str(it, "spec.credentials.type")),
				orDash(str(it, "metadata.labels")), str(it, "metadata.creationTimestamp"), orDash(str(it, "spec.description")))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func printOne(w io.Writer, doc map[string]any, output string) error {
	switch output {
	case "json":
		return printJSON(w, doc)
	case "yaml":
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		return enc.Encode(doc)
	case "wide":
		return printList(w, []map[string]any{doc}, "wide")
	}
	kind := str(doc, "kind")
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "%s Details\n", kind)
	for _, row := range [][2]string{
		{"Name:", str(doc, "metadata.name")},
		{"Type:", str(doc, "spec.type")},
		{"URL:", str(doc, "spec.url")},
		{"Enabled:", str(doc, "spec.enabled")},
		{"Insecure:", orDash(str(doc, "spec.insecure"))},
		{"Credentials:", orDash(str(doc, "spec.credentials.type"))},
		{"Description:", orDash(str(doc, "spec.description"))},
		{"Labels:", orDash(str(doc, "metadata.labels"))},
		{"Generation:", str(doc, "metadata.generation")},
		{"Created:", str(doc, "metadata.creationTimestamp")},
		{"Updated:", str(doc, "metadata.updateTimestamp")},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}
