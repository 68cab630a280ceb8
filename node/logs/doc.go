// Package logs turns the node's three log sources into one stream: Raft's
// hclog lines and memberlist's "[LEVEL] memberlist: ..." lines are
// adapted into the node's slog handler, so every line has the same format
// (text or JSON) and the levels mean the same thing, and repeated warnings
// are folded into a periodic count (Dedup) so a dead peer or an unreachable
// store does not fill the disk.
package logs
