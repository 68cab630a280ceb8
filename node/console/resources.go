package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-registry/berth/fsm/resource"
)

type kindRow struct {
	Kind   string
	Plural string
	Items  []resourceRow
}

type resourceRow struct {
	Name       string
	Generation int64
	Created    time.Time
	Updated    time.Time
}

// maxResourcesShown bounds one kind's list on the overview.
const maxResourcesShown = 500

type resourcesData struct {
	Kinds []kindRow
	Kind  string
}

func (c *Console) resources(s *session) (string, string, string, any, error) {
	if err := s.requireAdmin(); err != nil {
		return "", "", "", nil, err
	}
	d := resourcesData{}
	kinds := resource.Kinds()
	if k := s.r.URL.Query().Get("kind"); k != "" {
		kind, ok := resource.CanonicalKind(k)
		if !ok {
			return "", "", "", nil, errorf(http.StatusNotFound, "unknown kind %q: known kinds are %s", k, strings.Join(kinds, ", "))
		}
		kinds, d.Kind = []string{kind}, kind
	}
	for _, k := range kinds {
		row := kindRow{Kind: k, Plural: resource.Plural(k)}
		for i, r := range s.v.Resources(k) {
			if i == maxResourcesShown {
				break
			}
			row.Items = append(row.Items, resourceRow{Name: r.Name, Generation: r.Generation, Created: r.Created, Updated: r.Updated})
		}
		d.Kinds = append(d.Kinds, row)
	}
	return "resources.html", "Resources", "resources", d, nil
}

type generation struct {
	Generation int64
	Updated    time.Time
	Document   string
	Current    bool
}

type resourceData struct {
	Kind        string
	Name        string
	Generations []generation // newest first
}

func (c *Console) resource(s *session) (string, string, string, any, error) {
	if err := s.requireAdmin(); err != nil {
		return "", "", "", nil, err
	}
	q := s.r.URL.Query()
	kind, ok := resource.CanonicalKind(q.Get("kind"))
	name := q.Get("name")
	if !ok || name == "" {
		return "", "", "", nil, errorf(http.StatusBadRequest, "name a resource: %s?kind=KIND&name=NAME (kinds: %s)", Prefix+"resource", strings.Join(resource.Kinds(), ", "))
	}
	cur, found := s.v.Resource(kind, name)
	if !found {
		return "", "", "", nil, errorf(http.StatusNotFound, "%s %q not found", kind, name)
	}
	d := resourceData{Kind: kind, Name: name}
	d.Generations = append(d.Generations, generation{Generation: cur.Generation, Updated: cur.Updated, Document: showDocument(cur.Document), Current: true})
	hist := s.v.ResourceHistory(kind, name)
	for i := len(hist) - 1; i >= 0; i-- {
		h := hist[i]
		d.Generations = append(d.Generations, generation{Generation: h.Generation, Updated: h.Updated, Document: showDocument(h.Document)})
	}
	return "resource.html", fmt.Sprintf("%s %s", kind, name), "resources", d, nil
}

// showDocument indents a stored document for reading, with credential
// hashes (users' passwordHash, robots' secretHash) replaced: a page on a
// screen is not where they belong, even for an admin.
func showDocument(doc []byte) string {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return string(doc)
	}
	if spec, ok := m["spec"].(map[string]any); ok {
		for k := range spec {
			if strings.HasSuffix(k, "Hash") {
				spec[k] = "(hidden)"
			}
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // html/template escapes it
	if err := enc.Encode(m); err != nil {
		return string(doc)
	}
	return b.String()
}
