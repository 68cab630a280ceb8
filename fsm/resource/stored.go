package resource

import (
	"encoding/json"
	"errors"
	"fmt"
)

// unmarshalSpec runs a kind's validation over a stored spec, so that a
// decoded spec always has its defaults and is within bounds.
func unmarshalSpec(b []byte, kind string, validate func(any, *problems) any) (any, error) {
	p := &problems{}
	raw, ok := decodeSpec(b, p)
	if !ok {
		return nil, &ValidationError{Kind: kind, Problems: p.list}
	}
	spec := validate(raw, p)
	if len(p.list) > 0 {
		return nil, &ValidationError{Kind: kind, Problems: p.list}
	}
	return spec, nil
}

// decodeStored decodes a stored document of one kind: its name, its
// generation and its validated spec.
func decodeStored(doc []byte, kind string, validate func(any, *problems) any) (string, int64, any, error) {
	var d struct {
		Kind     string          `json:"kind"`
		Metadata Metadata        `json:"metadata"`
		Spec     json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return "", 0, nil, fmt.Errorf("decode %s: %w", kind, err)
	}
	if d.Kind != kind {
		return "", 0, nil, fmt.Errorf("decode %s: document is a %q", kind, d.Kind)
	}
	spec, err := unmarshalSpec(d.Spec, kind, validate)
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			ve.Name = d.Metadata.Name
		}
		return "", 0, nil, fmt.Errorf("decode %s %s: %w", kind, d.Metadata.Name, err)
	}
	return d.Metadata.Name, d.Metadata.Generation, spec, nil
}
