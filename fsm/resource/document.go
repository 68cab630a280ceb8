// Package resource holds Berth's declarative resources (ARCHITECTURE.md
// rule 11): apiVersion/kind/metadata/spec documents, their parsing from
// multi-document YAML, their per-kind validation and their normalized
// form, which is what the log records. It is pure: no I/O, no clock.
//
// The flow is ParseYAML, then Normalize (which validates) for each
// document; the normalized JSON goes into events.ResourceApplied. The FSM
// adds metadata.generation and the timestamps.
package resource

import (
	"encoding/json"
	"sort"
	"strings"
)

// APIVersion is the only version of Berth's resource API so far.
const APIVersion = "berth.dev/v1"

// Metadata identifies and labels a resource. The FSM owns Generation and
// the timestamps: values a user sends are ignored, so the output of
// `clusterctl get -o yaml` can be applied again unchanged.
type Metadata struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Description is accepted here, as in the Registry reference, and
	// moved into spec.description by Normalize so that changing it bumps
	// the generation like any other change to the desired state.
	Description       string `json:"description,omitempty"`
	Generation        int64  `json:"generation,omitempty"`
	CreationTimestamp string `json:"creationTimestamp,omitempty"`
	UpdateTimestamp   string `json:"updateTimestamp,omitempty"`
}

// Document is one resource as written by a user or stored by the FSM.
type Document struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   Metadata        `json:"metadata"`
	Spec       json.RawMessage `json:"spec,omitempty"`

	line     int            // where the document starts in its YAML stream
	lines    map[string]int // field path -> line, for error messages
	problems []Problem      // structural problems found while parsing
}

// Line is the line of the YAML stream where the document starts, or 0 for
// a document that was not parsed from YAML.
func (d Document) Line() int { return d.line }

// kindInfo describes one kind: its canonical name, how it may be spelled
// in URLs and on the command line, and how its spec is checked.
type kindInfo struct {
	kind    string
	plural  string
	aliases []string
	// hasDescription says the spec has a description field that
	// metadata.description is folded into.
	hasDescription bool
	// validate checks a decoded spec (JSON numbers as json.Number), adds
	// every problem to p, and returns the spec with defaults applied.
	validate func(spec any, p *problems) any
}

// kinds is the fixed table of known kinds; it is never modified.
var kinds = []kindInfo{
	{kind: "Registry", plural: "registries", aliases: []string{"reg", "regs"}, hasDescription: true, validate: validateRegistry},
	{kind: "Webhook", plural: "webhooks", aliases: []string{"wh", "hook", "hooks"}, validate: validateWebhook},
	{kind: "Namespace", plural: "namespaces", aliases: []string{"ns"}, validate: validateNamespace},
	{kind: "User", plural: "users", validate: validateUser},
	{kind: "Robot", plural: "robots", aliases: []string{"rbt"}, validate: validateRobot},
	{kind: "RetentionPolicy", plural: "retentionpolicies", aliases: []string{"retention", "rp"}, validate: validateRetention},
	{kind: "ImmutabilityRule", plural: "immutabilityrules", aliases: []string{"immutability", "ir"}, validate: validateImmutability},
	{kind: "ReplicationPolicy", plural: "replicationpolicies", aliases: []string{"replication", "repl"}, validate: validateReplication},
}

func lookupKind(kind string) (kindInfo, bool) {
	for _, k := range kinds {
		if k.kind == kind {
			return k, true
		}
	}
	return kindInfo{}, false
}

// Kinds lists the canonical kind names, sorted.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k.kind)
	}
	sort.Strings(out)
	return out
}

// CanonicalKind maps the ways a user may name a kind ("Registry",
// "registry", "registries", "reg", any case) to its canonical name; ok is
// false for an unknown kind.
func CanonicalKind(s string) (kind string, ok bool) {
	s = strings.ToLower(s)
	for _, k := range kinds {
		if s == strings.ToLower(k.kind) || s == k.plural {
			return k.kind, true
		}
		for _, a := range k.aliases {
			if s == a {
				return k.kind, true
			}
		}
	}
	return "", false
}

// Spellings lists the lower-case names the command line takes for a kind
// besides its canonical one (CanonicalKind accepts each): the plural
// first, then the singular and the aliases. Shell completion offers them.
func Spellings(kind string) []string {
	k, ok := lookupKind(kind)
	if !ok {
		return nil
	}
	return append([]string{k.plural, strings.ToLower(k.kind)}, k.aliases...)
}

// Plural is the lower-case plural of a canonical kind ("registries"), as
// used in URLs; it returns the lower-cased input for an unknown kind.
func Plural(kind string) string {
	if k, ok := lookupKind(kind); ok {
		return k.plural
	}
	return strings.ToLower(kind)
}

// Condition is one observed fact about a resource, computed by the node
// that answers (a secret it cannot read, say) and shown under
// status.conditions. It is never part of the desired state or the log.
type Condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"` // "True", "False" or "Unknown"
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}
