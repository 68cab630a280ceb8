package node

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/events"
)

// BadEntryError is the leader's answer to bytes that are not an event this
// binary can decode. Nothing reaches the log: an entry that no node can
// decode would stop every FSM that meets it.
type BadEntryError struct{ Err error }

func (e *BadEntryError) Error() string { return "not a valid Berth event: " + e.Err.Error() }
func (e *BadEntryError) Unwrap() error { return e.Err }

// GateError refuses an event of a codec generation that some voter has not
// announced it can decode. It clears once those voters are upgraded.
type GateError struct {
	Type       events.Type
	Version    int
	Generation int
	Behind     []string // voters, with the generation each announced
}

func (e *GateError) Error() string {
	return fmt.Sprintf("%s v%d needs codec generation %d on every voter, but %s: upgrade those nodes first",
		e.Type, e.Version, e.Generation, strings.Join(e.Behind, ", "))
}

// Unavailable makes the HTTP layers answer 503: the write may succeed
// after the rolling upgrade finishes.
func (e *GateError) Unavailable() bool { return true }

// admit checks an encoded event on the leader, just before raft.Apply: it
// must decode, and every voter must decode its generation.
func (n *Node) admit(b []byte) error {
	typ, version, err := events.Header(b)
	if err == nil {
		_, err = events.Decode(b)
	}
	if err != nil {
		return &BadEntryError{Err: err}
	}
	gen, err := events.GenerationOf(typ, version)
	if err != nil {
		return &BadEntryError{Err: err}
	}
	if gen <= events.BaselineGeneration || n.members == nil {
		return nil // every release decodes it, or this node is the only voter
	}
	f := n.raft.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return &UnavailableError{Err: fmt.Errorf("read raft configuration: %w", err)}
	}
	behind := votersBehind(gen, f.Configuration().Servers, n.cfg.Node.ID, func(id string) (int, bool) {
		m, ok := n.members.member(id)
		return m.Codec, ok
	})
	if len(behind) > 0 {
		return &GateError{Type: typ, Version: version, Generation: gen, Behind: behind}
	}
	return nil
}

// votersBehind lists the voters that have not announced codec generation
// gen. A voter never heard of through gossip has announced nothing. Self
// is this binary, which decoded the event already.
func votersBehind(gen int, servers []raft.Server, self string, announced func(id string) (int, bool)) []string {
	var behind []string
	for _, s := range servers {
		if s.Suffrage != raft.Voter || string(s.ID) == self {
			continue
		}
		g, ok := announced(string(s.ID))
		switch {
		case !ok:
			behind = append(behind, string(s.ID)+" (not seen through gossip)")
		case max(g, events.BaselineGeneration) < gen:
			behind = append(behind, fmt.Sprintf("%s (generation %d)", s.ID, max(g, events.BaselineGeneration)))
		}
	}
	slices.Sort(behind)
	return behind
}
