package resource

import (
	"strings"
	"testing"
)

const hub = `apiVersion: berth.dev/v1
kind: Registry
metadata:
  name: hub
  labels: {team: platform}
spec:
  type: dockerhub
  url: https://registry-1.docker.io
`

func TestParseYAMLMultiDocument(t *testing.T) {
	in := "---\n" + hub + // lines 2-9
		"---\n\n" + // an empty document
		"---\n# only a comment\n" +
		"---\n" + strings.Replace(hub, "name: hub", "name: quay", 1) + // starts on line 15
		"---\n" +
		`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"j"},"spec":{"type":"zot","url":"https://z"}}` + "\n"
	docs, err := ParseYAML(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, d.Metadata.Name)
	}
	if strings.Join(got, ",") != "hub,quay,j" {
		t.Fatalf("names = %v, want hub,quay,j", got)
	}
	if docs[0].Line() != 2 || docs[1].Line() != 15 || docs[2].Line() != 24 {
		t.Errorf("lines = %d, %d, %d; want 2, 15, 24", docs[0].Line(), docs[1].Line(), docs[2].Line())
	}
	if docs[0].Metadata.Labels["team"] != "platform" || string(docs[0].Spec) != `{"type":"dockerhub","url":"https://registry-1.docker.io"}` {
		t.Errorf("doc 1 = %+v spec %s", docs[0].Metadata, docs[0].Spec)
	}
}

func TestParseYAMLNothing(t *testing.T) {
	for _, in := range []string{"", "\n\n", "---\n---\n", "# comment\n---\n...\n"} {
		docs, err := ParseYAML(strings.NewReader(in))
		if err != nil || len(docs) != 0 {
			t.Errorf("ParseYAML(%q) = %d docs, %v; want none and no error", in, len(docs), err)
		}
	}
}

func TestParseYAMLErrorsNameTheDocument(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"broken yaml", hub + "---\nkind: [\n", []string{"document 2", "line 10"}},
		{"tab indentation", hub + "---\nmetadata:\n\tname: x\n", []string{"document 2", "line 11"}},
		{"a list", hub + "---\n- a\n- b\n", []string{"document 2 (line 10)", "must be a mapping"}},
		{"a scalar", "just text\n", []string{"document 1 (line 1)", "must be a mapping"}},
		{"duplicate key", "kind: Registry\nkind: Registry\n", []string{"document 1", `"kind" already defined`}},
		{"complex key", "spec: {? [a, b] : c}\n", []string{"document 1", "invalid map key"}},
		{"nan", hub + "  weight: .nan\n", []string{"document 1", "spec.weight: .nan and .inf are not allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseYAML(strings.NewReader(tt.in))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// YAML reads some unquoted scalars as timestamps or numbers; a resource
// keeps the text the user wrote in keys and in values that look like dates.
func TestParseYAMLKeepsText(t *testing.T) {
	docs, err := ParseYAML(strings.NewReader(hub + "  credentials: {type: basic, secretRef: {name: c}, expires: 2027-01-31T00:00:00Z}\n" +
		"---\napiVersion: berth.dev/v1\nkind: Registry\nmetadata:\n  name: x\n  annotations: {1: one, true: yes}\n  labels: {since: 2026-01-02}\nspec: {type: zot, url: 'https://z'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(docs[0].Spec), `"expires":"2027-01-31T00:00:00Z"`) {
		t.Errorf("timestamp not kept as written: %s", docs[0].Spec)
	}
	m := docs[1].Metadata
	if m.Labels["since"] != "2026-01-02" || m.Annotations["1"] != "one" || m.Annotations["true"] != "yes" {
		t.Errorf("metadata = %+v", m)
	}
	for _, d := range docs {
		if err := Validate(d); err != nil {
			t.Error(err)
		}
	}
}

// What the server adds (generation, timestamps, status) may come back in
// an apply, for example from `clusterctl get -o yaml`; it is ignored.
func TestParseYAMLAcceptsServerFields(t *testing.T) {
	in := `apiVersion: berth.dev/v1
kind: Registry
metadata:
  name: hub
  generation: 7
  creationTimestamp: "2026-01-01T00:00:00Z"
  updateTimestamp: "2026-01-02T00:00:00Z"
spec: {type: dockerhub}
status: {state: running}
`
	docs, err := ParseYAML(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Normalize(docs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"generation", "Timestamp", "status", "running"} {
		if strings.Contains(string(n), s) {
			t.Errorf("normal form keeps %q: %s", s, n)
		}
	}
}
