package single

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// TestGCDeleteUntaggedKeepsIndexAndReferrers: `gc run --delete-untagged`
// must not take the untagged children of a tagged multi-arch index (CNCF
// Distribution's #3178) nor the untagged referrers (cosign-style
// signatures, an SBOM on a child) of what is kept; an untagged image and
// its own referrer go, bytes included.
func TestGCDeleteUntaggedKeepsIndexAndReferrers(t *testing.T) {
	data := t.TempDir()
	reg := startRegistryEnv(t, data, "", []string{"BERTH_GC_UPLOADMAXAGE=" + gcGrace.String()})
	ctx, cancel := harness.Ctx(5 * time.Minute)
	defer cancel()
	const repo = "gc/multi"
	layer := func(s string) []byte { return []byte(strings.Repeat(s, 100)) }
	push := func(im harness.LayeredImage) harness.LayeredImage {
		t.Helper()
		if _, err := im.Push(ctx, reg.addr); err != nil {
			t.Fatal(err)
		}
		return im
	}
	// The platform images and the index over them: only the index is tagged.
	amd := push(harness.NewLayeredImage(repo, "", "amd64", [][]byte{layer("a")}, nil, ""))
	arm := push(harness.NewLayeredImage(repo, "", "arm64", [][]byte{layer("b")}, nil, ""))
	child := func(im harness.LayeredImage, arch string) harness.Descriptor {
		d := im.Descriptor()
		d.Platform = map[string]string{"os": "linux", "architecture": arch}
		return d
	}
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": harness.MediaIndex,
		"manifests": []harness.Descriptor{child(amd, "amd64"), child(arm, "arm64")}})
	if err := harness.PutManifest(ctx, reg.addr, repo, "multi", harness.MediaIndex, index); err != nil {
		t.Fatal(err)
	}
	indexDesc := harness.Desc(harness.MediaIndex, index)
	// A signature of the index and an SBOM of one child, by digest.
	sig := push(harness.NewLayeredImage(repo, "", "sig", [][]byte{[]byte(`{"critical":{"image":{"docker-manifest-digest":"` + indexDesc.Digest + `"}}}`)},
		&indexDesc, "application/vnd.dev.cosign.artifact.sig.v1+json"))
	amdDesc := amd.Descriptor()
	sbom := push(harness.NewLayeredImage(repo, "", "sbom", [][]byte{layer("s")}, &amdDesc, "application/spdx+json"))
	// An image whose tag is deleted, and its signature: both garbage.
	orphan := push(harness.NewLayeredImage(repo, "orphan", "orphan", [][]byte{layer("o")}, nil, ""))
	orphanDesc := orphan.Descriptor()
	orphanSig := push(harness.NewLayeredImage(repo, "", "orphan-sig", [][]byte{layer("x")}, &orphanDesc, "application/vnd.dev.cosign.artifact.sig.v1+json"))
	if err := harness.DeleteTag(ctx, reg.addr, repo, "orphan"); err != nil {
		t.Fatal(err)
	}

	time.Sleep(gcGrace + 2*time.Second)
	ctl := harness.Tool(t, "clusterctl")
	g := func(args ...string) string {
		return harness.Run(t, []string{"BERTH_TOKEN="}, ctl, append([]string{"--server", "http://" + reg.addr, "--token-file", filepath.Join(data, "admin.token")}, args...)...)
	}
	t.Log(g("gc", "run", "--dry-run", "--delete-untagged"))
	t.Log(g("gc", "run", "--wait", "--delete-untagged"))

	if err := harness.VerifyManifest(ctx, reg.addr, repo, "multi", harness.MediaIndex, index); err != nil {
		t.Errorf("the tagged index: %v", err)
	}
	for name, im := range map[string]harness.LayeredImage{"amd64 child": amd, "arm64 child": arm, "index signature": sig, "child SBOM": sbom} {
		if err := im.Verify(ctx, reg.addr); err != nil {
			t.Errorf("%s after gc run --delete-untagged: %v", name, err)
		}
	}
	code, _, body, err := harness.HTTPStatus(ctx, "GET", "http://"+reg.addr+"/v2/"+repo+"/referrers/"+indexDesc.Digest, nil, nil)
	if err != nil || code != 200 || !strings.Contains(string(body), sig.ManifestDigest) {
		t.Errorf("referrers of the index: %d %v %s, want the signature listed", code, err, body)
	}
	for name, im := range map[string]harness.LayeredImage{"untagged image": orphan, "its signature": orphanSig} {
		if code, err := harness.ManifestStatus(ctx, reg.addr, repo, im.ManifestDigest); err != nil || code != 404 {
			t.Errorf("%s after gc run --delete-untagged: manifest %d %v, want 404", name, code, err)
		}
	}

	// On disk: exactly the kept digests (the index, its children, the
	// referrers, and their blobs); the orphan's and its signature's are gone.
	listed, err := harness.FSBlobs(data)
	if err != nil {
		t.Fatal(err)
	}
	keep := harness.Reachable([]harness.LayeredImage{amd, arm, sig, sbom})
	keep[indexDesc.Digest] = true
	missing, leftover := harness.CheckStore(listed, keep)
	if len(missing) > 0 {
		t.Errorf("kept digests missing on disk: %v", missing)
	}
	if len(leftover) > 0 {
		t.Errorf("digests left on disk that nothing reaches: %v", leftover)
	}
	for _, d := range append(orphan.Digests(), orphanSig.Digests()...) {
		if slices.Contains(listed, d) {
			t.Errorf("garbage %s still on disk", d)
		}
	}
}
