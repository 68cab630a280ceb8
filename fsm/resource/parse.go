package resource

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"gopkg.in/yaml.v3"
)

// ParseYAML reads a stream of YAML documents separated by "---" (JSON is
// YAML too, so a JSON object works as well). Empty documents are skipped.
//
// ParseYAML fails only when it cannot make a resource out of a document at
// all: broken YAML, or a document that is not a mapping. The error names
// the document by its position and line. Everything else (a wrong field
// type, an unknown field, a bad value) is left for Validate, which reports
// all of a document's problems at once.
func ParseYAML(r io.Reader) ([]Document, error) {
	dec := yaml.NewDecoder(r)
	var docs []Document
	for i := 1; ; i++ {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(node.Content) == 0 {
			continue
		}
		root := node.Content[0]
		if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
			continue // "---" with nothing (or only comments) after it
		}
		if root.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("document %d (line %d): a resource must be a mapping with apiVersion, kind, metadata and spec", i, root.Line)
		}
		lines := map[string]int{}
		prepare(root, "", lines)
		var raw any
		if err := root.Decode(&raw); err != nil {
			return nil, fmt.Errorf("document %d (line %d): %w", i, root.Line, err)
		}
		v, err := jsonValue(raw, "")
		if err != nil {
			return nil, fmt.Errorf("document %d (line %d): %w", i, root.Line, err)
		}
		d := fromValue(v.(map[string]any), lines)
		d.line = root.Line
		docs = append(docs, d)
	}
}

// prepare walks a YAML tree once, recording the line of every field path
// and turning scalars that YAML would read as timestamps, and non-string
// mapping keys, into plain strings: a resource is JSON, and `1: x` or
// `expires: 2026-01-01` should keep the text the user wrote.
func prepare(n *yaml.Node, path string, lines map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode {
				switch k.ShortTag() {
				case "!!int", "!!float", "!!bool", "!!null", "!!timestamp":
					k.Tag = "!!str"
				}
			}
			p := join(path, k.Value)
			if _, seen := lines[p]; !seen {
				lines[p] = k.Line
			}
			prepare(v, p, lines)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			lines[p] = c.Line
			prepare(c, p, lines)
		}
	case yaml.ScalarNode:
		if n.ShortTag() == "!!timestamp" {
			n.Tag = "!!str"
		}
	}
}

// jsonValue checks that a decoded YAML value can be JSON: string keys and
// finite numbers only.
func jsonValue(v any, path string) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			c, err := jsonValue(e, join(path, k))
			if err != nil {
				return nil, err
			}
			v[k] = c
		}
		return v, nil
	case map[any]any:
		return nil, fmt.Errorf("%s: mapping keys must be plain strings", orRoot(path))
	case []any:
		for i, e := range v {
			c, err := jsonValue(e, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			v[i] = c
		}
		return v, nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: .nan and .inf are not allowed", orRoot(path))
		}
		return v, nil
	case nil, string, bool, int, int64, uint64:
		return v, nil
	}
	return nil, fmt.Errorf("%s: unsupported YAML value of type %T", orRoot(path), v)
}

func orRoot(path string) string {
	if path == "" {
		return "document"
	}
	return path
}

// fromValue builds a Document from a decoded object, recording structural
// problems (wrong types, unknown fields) for Validate to report.
func fromValue(m map[string]any, lines map[string]int) Document {
	p := &problems{lines: lines}
	top, _ := newObject("", m, p)
	d := Document{lines: lines}
	d.APIVersion = top.str("apiVersion")
	d.Kind = top.str("kind")
	if meta, ok := top.object("metadata"); ok {
		d.Metadata.Name = meta.str("name")
		d.Metadata.Labels = meta.strMap("labels")
		d.Metadata.Annotations = meta.strMap("annotations")
		d.Metadata.Description = meta.str("description")
		meta.ignore("generation", "creationTimestamp", "updateTimestamp")
		meta.finish("name", "labels", "annotations", "description", "generation", "creationTimestamp", "updateTimestamp")
	}
	if spec, _, ok := top.get("spec"); ok {
		b, err := json.Marshal(spec)
		if err != nil { // jsonValue has already ruled this out
			p.add("spec", "cannot be encoded as JSON: %v", err)
		}
		d.Spec = b
	}
	// The status of a resource is observed, never desired: ignored, as the
	// Registry reference says.
	top.ignore("status")
	top.finish("apiVersion", "kind", "metadata", "spec", "status")
	d.problems = p.list
	return d
}
