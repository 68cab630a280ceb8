package events

import "fmt"

// A codec generation numbers what a Berth binary can decode. Every event
// type and schema version belongs to the generation that first decoded it,
// and a binary decodes everything up to its own Generation.
//
// A rolling upgrade runs old and new binaries side by side, and an entry
// that one voter cannot decode would stop that voter (see fsm.HaltError).
// So the leader proposes an event of generation g only once every voter
// has announced (through gossip) that it decodes generation g, as Consul
// gates features on the oldest server's version. Events of
// BaselineGeneration need no such check: every Berth release decodes them.
const BaselineGeneration = 1

// generations maps each type and schema version to its generation. Add an
// entry with every new decoder; TestEveryDecoderHasAGeneration checks it.
var generations = map[Type]map[int]int{
	TypeManifestPut:     {1: 1},
	TypeManifestDeleted: {1: 1},
	TypeTagSet:          {1: 1},
	TypeTagDeleted:      {1: 1},
	// Version 2 (a BlobLinked with Since) only once GC ever ran: gc.go.
	TypeBlobLinked:        {1: 1, 2: 2},
	TypeBlobUnlinked:      {1: 1},
	TypeRepositoryDeleted: {1: 1},
	TypeResourceApplied:   {1: 1},
	TypeResourceDeleted:   {1: 1},
	// Generation 2: one multi-document apply is one entry.
	TypeResourcesApplied: {1: 2},
	// Generation 2 too: the event outbox's cursor and the cluster's ID.
	TypeOutboxCursor:      {1: 2},
	TypeClusterIdentified: {1: 2},
	// Generation 2 too: garbage collection (gc.go).
	TypeGCStarted:      {1: 2},
	TypeGCMarked:       {1: 2},
	TypeGCSweepStarted: {1: 2},
	TypeGCSwept:        {1: 2},
	TypeGCCancelled:    {1: 2},
	// Generation 3: authentication's signing keys.
	TypeSigningKeyAdded: {1: 3},
	// Generation 3 too: batched pull times for retention.
	TypePullsRecorded: {1: 3},
	// Generation 3 too: the end of a retention run.
	TypeRetentionApplied: {1: 3},
	// Generation 3 too: bytes of a refused write, for GC.
	TypeBytesOrphaned: {1: 3},
	// Generation 3: read-only mode (readonly.go).
	TypeReadOnlySet: {1: 3},
	// Generation 3: quota enforcement starts (quota.go).
	TypeQuotasEnabled: {1: 3},
	// Generation 3: a mirror's cursor on its origin (mirror.go).
	TypeMirrorCursor: {1: 3},
	// Generation 4: replication progress (replication.go).
	TypeReplicationReported: {1: 4},
}

// Generation is the newest codec generation this binary decodes.
func Generation() int {
	g := BaselineGeneration
	for _, versions := range generations {
		for _, gen := range versions {
			g = max(g, gen)
		}
	}
	return g
}

// GenerationOf reports the generation of one type and schema version.
func GenerationOf(t Type, version int) (int, error) {
	versions, ok := generations[t]
	if !ok {
		return 0, fmt.Errorf("event %q: %w", t, ErrUnknownType)
	}
	g, ok := versions[version]
	if !ok {
		return 0, fmt.Errorf("event %s v%d: %w", t, version, ErrUnknownVersion)
	}
	return g, nil
}
