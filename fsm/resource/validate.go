package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

var (
	// nameRe is a DNS label, as for Kubernetes object names: it is safe in
	// URLs, file names and metric labels.
	nameRe     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	labelKeyRe = regexp.MustCompile(`^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)
	labelValRe = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$`)
)

// maxAnnotationBytes bounds the annotations of one resource, which end up
// in every snapshot.
const maxAnnotationBytes = 64 << 10

// ValidationError lists every problem of one document.
type ValidationError struct {
	Kind, Name string
	Line       int // where the document starts in its YAML source, or 0
	Problems   []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	kind := e.Kind
	if kind == "" {
		kind = "resource"
	}
	fmt.Fprintf(&b, "%s %q is invalid:", kind, e.Name)
	for _, p := range e.Problems {
		b.WriteString("\n  - " + p.String())
	}
	return b.String()
}

// Messages returns the problems one per string, for JSON answers.
func (e *ValidationError) Messages() []string {
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p.String()
	}
	return out
}

// Validate checks a document completely. The error, a *ValidationError,
// lists every problem found, each with its field path.
func Validate(d Document) error {
	_, err := Normalize(d)
	return err
}

// Normalize validates a document and returns its canonical JSON, the form
// the log records: keys sorted, defaults applied, metadata.description
// folded into the spec, and the fields the FSM owns (generation,
// timestamps) and the status dropped. Two documents meaning the same
// desired state normalize to the same bytes, which is what makes a repeated
// apply a no-op.
func Normalize(d Document) ([]byte, error) {
	p := &problems{lines: d.lines, list: append([]Problem(nil), d.problems...)}

	switch d.APIVersion {
	case APIVersion:
	case "":
		p.required("apiVersion", "required: apiVersion: %s", APIVersion)
	default:
		p.add("apiVersion", "must be %s, got %q", APIVersion, d.APIVersion)
	}
	info, known := lookupKind(d.Kind)
	switch {
	case known:
	case d.Kind == "":
		p.required("kind", "required: one of %s", strings.Join(Kinds(), ", "))
	default:
		if k, ok := CanonicalKind(d.Kind); ok {
			p.add("kind", "%q is spelled %q", d.Kind, k)
		} else {
			p.add("kind", "%q is not one of %s", d.Kind, strings.Join(Kinds(), ", "))
		}
	}
	checkMetadata(d.Metadata, p)

	var spec any
	if known {
		raw, ok := decodeSpec(d.Spec, p)
		if ok && d.Metadata.Description != "" {
			foldDescription(info, d.Metadata.Description, raw, p)
		}
		if ok {
			spec = info.validate(raw, p)
		}
	}
	if len(p.list) > 0 {
		p.sortByLine()
		return nil, &ValidationError{Kind: d.Kind, Name: d.Metadata.Name, Line: d.line, Problems: p.list}
	}

	meta := map[string]any{"name": d.Metadata.Name}
	if len(d.Metadata.Labels) > 0 {
		meta["labels"] = d.Metadata.Labels
	}
	if len(d.Metadata.Annotations) > 0 {
		meta["annotations"] = d.Metadata.Annotations
	}
	return canonicalJSON(map[string]any{
		"apiVersion": d.APIVersion,
		"kind":       d.Kind,
		"metadata":   meta,
		"spec":       spec,
	})
}

func checkMetadata(m Metadata, p *problems) {
	switch {
	case m.Name == "":
		p.required("metadata.name", "required: 1-63 lowercase letters, digits or '-'")
	case !nameRe.MatchString(m.Name):
		p.add("metadata.name", "%q must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit", m.Name)
	}
	for _, k := range sortedKeys(m.Labels) {
		path := join("metadata.labels", k)
		if !labelKeyRe.MatchString(k) {
			p.add(path, "%q is not a valid label key: an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_' or '.'", k)
		}
		if v := m.Labels[k]; !labelValRe.MatchString(v) {
			p.add(path, "value %q must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", v)
		}
	}
	size := 0
	for _, k := range sortedKeys(m.Annotations) {
		if !labelKeyRe.MatchString(k) {
			p.add(join("metadata.annotations", k), "%q is not a valid annotation key: an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_' or '.'", k)
		}
		size += len(k) + len(m.Annotations[k])
	}
	if size > maxAnnotationBytes {
		p.add("metadata.annotations", "%d bytes in total, at most %d allowed", size, maxAnnotationBytes)
	}
	if len(m.Description) > maxDescription {
		p.add("metadata.description", "%d characters, at most %d allowed", len(m.Description), maxDescription)
	}
}

// decodeSpec reads the spec with numbers kept exact.
func decodeSpec(raw json.RawMessage, p *problems) (any, bool) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		p.add("spec", "not valid JSON: %v", err)
		return nil, false
	}
	return v, true
}

// foldDescription moves metadata.description into spec.description. Both
// may be given only when they agree.
func foldDescription(info kindInfo, desc string, spec any, p *problems) {
	if !info.hasDescription {
		p.add("metadata.description", "%s has no description", info.kind)
		return
	}
	m, ok := spec.(map[string]any)
	if !ok {
		return // the kind's validator reports the missing or odd spec
	}
	if cur, set := m["description"]; set && cur != nil && cur != desc {
		p.add("metadata.description", "differs from spec.description; give the description once")
		return
	}
	m["description"] = desc
}

// canonicalJSON encodes v with every object's keys sorted (encoding/json
// sorts map keys, not struct fields, so structs are re-read as maps).
func canonicalJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("normalize: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("normalize: %w", err)
	}
	return json.Marshal(generic)
}
