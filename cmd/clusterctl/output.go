package main

import (
	"encoding/json"
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

// str renders a field for a table cell: numbers without a decimal point,
// mappings as k=v,k=v sorted, nothing as "".
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age renders how long ago an RFC 3339 timestamp was, kubectl style.
func age(ts string, now time.Time) string {
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return "<unknown>"
	}
	d := max(now.Sub(t), 0)
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

// column is one column of a table.
type column struct {
	header string
	value  func(doc map[string]any, now time.Time) string
}

func path(p string) func(map[string]any, time.Time) string {
	return func(doc map[string]any, _ time.Time) string { return str(doc, p) }
}

func dashed(p string) func(map[string]any, time.Time) string {
	return func(doc map[string]any, _ time.Time) string { return orDash(str(doc, p)) }
}

func ageOf(doc map[string]any, now time.Time) string {
	return age(str(doc, "metadata.creationTimestamp"), now)
}

// columns returns the table layout of a kind: the default columns and
// those -o wide adds, in the style of the Registry reference.
func columns(kind string) (normal, wide []column) {
	name := column{"NAME", path("metadata.name")}
	generation := column{"GENERATION", path("metadata.generation")}
	labels := column{"LABELS", dashed("metadata.labels")}
	created := column{"CREATED", path("metadata.creationTimestamp")}
	switch kind {
	case "Registry":
		return []column{name, {"TYPE", path("spec.type")}, {"URL", path("spec.url")}, {"ENABLED", path("spec.enabled")}, generation, {"AGE", ageOf}},
			[]column{{"INSECURE", dashed("spec.insecure")}, {"CREDENTIALS", dashed("spec.credentials.type")}, labels, created, {"DESCRIPTION", dashed("spec.description")}}
	case "Webhook":
		return webhookColumns(name, generation, labels, created)
	}
	if n, w, ok := authColumns(kind, name, generation, labels, created); ok {
		return n, w
	}
	return []column{name, generation, {"AGE", ageOf}}, []column{labels, created}
}

// printList prints resources as a table (output "" or "wide"), as JSON
// {"items": [...]}, or as YAML documents separated by "---", which
// `clusterctl apply -f` takes back as they are.
func printList(w io.Writer, items []map[string]any, output string, now time.Time) error {
	switch output {
	case "json":
		return printJSON(w, map[string]any{"items": items})
	case "yaml":
		for i, it := range items {
			if i > 0 {
				fmt.Fprintln(w, "---")
			}
			if err := printYAML(w, it); err != nil {
				return err
			}
		}
		return nil
	}
	if len(items) == 0 {
		fmt.Fprintln(w, "No resources found.")
		return nil
	}
	cols, more := columns(str(items[0], "kind"))
	if output == "wide" {
		cols = append(cols, more...)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	row := make([]string, len(cols))
	for i, c := range cols {
		row[i] = c.header
	}
	fmt.Fprintln(tw, strings.Join(row, "\t"))
	for _, it := range items {
		for i, c := range cols {
			row[i] = c.value(it, now)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// printOne prints one resource: "Registry Details" with one field a line
// (the Registry reference's style), or JSON, YAML, or a wide table row.
func printOne(w io.Writer, doc map[string]any, output string, now time.Time) error {
	switch output {
	case "json":
		return printJSON(w, doc)
	case "yaml":
		return printYAML(w, doc)
	case "wide":
		return printList(w, []map[string]any{doc}, "wide", now)
	}
	kind := str(doc, "kind")
	rows := [][2]string{{"Name:", str(doc, "metadata.name")}}
	if kind == "Registry" {
		rows = append(rows, [][2]string{
			{"Type:", str(doc, "spec.type")},
			{"URL:", str(doc, "spec.url")},
			{"Enabled:", str(doc, "spec.enabled")},
			{"Description:", orDash(str(doc, "spec.description"))},
			{"Namespace:", orDash(str(doc, "spec.namespace"))},
			{"Insecure:", orDash(str(doc, "spec.insecure"))},
			{"TLS:", tlsSummary(doc)},
			{"Credentials:", credentials(doc)},
		}...)
	}
	if kind == "Webhook" {
		rows = append(rows, webhookDetails(doc)...)
	}
	rows = append(rows, authDetails(doc, now)...)
	rows = append(rows, conditionRows(doc)...)
	rows = append(rows, [][2]string{
		{"Labels:", orDash(str(doc, "metadata.labels"))},
		{"Annotations:", orDash(str(doc, "metadata.annotations"))},
		{"Generation:", str(doc, "metadata.generation")},
		{"Created:", str(doc, "metadata.creationTimestamp")},
		{"Updated:", str(doc, "metadata.updateTimestamp")},
	}...)
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "%s Details\n", kind)
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}

// credentials summarizes spec.credentials: "basic (secret hub-creds, key
// password, expires 2027-01-31T00:00:00Z)".
func credentials(doc map[string]any) string {
	t := str(doc, "spec.credentials.type")
	if t == "" {
		return "-"
	}
	var details []string
	if s := str(doc, "spec.credentials.secretRef.name"); s != "" {
		details = append(details, "secret "+s)
	}
	if k := str(doc, "spec.credentials.secretRef.key"); k != "" {
		details = append(details, "key "+k)
	}
	if e := str(doc, "spec.credentials.expires"); e != "" {
		details = append(details, "expires "+e)
	}
	if len(details) == 0 {
		return t
	}
	return t + " (" + strings.Join(details, ", ") + ")"
}

// tlsSummary lists the TLS settings; an inline CA bundle is too long to
// show and is only mentioned.
func tlsSummary(doc map[string]any) string {
	tls, _ := field(doc, "spec.tls").(map[string]any)
	if len(tls) == 0 {
		return "-"
	}
	shown := make(map[string]any, len(tls))
	for k, v := range tls {
		shown[k] = v
	}
	if _, ok := shown["caBundle"]; ok {
		shown["caBundle"] = "(inline PEM)"
	}
	return str(map[string]any{"tls": shown}, "tls")
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func printYAML(w io.Writer, v any) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return enc.Close()
}
