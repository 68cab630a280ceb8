package api

import (
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/fsm"
)

// maxMountScan bounds how many repositories of a namespace a mount
// without `from` looks into. Past it the mount is not done and the client
// uploads the blob instead, which is always correct, so a namespace with
// very many repositories cannot make a POST expensive.
const maxMountScan = 1000

// namespace is the first path component of a repository name: "team-a"
// of "team-a/app". A single-component name is its own namespace.
func namespace(repo string) string {
	ns, _, _ := strings.Cut(repo, "/")
	return ns
}

// sameNamespaceLink finds a link to d in a repository of the same
// namespace as repo, for a cross-repository mount without `from`: the
// repository named like the namespace itself, then those under "ns/", in
// name order (at most maxMountScan of them).
func sameNamespaceLink(view *fsm.View, repo string, d digest.Digest) (fsm.BlobLink, bool) {
	ns := namespace(repo)
	if l, ok := view.FindBlobLink(d); ok && namespace(l.Repo) == ns {
		return l, true // the common case: found without a scan
	}
	if l, ok := view.BlobLink(ns, d); ok {
		return l, true
	}
	prefix := ns + "/"
	last := prefix // every "ns/..." sorts after it
	for scanned := 0; scanned < maxMountScan; {
		names, more := view.Repositories(last, min(100, maxMountScan-scanned))
		for _, name := range names {
			if !strings.HasPrefix(name, prefix) {
				return fsm.BlobLink{}, false
			}
			if l, ok := view.BlobLink(name, d); ok {
				return l, true
			}
		}
		if !more || len(names) == 0 {
			break
		}
		scanned += len(names)
		last = names[len(names)-1]
	}
	return fsm.BlobLink{}, false
}
