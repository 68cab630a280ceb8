// Package replication makes a Berth cluster a mirror of another (issue
// 12): the mirror's leader follows the origin's event stream and replays
// each change through its own log.
//
// How a mirror follows its origin, and why:
//
//   - The origin publishes every accepted change as a CloudEvent on its
//     JetStream stream, in Raft index order, with the index in the
//     Berth-Index header (events/outbox). The mirror reads that stream
//     with an ordered consumer (ephemeral, no acks) that starts at the
//     stream sequence after its cursor. The cursor lives in the mirror's
//     own log (events.MirrorCursor), not in a durable consumer on the
//     origin: a durable consumer would be state on the origin that two
//     mirror leaders of overlapping terms could both drain, while a cursor
//     in the log is fenced by the mirror's Raft term like every other
//     leader job (rule 9), survives failover and backups, and needs no
//     write permission on the origin's NATS beyond reading the stream.
//   - For each event it copies what the mirror lacks from the origin's OCI
//     API, verifying every byte against its digest (blob.Store.Put checks
//     while it writes), then commits BlobLinked, ManifestPut, TagSet or
//     the delete through its own log, and only then the cursor (every
//     cursorEvery events and when the stream is quiet: cursor.go). A
//     crash between the two repeats those events on the next leader;
//     every change is idempotent (the same manifest, a tag to the same
//     digest, a delete of something already gone is skipped), so nothing
//     is lost and nothing is applied twice in effect. Bytes are fetched
//     ahead of the ordered apply (prefetch.go), and events of different
//     repositories are applied side by side, those of one repository in
//     the origin's order (apply.go).
//   - The leader reports its progress as events.ReplicationReported
//     (report.go): started, artifact.copied, failed once per change of
//     error, caught-up once a backlog is drained.
//   - A mirror without a cursor, or whose cursor's sequence fell out of
//     the stream's retention, first lists the origin (catalog, tags,
//     referrers) and copies everything. It notes the stream's last
//     sequence before it lists and the Berth-Applied-Index of the
//     listing: everything published up to that sequence is in the
//     listing, so the stream resumes after it, skipping events the
//     listing already held.
//
// Proxy (proxy.go) is the pull-through cache of mode: proxy and a
// mirror's fallback: origin: it runs on every node, on reads the OCI API
// hands it, rather than on the leader.
//
// The package knows nothing of the FSM or HTTP serving: the node resolves
// policies and secrets and hands it a Target to write through.
package replication
