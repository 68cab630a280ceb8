// Package resource holds Berth's declarative resources (ARCHITECTURE.md
// rule 11): apiVersion/kind/metadata/spec documents, their parsing from
// multi-document YAML, their per-kind validation and their normalized
// form, which is what the log records. It is pure: no I/O, no clock.
package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// APIVersion is the only version of Berth's resource API so far.
const APIVersion = "berth.dev/v1"

// Metadata is the part of a resource that identifies and labels it. The
// FSM owns Generation and the timestamps; values sent by a user are ignored.
type Metadata struct {
	Name              string            `json:"name" yaml:"name"`
	Labels            map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty" yaml:"annotations,omitempty"`
	Generation        int64             `json:"generation,omitempty" yaml:"generation,omitempty"`
	CreationTimestamp string            `json:"creationTimestamp,omitempty" yaml:"creationTimestamp,omitempty"`
	UpdateTimestamp   string            `json:"updateTimestamp,omitempty" yaml:"updateTimestamp,omitempty"`
}

// Document is one resource as written by a user or stored by the FSM.
type Document struct {
	APIVersion string          `json:"apiVersion" yaml:"apiVersion"`
	Kind       string          `json:"kind" yaml:"kind"`
	Metadata   Metadata        `json:"metadata" yaml:"metadata"`
	Spec       json.RawMessage `json:"spec" yaml:"-"`
}

// kindInfo describes one kind: its canonical name, how it is spelled in
// URLs and on the command line, and how its spec is checked.
type kindInfo struct {
	Kind     string
	Plural   string
	validate func(spec json.RawMessage) (normalized any, errs []error)
}

var kinds = map[string]kindInfo{
	"registry": {Kind: "Registry", Plural: "registries", validate: validateRegistry},
}

// Kinds lists the canonical kind names, sorted.
func Kinds() []string {
	var out []string
	for _, k := range kinds {
		out = append(out, k.Kind)
	}
	sort.Strings(out)
	return out
}

// CanonicalKind maps "Registry", "registry", "registries" or "reg" to
// "Registry"; ok is false for an unknown kind.
func CanonicalKind(s string) (string, bool) {
	s = strings.ToLower(s)
	for key, k := range kinds {
		if s == key || s == k.Plural || (key == "registry" && (s == "reg" || s == "regs")) {
			return k.Kind, true
		}
	}
	return "", false
}

// ParseYAML reads a stream of YAML (or JSON) documents separated by
// "---". Empty documents are skipped. An error names the document.
func ParseYAML(r io.Reader) ([]Document, error) {
	dec := yaml.NewDecoder(r)
	var docs []Document
	for i := 1; ; i++ {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(node.Content) == 0 || (node.Content[0].Kind == yaml.ScalarNode && node.Content[0].Tag == "!!null") {
			continue
		}
		var generic any
		if err := node.Decode(&generic); err != nil {
			return nil, fmt.Errorf("document %d (line %d): %w", i, node.Line, err)
		}
		m, ok := generic.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("document %d (line %d): a resource must be a mapping with apiVersion, kind, metadata and spec", i, node.Line)
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("document %d (line %d): %w", i, node.Line, err)
		}
		d, err := ParseJSON(b)
		if err != nil {
			return nil, fmt.Errorf("document %d (line %d): %w", i, node.Line, err)
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// ParseJSON reads one document in JSON.
func ParseJSON(b []byte) (Document, error) {
	var d Document
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Document{}, fmt.Errorf("not a resource: %w", unknownFieldHint(err))
	}
	return d, nil
}

func unknownFieldHint(err error) error {
	if strings.Contains(err.Error(), "unknown field") {
		return fmt.Errorf("%w (top-level fields are apiVersion, kind, metadata, spec)", err)
	}
	return err
}

var (
	nameRe     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	labelKeyRe = regexp.MustCompile(`^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)
	labelValRe = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$`)
)

// Validate checks a document and returns its normalized JSON: canonical
// field order, defaults applied, FSM-owned metadata stripped. Every
// problem is reported at once, each with its field path.
func Validate(d Document) ([]byte, error) {
	var errs []error
	if d.APIVersion != APIVersion {
		errs = append(errs, fmt.Errorf("apiVersion: must be %s, got %q", APIVersion, d.APIVersion))
	}
	kind, ok := CanonicalKind(d.Kind)
	if !ok || kind != d.Kind {
		errs = append(errs, fmt.Errorf("kind: %q is not one of %s", d.Kind, strings.Join(Kinds(), ", ")))
	}
	if !nameRe.MatchString(d.Metadata.Name) {
		errs = append(errs, fmt.Errorf("metadata.name: %q must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit", d.Metadata.Name))
	}
	errs = append(errs, validateLabels("metadata.labels", d.Metadata.Labels, true)...)
	errs = append(errs, validateLabels("metadata.annotations", d.Metadata.Annotations, false)...)
	var spec any
	if ok && kind == d.Kind {
		info := kinds[strings.ToLower(kind)]
		var specErrs []error
		spec, specErrs = info.validate(d.Spec)
		errs = append(errs, specErrs...)
	}
	if len(errs) > 0 {
		return nil, &ValidationError{Kind: d.Kind, Name: d.Metadata.Name, Errs: errs}
	}
	out := map[string]any{
		"apiVersion": d.APIVersion,
		"kind":       d.Kind,
		"metadata":   map[string]any{"name": d.Metadata.Name},
		"spec":       spec,
	}
	meta := out["metadata"].(map[string]any)
	if len(d.Metadata.Labels) > 0 {
		meta["labels"] = d.Metadata.Labels
	}
	if len(d.Metadata.Annotations) > 0 {
		meta["annotations"] = d.Metadata.Annotations
	}
	return json.Marshal(out)
}

func validateLabels(field string, m map[string]string, strictValues bool) []error {
	var errs []error
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !labelKeyRe.MatchString(k) {
			errs = append(errs, fmt.Errorf("%s: key %q is not a valid label key", field, k))
		}
		if strictValues && !labelValRe.MatchString(m[k]) {
			errs = append(errs, fmt.Errorf("%s.%s: value %q must be at most 63 letters, digits, '-', '_' or '.'", field, k, m[k]))
		}
	}
	return errs
}

// ValidationError lists every problem of one document.
type ValidationError struct {
	Kind, Name string
	Errs       []error
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q is invalid:", e.Kind, e.Name)
	for _, err := range e.Errs {
		b.WriteString("\n  - " + err.Error())
	}
	return b.String()
}

// Messages returns the problems one per string, for JSON answers.
func (e *ValidationError) Messages() []string {
	out := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		out[i] = err.Error()
	}
	return out
}
