package resource

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func parseOne(t *testing.T, in string) Document {
	t.Helper()
	docs, err := ParseYAML(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 {
		t.Fatalf("%d documents, want 1", len(docs))
	}
	return docs[0]
}

// registry builds a Registry document named x with the given spec lines
// (each indented by two spaces).
func registry(spec ...string) string {
	return "apiVersion: berth.dev/v1\nkind: Registry\nmetadata:\n  name: x\nspec:\n  " + strings.Join(spec, "\n  ") + "\n"
}

func TestNormalizeRegistry(t *testing.T) {
	ca := testCA(t)
	tests := []struct {
		name, in string
		spec     string // the normalized spec
	}{
		{"minimal", registry("type: zot", "url: https://zot.example.com"),
			`{"enabled":true,"type":"zot","url":"https://zot.example.com"}`},
		{"enabled false kept", registry("type: zot", "url: https://zot.example.com", "enabled: false"),
			`{"enabled":false,"type":"zot","url":"https://zot.example.com"}`},
		{"url canonical", registry("type: harbor", "url: HTTPS://Harbor.Example.COM:8443/"),
			`{"enabled":true,"type":"harbor","url":"https://harbor.example.com:8443"}`},
		{"url with path", registry("type: artifactory", "url: https://jfrog.example.com/artifactory/api/docker/remote/"),
			`{"enabled":true,"type":"artifactory","url":"https://jfrog.example.com/artifactory/api/docker/remote"}`},
		{"dockerhub default url", registry("type: dockerhub"),
			`{"enabled":true,"type":"dockerhub","url":"https://registry-1.docker.io"}`},
		{"quay default url", registry("type: quay"),
			`{"enabled":true,"type":"quay","url":"https://quay.io"}`},
		{"gcr default url", registry("type: gcr"),
			`{"enabled":true,"type":"gcr","url":"https://gcr.io"}`},
		{"insecure http", registry("type: zot", "url: http://10.0.0.5:5000", "insecure: true"),
			`{"enabled":true,"insecure":true,"type":"zot","url":"http://10.0.0.5:5000"}`},
		{"insecure false omitted", registry("type: zot", "url: https://z.example.com", "insecure: false"),
			`{"enabled":true,"type":"zot","url":"https://z.example.com"}`},
		{"description and namespace", registry("type: dockerhub", "description: Docker Hub", "namespace: library"),
			`{"description":"Docker Hub","enabled":true,"namespace":"library","type":"dockerhub","url":"https://registry-1.docker.io"}`},
		{"nested namespace", registry("type: gitlab", "url: https://gitlab.example.com", "namespace: my-org/team_a/sub.x"),
			`{"enabled":true,"namespace":"my-org/team_a/sub.x","type":"gitlab","url":"https://gitlab.example.com"}`},
		{"tls ca file", registry("type: harbor", "url: https://h.example.com", "tls: {caFile: /etc/berth/ca.pem, serverName: h.internal, clientCertSecret: h-mtls}"),
			`{"enabled":true,"tls":{"caFile":"/etc/berth/ca.pem","clientCertSecret":"h-mtls","serverName":"h.internal"},"type":"harbor","url":"https://h.example.com"}`},
		{"tls skip verify", registry("type: zot", "url: https://z.example.com", "tls: {insecureSkipVerify: true}"),
			`{"enabled":true,"tls":{"insecureSkipVerify":true},"type":"zot","url":"https://z.example.com"}`},
		{"empty tls dropped", registry("type: zot", "url: https://z.example.com", "tls: {insecureSkipVerify: false}"),
			`{"enabled":true,"type":"zot","url":"https://z.example.com"}`},
		{"null tls", registry("type: zot", "url: https://z.example.com", "tls:"),
			`{"enabled":true,"type":"zot","url":"https://z.example.com"}`},
		{"credentials", registry("type: ecr", "url: https://1234.dkr.ecr.eu-west-1.amazonaws.com", "credentials: {type: basic, secretRef: {name: ecr-creds, key: password}, expires: '2027-01-31T00:00:00Z'}"),
			`{"credentials":{"expires":"2027-01-31T00:00:00Z","secretRef":{"key":"password","name":"ecr-creds"},"type":"basic"},"enabled":true,"type":"ecr","url":"https://1234.dkr.ecr.eu-west-1.amazonaws.com"}`},
		{"anonymous", registry("type: quay", "credentials: {type: none}"),
			`{"credentials":{"type":"none"},"enabled":true,"type":"quay","url":"https://quay.io"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Normalize(parseOne(t, tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var doc struct{ Spec json.RawMessage }
			if err := json.Unmarshal(n, &doc); err != nil {
				t.Fatal(err)
			}
			if string(doc.Spec) != tt.spec {
				t.Errorf("spec =\n  %s\nwant\n  %s", doc.Spec, tt.spec)
			}
		})
	}

	n, err := Normalize(parseOne(t, registry("type: harbor", "url: https://h.example.com", "tls:", "  caBundle: |", "    "+strings.ReplaceAll(strings.TrimSpace(ca), "\n", "\n      "))))
	if err != nil {
		t.Fatalf("CA bundle refused: %v", err)
	}
	if !strings.Contains(string(n), `"caBundle":"-----BEGIN CERTIFICATE-----\n`) {
		t.Errorf("CA bundle not kept: %s", n)
	}
}

func TestNormalizeWholeDocument(t *testing.T) {
	a := parseOne(t, `apiVersion: berth.dev/v1
kind: Registry
metadata:
  name: hub
  description: Docker Hub
  labels: {team: platform, app.kubernetes.io/part-of: berth}
  annotations: {note: "anything, even spaces"}
spec:
  url: https://registry-1.docker.io
  type: dockerhub
`)
	// The same resource written differently: JSON, other key order, the
	// description in the spec, server-owned fields present.
	b := parseOne(t, `{"spec":{"description":"Docker Hub","type":"dockerhub","url":"https://REGISTRY-1.docker.io/","enabled":true},
		"metadata":{"annotations":{"note":"anything, even spaces"},"name":"hub","generation":3,"labels":{"app.kubernetes.io/part-of":"berth","team":"platform"}},
		"kind":"Registry","apiVersion":"berth.dev/v1","status":{}}`)
	na, err := Normalize(a)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := Normalize(b)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"annotations":{"note":"anything, even spaces"},"labels":{"app.kubernetes.io/part-of":"berth","team":"platform"},"name":"hub"},"spec":{"description":"Docker Hub","enabled":true,"type":"dockerhub","url":"https://registry-1.docker.io"}}`
	if string(na) != want || string(nb) != want {
		t.Errorf("normal forms:\n%s\n%s\nwant\n%s", na, nb, want)
	}
	// The normal form is a fixed point.
	again, err := Normalize(parseOne(t, string(na)))
	if err != nil || string(again) != want {
		t.Errorf("normalizing the normal form: %v\n%s", err, again)
	}
}

// Every problem is reported at once, in document order, with its path.
func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // the problems, in order: "path: message substring"
	}{
		{"wrong apiVersion", strings.Replace(registry("type: zot", "url: https://z.io"), "berth.dev/v1", "v2", 1),
			[]string{`apiVersion: must be berth.dev/v1, got "v2"`}},
		{"no apiVersion", strings.Replace(registry("type: zot", "url: https://z.io"), "apiVersion: berth.dev/v1\n", "", 1),
			[]string{"apiVersion: required: apiVersion: berth.dev/v1"}},
		{"unknown kind", strings.Replace(registry("type: zot"), "kind: Registry", "kind: Widget", 1),
			[]string{`kind: "Widget" is not one of ImmutabilityRule, Namespace, Registry, ReplicationPolicy, RetentionPolicy, Robot, User, Webhook`}},
		{"kind in wrong case", strings.Replace(registry("type: zot", "url: https://z.io"), "kind: Registry", "kind: registry", 1),
			[]string{`kind: "registry" is spelled "Registry"`}},
		{"no kind", strings.Replace(registry("type: zot"), "kind: Registry\n", "", 1),
			[]string{"kind: required: one of ImmutabilityRule, Namespace, Registry, ReplicationPolicy, RetentionPolicy, Robot, User, Webhook"}},
		{"no name", strings.Replace(registry("type: zot", "url: https://z.io"), "  name: x\n", "  labels: {}\n", 1),
			[]string{"metadata.name: required"}},
		{"no metadata", strings.Replace(registry("type: zot", "url: https://z.io"), "metadata:\n  name: x\n", "", 1),
			[]string{"metadata.name: required"}},
		{"bad name", strings.Replace(registry("type: zot", "url: https://z.io"), "name: x", "name: Bad_Name", 1),
			[]string{`metadata.name: "Bad_Name" must be 1-63 lowercase letters`}},
		{"name too long", strings.Replace(registry("type: zot", "url: https://z.io"), "name: x", "name: "+strings.Repeat("a", 64), 1),
			[]string{`metadata.name: "aaaa`}},
		{"bad labels", strings.Replace(registry("type: zot", "url: https://z.io"), "name: x", "name: x\n  labels: {team: has spaces, -bad: ok, num: 3}", 1),
			[]string{"metadata.labels.num: must be a string, got number 3 (quote it)", `metadata.labels.-bad: "-bad" is not a valid label key`, `metadata.labels.team: value "has spaces"`}},
		{"bad annotation key", strings.Replace(registry("type: zot", "url: https://z.io"), "name: x", "name: x\n  annotations: {'a b': c}", 1),
			[]string{`metadata.annotations["a b"]: "a b" is not a valid annotation key`}},
		{"metadata not a mapping", strings.Replace(registry("type: zot", "url: https://z.io"), "metadata:\n  name: x", "metadata: x", 1),
			[]string{`metadata: must be a mapping, got string "x"`, "metadata.name: required"}},
		{"unknown top-level and metadata fields", strings.Replace(registry("type: zot", "url: https://z.io"), "name: x", "name: x\n  namespace: default", 1) + "specs: {}\n",
			[]string{"metadata.namespace: unknown field; known fields here are name, labels", "specs: unknown field; known fields here are apiVersion, kind, metadata, spec, status"}},
		{"no spec", strings.Replace(registry("type: zot"), "spec:\n  type: zot\n", "", 1),
			[]string{"spec: required: at least spec.type and spec.url"}},
		{"spec not a mapping", strings.Replace(registry("type: zot"), "spec:\n  type: zot", "spec: [zot]", 1),
			[]string{"spec: must be a mapping, got a list"}},
		{"no type, no url", registry("description: nothing else"),
			[]string{"spec.type: required: one of berth, distribution", "spec.url: required, e.g. https://registry.example.com"}},
		{"unknown type and ftp url", registry("type: floppy", "url: ftp://a"),
			[]string{`spec.type: "floppy" is not one of berth, distribution, harbor, dockerhub, ecr, gcr, acr, quay, gitlab, artifactory, nexus, zot, generic`, `spec.url: "ftp://a" must be an absolute http(s) URL`}},
		{"url without scheme", registry("type: zot", "url: registry.example.com:5000"),
			[]string{`spec.url: "registry.example.com:5000" has no scheme: write https://registry.example.com:5000`}},
		{"relative url", registry("type: zot", "url: /v2/"),
			[]string{`spec.url: "/v2/" must be an absolute http(s) URL`}},
		{"plain http", registry("type: zot", "url: http://z.io"),
			[]string{`spec.url: "http://z.io" is plain http: set spec.insecure: true to allow it`}},
		{"insecure on https", registry("type: zot", "url: https://z.io", "insecure: true"),
			[]string{"spec.insecure: only allows plain http:// URLs; to skip certificate checks on https use spec.tls.insecureSkipVerify"}},
		{"url with credentials, query and fragment", registry("type: zot", "url: https://u:p@z.io/?a=b#c"),
			[]string{"spec.url: must not contain credentials", "spec.url: must not have a query or fragment"}},
		{"wrong field types", registry("type: 5", "url: https://z.io", "enabled: 'yes'", "insecure: 1", "description: [a]"),
			[]string{"spec.type: must be a string, got number 5", "spec.enabled: must be true or false, got string \"yes\"", "spec.insecure: must be true or false, got number 1", "spec.description: must be a string, got a list"}},
		{"long description", registry("type: zot", "url: https://z.io", "description: "+strings.Repeat("d", 1025)),
			[]string{"spec.description: 1025 characters, at most 1024 allowed"}},
		{"bad namespace", registry("type: zot", "url: https://z.io", "namespace: My Org/"),
			[]string{`spec.namespace: "My Org/" is not a repository namespace`}},
		{"unknown spec fields", registry("type: zot", "url: https://z.io", "port: 5000", "lifecycle: manual"),
			[]string{"spec.port: unknown field; known fields here are type, url, description, namespace, enabled, insecure, tls, credentials", "spec.lifecycle: unknown field"}},
		{"inline password", registry("type: zot", "url: https://z.io", "username: bob", "password: hunter2"),
			[]string{"spec.username: secrets are never written into a resource", "spec.password: secrets are never written into a resource"}},
		{"inline token in credentials", registry("type: zot", "url: https://z.io", "credentials: {type: token, token: abc}"),
			[]string{"spec.credentials.token: secrets are never written into a resource", "spec.credentials.secretRef: required for credentials of type \"token\""}},
		{"credentials without type", registry("type: zot", "url: https://z.io", "credentials: {secretRef: {name: s}}"),
			[]string{"spec.credentials.type: required: one of none, basic, token, oauth2"}},
		{"unknown credentials type", registry("type: zot", "url: https://z.io", "credentials: {type: ldap, secretRef: {name: s}}"),
			[]string{`spec.credentials.type: "ldap" is not one of none, basic, token, oauth2`}},
		{"none with a secret", registry("type: zot", "url: https://z.io", "credentials: {type: none, secretRef: {name: s}}"),
			[]string{"spec.credentials.secretRef: not used with type none"}},
		{"bad secret ref", registry("type: zot", "url: https://z.io", "credentials: {type: basic, secretRef: {name: Not_OK, key: 'a b', namespace: x}}"),
			[]string{"spec.credentials.secretRef.namespace: unknown field; known fields here are name, key", `spec.credentials.secretRef.name: "Not_OK" is not a valid secret name`, `spec.credentials.secretRef.key: "a b" is not a valid key`}},
		{"secret key escaping the secret", registry("type: zot", "url: https://z.io", "credentials: {type: basic, secretRef: {name: s, key: ..}}"),
			[]string{`spec.credentials.secretRef.key: ".." is not a valid key`}},
		{"secret key reserved by Kubernetes", registry("type: zot", "url: https://z.io", "credentials: {type: basic, secretRef: {name: s, key: ..data}}"),
			[]string{`spec.credentials.secretRef.key: "..data" is not a valid key`}},
		{"secret ref without name", registry("type: zot", "url: https://z.io", "credentials: {type: basic, secretRef: {key: k}}"),
			[]string{"spec.credentials.secretRef.name: required"}},
		{"bad expiry", registry("type: zot", "url: https://z.io", "credentials: {type: basic, secretRef: {name: s}, expires: next week}"),
			[]string{`spec.credentials.expires: "next week" is not an RFC 3339 time`}},
		{"tls on http", registry("type: zot", "url: http://z.io", "insecure: true", "tls: {serverName: z.io}"),
			[]string{"spec.tls: only for https:// URLs"}},
		{"contradictory tls", registry("type: zot", "url: https://z.io", "tls: {caFile: ca.pem, caBundle: x, insecureSkipVerify: true, serverName: 'bad name', clientCertSecret: Bad, alpn: h2}"),
			[]string{"spec.tls.alpn: unknown field; known fields here are caFile, caBundle, serverName, insecureSkipVerify, clientCertSecret",
				"spec.tls: caFile and caBundle both given; choose one",
				"spec.tls.insecureSkipVerify: contradicts a CA (caFile or caBundle): choose one",
				`spec.tls.caFile: "ca.pem" must be an absolute path`,
				"spec.tls.caBundle: no PEM certificate found",
				`spec.tls.serverName: "bad name" is not a host name`,
				`spec.tls.clientCertSecret: "Bad" is not a valid secret name`}},
		{"private key as CA", registry("type: zot", "url: https://z.io", "tls: {caBundle: \"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n\"}"),
			[]string{`spec.tls.caBundle: PEM block 1 is a "PRIVATE KEY", want CERTIFICATE`}},
		{"corrupt certificate", registry("type: zot", "url: https://z.io", "tls: {caBundle: \"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\ntrailing\"}"),
			[]string{"spec.tls.caBundle: certificate 1: x509:", "spec.tls.caBundle: text after the last PEM certificate"}},
		{"descriptions disagree", strings.Replace(registry("type: zot", "url: https://z.io", "description: b"), "name: x", "name: x\n  description: a", 1),
			[]string{"metadata.description: differs from spec.description"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(parseOne(t, tt.in))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			got := ve.Messages()
			if len(got) != len(tt.want) {
				t.Fatalf("%d problems, want %d:\n  %s", len(got), len(tt.want), strings.Join(got, "\n  "))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) && !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i+1, got[i], w)
				}
				if path, _, _ := strings.Cut(w, ": "); !strings.HasPrefix(got[i], path+": ") {
					t.Errorf("problem %d = %q, want it to start with the path %q", i+1, got[i], path)
				}
			}
			if !strings.Contains(err.Error(), "is invalid:") {
				t.Errorf("Error() = %q", err)
			}
		})
	}
}

