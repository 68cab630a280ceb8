package consensus

import (
	"testing"

	"github.com/hashicorp/raft"
)

func TestPairIsMajority(t *testing.T) {
	servers := func(spec ...string) []raft.Server {
		var out []raft.Server
		for _, s := range spec {
			suffrage := raft.Voter
			if s[0] == '~' {
				suffrage, s = raft.Nonvoter, s[1:]
			}
			out = append(out, raft.Server{ID: raft.ServerID(s), Suffrage: suffrage})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		servers []raft.Server
		from    string
		want    bool
	}{
		{"three voters", servers("a", "b", "c"), "b", true},
		{"two voters", servers("a", "b"), "b", true},
		{"three voters and a non-voter", servers("a", "b", "c", "~d"), "b", true},
		{"four voters: two are not a majority", servers("a", "b", "c", "d"), "b", false},
		{"five voters", servers("a", "b", "c", "d", "e"), "b", false},
		{"asker is a non-voter", servers("a", "b", "~c"), "c", false},
		{"asker is not in the configuration", servers("a", "b", "c"), "x", false},
		{"leader itself is not a voter", servers("~a", "b", "c"), "b", false},
		{"asker claims to be the leader", servers("a", "b", "c"), "a", false},
		{"no asker named", servers("a", "b", "c"), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pairIsMajority(tc.servers, "a", tc.from); got != tc.want {
				t.Fatalf("pairIsMajority(%v, a, %q) = %v, want %v", tc.servers, tc.from, got, tc.want)
			}
		})
	}
}
