package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The wire format of one log entry is a JSON envelope:
//
//	{"type":"TagSet","v":1,"time":"2026-01-02T03:04:05Z","data":{...}}
//
// JSON keeps the log and snapshots readable with ordinary tools, and the
// explicit "v" lets each payload evolve on its own.
type envelope struct {
	Type    Type            `json:"type"`
	Version int             `json:"v"`
	Time    time.Time       `json:"time"`
	Origin  *Origin         `json:"origin,omitempty"`
	Data    json.RawMessage `json:"data"`
}

// ErrUnknownType is returned for an event type this binary does not know:
// the log was written by a newer Berth. Upgrade this node before replaying it.
var ErrUnknownType = errors.New("unknown event type")

// ErrUnknownVersion is returned for a schema version this binary does not
// know, again a sign of a log written by a newer Berth.
var ErrUnknownVersion = errors.New("unknown event schema version")

// decoder turns a payload of one schema version into the current struct.
type decoder func(data []byte) (Payload, error)

// decoders holds, for each type, a decoder per schema version ever written.
// When a payload gains version 2, add a version-1 decoder that upgrades.
var decoders = map[Type]map[int]decoder{
	TypeManifestPut:         {1: decodeAs[ManifestPut]},
	TypeManifestDeleted:     {1: decodeAs[ManifestDeleted]},
	TypeTagSet:              {1: decodeAs[TagSet]},
	TypeTagDeleted:          {1: decodeAs[TagDeleted]},
	TypeBlobLinked:          {1: decodeAs[BlobLinked], 2: decodeAs[BlobLinked]},
	TypeBlobUnlinked:        {1: decodeAs[BlobUnlinked]},
	TypeRepositoryDeleted:   {1: decodeAs[RepositoryDeleted]},
	TypeResourceApplied:     {1: decodeAs[ResourceApplied]},
	TypeResourceDeleted:     {1: decodeAs[ResourceDeleted]},
	TypeResourcesApplied:    {1: decodeAs[ResourcesApplied]},
	TypeOutboxCursor:        {1: decodeAs[OutboxCursor]},
	TypeClusterIdentified:   {1: decodeAs[ClusterIdentified]},
	TypeGCStarted:           {1: decodeAs[GCStarted]},
	TypeGCMarked:            {1: decodeAs[GCMarked]},
	TypeGCSweepStarted:      {1: decodeAs[GCSweepStarted]},
	TypeGCSwept:             {1: decodeAs[GCSwept]},
	TypeGCCancelled:         {1: decodeAs[GCCancelled]},
	TypeSigningKeyAdded:     {1: decodeAs[SigningKeyAdded]},
	TypePullsRecorded:       {1: decodeAs[PullsRecorded]},
	TypeRetentionApplied:    {1: decodeAs[RetentionApplied]},
	TypeBytesOrphaned:       {1: decodeAs[BytesOrphaned]},
	TypeReadOnlySet:         {1: decodeAs[ReadOnlySet]},
	TypeQuotasEnabled:       {1: decodeAs[QuotasEnabled]},
	TypeMirrorCursor:        {1: decodeAs[MirrorCursor]},
	TypeReplicationReported: {1: decodeAs[ReplicationReported]},
}

func decodeAs[T Payload](data []byte) (Payload, error) {
	var p T
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, err
	}
	return p, nil
}

// Encode serializes an event for the Raft log.
func Encode(e Event) ([]byte, error) {
	if e.Payload == nil {
		return nil, errors.New("encode event: nil payload")
	}
	data, err := json.Marshal(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.Payload.EventType(), err)
	}
	env := envelope{
		Type:    e.Payload.EventType(),
		Version: e.Payload.SchemaVersion(),
		Time:    e.Time.UTC(),
		Data:    data,
	}
	if e.Origin != (Origin{}) {
		env.Origin = &e.Origin
	}
	return json.Marshal(env)
}

// Decode parses a log entry written by any version of Berth.
func Decode(b []byte) (Event, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return Event{}, fmt.Errorf("decode event envelope: %w", err)
	}
	versions, ok := decoders[env.Type]
	if !ok {
		return Event{}, fmt.Errorf("decode event %q: %w", env.Type, ErrUnknownType)
	}
	dec, ok := versions[env.Version]
	if !ok {
		return Event{}, fmt.Errorf("decode event %s v%d: %w", env.Type, env.Version, ErrUnknownVersion)
	}
	p, err := dec(env.Data)
	if err != nil {
		return Event{}, fmt.Errorf("decode event %s v%d: %w", env.Type, env.Version, err)
	}
	ev := Event{Time: env.Time, Payload: p}
	if env.Origin != nil {
		ev.Origin = *env.Origin
	}
	return ev, nil
}

// Header reads only an entry's type and schema version, for checks that
// need no payload.
func Header(b []byte) (Type, int, error) {
	var env struct {
		Type    Type `json:"type"`
		Version int  `json:"v"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return "", 0, fmt.Errorf("decode event envelope: %w", err)
	}
	return env.Type, env.Version, nil
}

// Types lists every event type this binary decodes, sorted.
func Types() []Type {
	out := make([]Type, 0, len(decoders))
	for t := range decoders {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// DecodePayload decodes the newest schema version of t from JSON, for
// tests that need a payload of every type.
func DecodePayload(t Type, data []byte) (Payload, error) {
	versions, ok := decoders[t]
	if !ok {
		return nil, fmt.Errorf("event %q: %w", t, ErrUnknownType)
	}
	newest := 0
	for v := range versions {
		newest = max(newest, v)
	}
	return versions[newest](data)
}
