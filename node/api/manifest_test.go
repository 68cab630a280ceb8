package api

import (
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"
)

func FuzzParseManifest(f *testing.F) {
	d := digest.FromString("x").String()
	seeds := []struct{ ct, body string }{
		{mtOCIManifest, `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"` + d + `","size":1},"layers":[{"mediaType":"l","digest":"` + d + `","size":2}]}`},
		{mtOCIIndex, `{"schemaVersion":2,"manifests":[{"mediaType":"a","digest":"` + d + `","size":3}]}`},
		{"", `{"schemaVersion":2,"mediaType":"` + mtDockerList + `","manifests":[]}`},
		{mtDockerManifest, `{"schemaVersion":2,"config":{"mediaType":"a","digest":"` + d + `","size":1},"layers":[],"subject":{"mediaType":"a","digest":"` + d + `","size":1}}`},
		{"", `{"schemaVersion":1,"fsLayers":[]}`},
		{"application/json", `[]`},
		{"", `null`},
	}
	for _, s := range seeds {
		f.Add(s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		p, err := parseManifest(contentType, body)
		if err != nil {
			// Every refusal is a client error with an OCI code, never a 500.
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != 400 {
				t.Fatalf("error is not a 400 apiError: %v", err)
			}
			return
		}
		for _, d := range append(append([]digest.Digest{}, p.Blobs...), p.Manifests...) {
			if d.Validate() != nil {
				t.Fatalf("accepted an invalid digest %q", d)
			}
		}
		if p.Subject != "" && p.Subject.Validate() != nil {
			t.Fatalf("accepted an invalid subject %q", p.Subject)
		}
		switch p.MediaType {
		case mtOCIManifest, mtOCIIndex, mtDockerManifest, mtDockerList:
		default:
			t.Fatalf("accepted media type %q", p.MediaType)
		}
	})
}
