package resource

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
)

// Problem is one thing wrong with a document, located by its field path
// (spec.tls.caFile) and, when the document came from YAML, its line.
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
}

func (p Problem) String() string {
	s := p.Message
	if p.Path != "" {
		s = p.Path + ": " + p.Message
	}
	if p.Line > 0 {
		s += fmt.Sprintf(" (line %d)", p.Line)
	}
	return s
}

// problems collects every problem of one document so that a user can fix
// them all in one go instead of one per apply.
type problems struct {
	list  []Problem
	lines map[string]int // field path -> line in the YAML source
}

func (p *problems) add(path, format string, args ...any) {
	p.list = append(p.list, Problem{Path: path, Message: fmt.Sprintf(format, args...), Line: p.line(path)})
}

// required reports a missing field, unless the field is already reported
// (a value of the wrong type reads as missing, and one problem is enough).
func (p *problems) required(path, format string, args ...any) {
	for _, q := range p.list {
		if q.Path == path {
			return
		}
	}
	p.add(path, format, args...)
}

// sortByLine puts problems in the order of the file, so that a user can
// fix them top to bottom; problems without a line keep their order, last.
func (p *problems) sortByLine() {
	key := func(l int) int {
		if l == 0 {
			return math.MaxInt
		}
		return l
	}
	sort.SliceStable(p.list, func(i, j int) bool { return key(p.list[i].Line) < key(p.list[j].Line) })
}

// line finds the line of path, or of its nearest ancestor that has one.
func (p *problems) line(path string) int {
	for path != "" {
		if l, ok := p.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// join extends a field path by one key. Keys holding dots or slashes (label
// keys such as app.kubernetes.io/name) are quoted in brackets so that the
// path stays unambiguous.
func join(path, key string) string {
	if !plainKey.MatchString(key) {
		return fmt.Sprintf("%s[%q]", path, key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// object reads one decoded JSON object strictly: each accessor checks the
// type of its field, and finish reports the fields nobody asked for. A
// null value counts as absent, so `tls:` with nothing under it is fine.
type object struct {
	path string
	m    map[string]any
	used map[string]bool
	p    *problems
}

func newObject(path string, v any, p *problems) (*object, bool) {
	if v == nil {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		p.add(path, "must be a mapping, got %s", describe(v))
		return nil, false
	}
	return &object{path: path, m: m, used: map[string]bool{}, p: p}, true
}

func (o *object) get(key string) (any, string, bool) {
	o.used[key] = true
	v, ok := o.m[key]
	return v, join(o.path, key), ok && v != nil
}

// ignore accepts fields that are allowed but not read (server-owned ones).
func (o *object) ignore(keys ...string) {
	for _, k := range keys {
		o.used[k] = true
	}
}

func (o *object) str(key string) string {
	v, path, ok := o.get(key)
	if !ok {
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		o.p.add(path, "must be a string, got %s", describe(v))
	}
	return s
}

// boolean returns nil when the field is absent, so callers can default it.
func (o *object) boolean(key string) *bool {
	v, path, ok := o.get(key)
	if !ok {
		return nil
	}
	b, isBool := v.(bool)
	if !isBool {
		o.p.add(path, "must be true or false, got %s", describe(v))
		return nil
	}
	return &b
}

func (o *object) object(key string) (*object, bool) {
	v, path, ok := o.get(key)
	if !ok {
		return nil, false
	}
	return newObject(path, v, o.p)
}

// strMap reads a mapping of strings, such as labels. Values that are not
// strings are reported one by one.
func (o *object) strMap(key string) map[string]string {
	v, path, ok := o.get(key)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		o.p.add(path, "must be a mapping of strings, got %s", describe(v))
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range sortedKeys(m) {
		s, isStr := m[k].(string)
		if !isStr {
			o.p.add(join(path, k), "must be a string, got %s (quote it)", describe(m[k]))
			continue
		}
		out[k] = s
	}
	return out
}

// finish reports every field that is not part of the schema, with the
// fields that are, so a typo is easy to spot.
func (o *object) finish(known ...string) {
	for _, k := range sortedKeys(o.m) {
		if !o.used[k] {
			o.p.add(join(o.path, k), "unknown field; known fields here are %s", strings.Join(known, ", "))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// describe names the type of a decoded value the way a YAML author thinks
// of it.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case json.Number, float64, int, int64, uint64:
		return fmt.Sprintf("number %v", v)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", v)
}