// Problems carry the line of the field in the user's file.
func TestValidationErrorLines(t *testing.T) {
	in := hub + "---\n" + registry("type: zot", "url: ftp://z", "tls:", "  caFile: rel.pem")
	docs, err := ParseYAML(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var ve *ValidationError
	err = Validate(docs[1])
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	// Document 2 starts on line 10; spec.url is on line 16, tls.caFile on 18.
	lines := map[string]int{}
	for _, p := range ve.Problems {
		lines[p.Path] = p.Line
	}
	if ve.Line != 10 || lines["spec.url"] != 16 || lines["spec.tls.caFile"] != 18 {
		t.Errorf("doc line %d, problems %+v", ve.Line, ve.Problems)
	}
	for i := 1; i < len(ve.Problems); i++ {
		if ve.Problems[i].Line < ve.Problems[i-1].Line {
			t.Errorf("problems not in file order: %+v", ve.Problems)
		}
	}
	if !strings.Contains(err.Error(), "(line 16)") {
		t.Errorf("Error() lacks the line: %v", err)
	}
	// A document built in Go has no lines, and says nothing about them.
	if err := Validate(Document{APIVersion: APIVersion, Kind: "Registry"}); err == nil || strings.Contains(err.Error(), "line") {
		t.Errorf("err = %v", err)
	}
}

func TestCanonicalKind(t *testing.T) {
	for _, s := range []string{"Registry", "registry", "registries", "REGISTRIES", "reg", "regs"} {
		if k, ok := CanonicalKind(s); !ok || k != "Registry" {
			t.Errorf("CanonicalKind(%q) = %q, %v", s, k, ok)
		}
	}
	for _, s := range []string{"widgets", "", "registrys"} {
		if k, ok := CanonicalKind(s); ok {
			t.Errorf("CanonicalKind(%q) = %q, want unknown", s, k)
		}
	}
	for _, s := range []string{"Webhook", "webhook", "WEBHOOKS", "wh", "hook", "hooks"} {
		if k, ok := CanonicalKind(s); !ok || k != "Webhook" {
			t.Errorf("CanonicalKind(%q) = %q, %v", s, k, ok)
		}
	}
	for s, want := range map[string]string{"ns": "Namespace", "namespaces": "Namespace", "users": "User", "User": "User", "robots": "Robot", "rbt": "Robot"} {
		if k, ok := CanonicalKind(s); !ok || k != want {
			t.Errorf("CanonicalKind(%q) = %q, %v; want %s", s, k, ok, want)
		}
	}
	if Plural("Registry") != "registries" || Plural("Webhook") != "webhooks" || strings.Join(Kinds(), ",") != "ImmutabilityRule,Namespace,Registry,ReplicationPolicy,RetentionPolicy,Robot,User,Webhook" {
		t.Errorf("Plural = %q, Kinds = %v", Plural("Registry"), Kinds())
	}
}

func testCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// Every spelling completion offers is one CanonicalKind takes back.
func TestSpellings(t *testing.T) {
	for _, kind := range Kinds() {
		sp := Spellings(kind)
		if len(sp) < 2 || sp[0] != Plural(kind) {
			t.Errorf("Spellings(%s) = %v, want the plural first and the singular", kind, sp)
		}
		for _, s := range sp {
			if k, ok := CanonicalKind(s); !ok || k != kind {
				t.Errorf("Spellings(%s) offers %q, which CanonicalKind maps to %q, %v", kind, s, k, ok)
			}
		}
	}
	if sp := Spellings("Widget"); sp != nil {
		t.Errorf("Spellings(Widget) = %v, want none", sp)
	}
}
