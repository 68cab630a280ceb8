package events

import (
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
)

// PullKind says what a pull fetched.
type PullKind uint8

const (
	PullManifest PullKind = iota + 1
	PullBlob
)

// Pull is one successful read of a manifest or blob, as the serving node
// saw it. It is a plain value (no pointers of its own) so that handing it
// to a queue costs no allocation on the read path.
type Pull struct {
	Kind       PullKind
	Time       time.Time
	Repository string
	Digest     digest.Digest
	// Tag is set when the manifest was pulled by tag.
	Tag        string
	MediaType  string
	Size       int64
	UserAgent  string
	RemoteAddr string
	// Actor is who pulled, when authentication is on.
	Actor string
}

// PullEventID names a pull event: "<cluster id>:<node id>:<boot>:<seq>",
// where boot is random per process start and seq counts the node's pulls
// since then. An ID of a logged event, "<cluster id>:<raft index>", has
// exactly one colon, so the two can never be equal, whatever the node ID.
func PullEventID(clusterID, nodeID, boot string, seq uint64) string {
	return clusterID + ":" + nodeID + ":" + boot + ":" + strconv.FormatUint(seq, 10)
}

// PullCloudEvent renders a pull as a CloudEvent with the given ID. Its
// data has index 0 (not from the log) and names the serving node.
func PullCloudEvent(clusterID, nodeID, id string, p Pull) CloudEvent {
	typ := CETypeBlobPulled
	if p.Kind == PullManifest {
		typ = CETypeManifestPulled
	}
	ce := CloudEvent{
		SpecVersion: "1.0", ID: id, Source: "berth://" + clusterID, Type: typ,
		Time: p.Time.UTC(), DataContentType: "application/json",
		Data: CloudEventData{
			Repository: p.Repository, Digest: p.Digest, Tag: p.Tag, MediaType: p.MediaType, Size: p.Size,
			Actor: p.Actor, UserAgent: p.UserAgent, RemoteAddr: p.RemoteAddr, Node: nodeID,
		},
	}
	if p.Tag != "" {
		ce.Subject = p.Repository + ":" + p.Tag
	} else {
		ce.Subject = p.Repository + "@" + p.Digest.String()
	}
	return ce
}
