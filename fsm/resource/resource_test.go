package resource

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const good = `apiVersion: berth.dev/v1
kind: Registry
metadata:
  name: hub
  labels: {team: platform}
spec:
  type: dockerhub
  url: https://registry-1.docker.io
`

func TestParseYAMLMultiDocument(t *testing.T) {
	in := "---\n" + good + "---\n\n---\n" + strings.Replace(good, "name: hub", "name: quay", 1) + "---\n"
	docs, err := ParseYAML(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[0].Metadata.Name != "hub" || docs[1].Metadata.Name != "quay" {
		t.Fatalf("docs = %+v", docs)
	}
	// JSON is YAML too.
	docs, err = ParseYAML(strings.NewReader(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"j"},"spec":{"type":"zot","url":"https://z"}}`))
	if err != nil || len(docs) != 1 {
		t.Fatalf("json: %v %v", docs, err)
	}
}

func TestParseYAMLErrorsNameTheDocument(t *testing.T) {
	tests := []struct{ in, want string }{
		{good + "---\n- a\n- b\n", "document 2"},
		{good + "---\nkind: [\n", "document 2"},
		{good + "---\napiVersion: berth.dev/v1\nkind: Registry\nmetadata: {name: x}\nspec: {}\nstatus: {}\n", "unknown field"},
	}
	for _, tt := range tests {
		_, err := ParseYAML(strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want it to mention %q", err, tt.want)
		}
	}
}

func TestValidateRegistry(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		wants []string // each must appear in the error; none means valid
	}{
		{"valid", good, nil},
		{"every type", strings.Replace(good, "dockerhub", "artifactory", 1), nil},
		{"credentials by reference", good + "  credentials: {type: basic, secretRef: {name: hub-creds}}\n", nil},
		{"insecure http allowed", strings.Replace(good, "https://registry-1.docker.io", "http://10.0.0.5:5000", 1) + "  insecure: true\n", nil},
		{"tls options", good + "  tls: {caFile: /etc/ssl/ca.pem, serverName: hub.internal}\n", nil},
		{"wrong apiVersion", strings.Replace(good, "berth.dev/v1", "v2", 1), []string{"apiVersion"}},
		{"wrong kind", strings.Replace(good, "kind: Registry", "kind: Widget", 1), []string{"kind"}},
		{"bad name", strings.Replace(good, "name: hub", "name: Hub_1", 1), []string{"metadata.name"}},
		{"bad label", strings.Replace(good, "team: platform", "team: 'has spaces'", 1), []string{"metadata.labels.team"}},
		{"all spec problems at once", "apiVersion: berth.dev/v1\nkind: Registry\nmetadata: {name: x}\nspec: {type: floppy, url: 'ftp://a'}\n", []string{"spec.type", "spec.url"}},
		{"plain http without insecure", strings.Replace(good, "https://", "http://", 1), []string{"spec.insecure"}},
		{"url with credentials", strings.Replace(good, "https://", "https://u:p@", 1), []string{"spec.credentials"}},
		{"missing url", strings.Replace(good, "  url: https://registry-1.docker.io\n", "", 1), []string{"spec.url: required"}},
		{"inline secret field", good + "  password: hunter2\n", []string{"unknown field"}},
		{"credentials without secret", good + "  credentials: {type: token}\n", []string{"secretRef: required"}},
		{"unknown credential type", good + "  credentials: {type: magic, secretRef: {name: a}}\n", []string{"credentials.type"}},
		{"contradictory tls", good + "  tls: {caFile: /ca.pem, insecureSkipVerify: true}\n", []string{"contradict"}},
		{"no spec", "apiVersion: berth.dev/v1\nkind: Registry\nmetadata: {name: x}\n", []string{"spec: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := ParseYAML(strings.NewReader(tt.yaml))
			if err != nil {
				if len(tt.wants) > 0 && strings.Contains(err.Error(), tt.wants[0]) {
					return
				}
				t.Fatal(err)
			}
			norm, err := Validate(docs[0])
			if len(tt.wants) == 0 {
				if err != nil {
					t.Fatalf("valid document refused: %v", err)
				}
				var m map[string]any
				if json.Unmarshal(norm, &m) != nil || m["spec"].(map[string]any)["enabled"] != true {
					t.Errorf("normalized form lacks the enabled default: %s", norm)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a ValidationError", err)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestNormalizeIsStableAndStripsServerFields(t *testing.T) {
	a, _ := ParseYAML(strings.NewReader(good))
	b, _ := ParseYAML(strings.NewReader("apiVersion: berth.dev/v1\nkind: Registry\nspec: {url: 'https://registry-1.docker.io', type: dockerhub}\nmetadata: {labels: {team: platform}, name: hub, generation: 7}\n"))
	na, err1 := Validate(a[0])
	nb, err2 := Validate(b[0])
	if err1 != nil || err2 != nil || string(na) != string(nb) {
		t.Errorf("same resource, different normal forms:\n%s\n%s", na, nb)
	}
	if strings.Contains(string(nb), "generation") {
		t.Errorf("user-supplied generation kept: %s", nb)
	}
}

func TestCanonicalKind(t *testing.T) {
	for _, s := range []string{"Registry", "registry", "registries", "REGISTRIES", "reg"} {
		if k, ok := CanonicalKind(s); !ok || k != "Registry" {
			t.Errorf("%s -> %q %v", s, k, ok)
		}
	}
	if _, ok := CanonicalKind("widgets"); ok {
		t.Error("unknown kind accepted")
	}
}

func FuzzParseYAML(f *testing.F) {
	f.Add(good)
	f.Add("---\n---\n")
	f.Add("a: [1, 2")
	f.Add(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"x"},"spec":null}`)
	f.Fuzz(func(t *testing.T, in string) {
		docs, err := ParseYAML(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, d := range docs {
			norm, err := Validate(d)
			if err != nil {
				continue
			}
			// A valid document's normal form parses and validates to itself.
			d2, err := ParseJSON(norm)
			if err != nil {
				t.Fatalf("normal form does not parse: %v\n%s", err, norm)
			}
			norm2, err := Validate(d2)
			if err != nil || string(norm2) != string(norm) {
				t.Fatalf("normal form is not a fixed point: %v\n%s\n%s", err, norm, norm2)
			}
		}
	})
}
