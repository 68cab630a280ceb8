package api_test

import (
	"strconv"
	"testing"
)

// Manifest and tag writes answer with the Raft index of their event
// (Berth-Index), which is also the published event's ID suffix; each
// write's index is above the one before.
func TestWritesAnswerWithTheirIndex(t *testing.T) {
	c := client{t, startNode(t)}
	mt := "application/vnd.oci.image.manifest.v1+json"
	index := func(r resp) uint64 {
		t.Helper()
		i, err := strconv.ParseUint(r.hdr.Get("Berth-Index"), 10, 64)
		if err != nil || i == 0 {
			t.Fatalf("Berth-Index %q on a %d answer", r.hdr.Get("Berth-Index"), r.code)
		}
		return i
	}
	m := c.image("idx/app", nil)
	put := c.do("PUT", "/v2/idx/app/manifests/v1", ct(mt), m)
	c.expect(put, 201, "")
	p := index(put)
	tagDel := c.do("DELETE", "/v2/idx/app/manifests/v1", nil, nil)
	c.expect(tagDel, 202, "")
	td := index(tagDel)
	mDel := c.do("DELETE", "/v2/idx/app/manifests/"+put.hdr.Get("Docker-Content-Digest"), nil, nil)
	c.expect(mDel, 202, "")
	md := index(mDel)
	if !(p < td && td < md) {
		t.Errorf("indexes %d, %d, %d do not grow", p, td, md)
	}
	// A refused write has no index.
	bad := c.do("DELETE", "/v2/idx/app/manifests/v1", nil, nil)
	if bad.code < 400 || bad.hdr.Get("Berth-Index") != "" {
		t.Errorf("refused delete: %d with Berth-Index %q", bad.code, bad.hdr.Get("Berth-Index"))
	}
}
