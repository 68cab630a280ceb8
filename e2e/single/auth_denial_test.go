package single

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/e2e/harness"
)

// TestAuthAnonymous: anyone may pull from a public namespace, with crane
// and without credentials; an anonymous push is refused with a 401 whose
// challenge tells the client where to get a token and for what.
func TestAuthAnonymous(t *testing.T) {
	a := startAuthRegistry(t, t.TempDir())
	a.teams(t)
	ctx := authCtx(t)
	pub, private := harness.NewImage("pub/app", "1"), harness.NewImage("team-a/app", "1")
	for _, im := range []harness.Image{pub, private} {
		if err := im.PushAs(ctx, a.addr, harness.Basic(alice, alicePassword)); err != nil {
			t.Fatalf("alice pushes %s: %v", im.Repo, err)
		}
	}

	// crane with no credentials at all pulls the public image.
	crane, env := harness.Tool(t, "crane"), clientEnv(t)
	if got := strings.TrimSpace(harness.Run(t, env, crane, "--insecure", "digest", a.addr+"/pub/app:1")); got != pub.ManifestDigest {
		t.Errorf("anonymous crane digest = %q, want %s", got, pub.ManifestDigest)
	}
	harness.Run(t, env, crane, "--insecure", "pull", a.addr+"/pub/app:1", filepath.Join(t.TempDir(), "pub.tar"))
	if err := pub.VerifyAs(ctx, a.addr, ""); err != nil {
		t.Errorf("anonymous pull of the public namespace without a token: %v", err)
	}
	// ... but neither the private one, nor any push.
	if out := harness.RunFail(t, env, crane, "--insecure", "digest", a.addr+"/team-a/app:1"); !strings.Contains(out, "UNAUTHORIZED") {
		t.Errorf("anonymous crane digest of team-a: %s", out)
	}
	layer := writeFile(t, filepath.Join(t.TempDir(), "l.tar"), harness.TarWithFile("x", []byte("x")))
	if out := harness.RunFail(t, env, crane, "--insecure", "append", "-f", layer, "-t", a.addr+"/pub/app:anon"); !strings.Contains(out, "UNAUTHORIZED") {
		t.Errorf("anonymous crane push to pub: %s", out)
	}

	realm := "http://" + a.addr + "/token"
	for _, tc := range []struct {
		name, method, path, scope string
	}{
		{"push to the public namespace", "POST", "/v2/pub/app/blobs/uploads/", "repository:pub/app:pull,push"},
		{"manifest put in the public namespace", "PUT", "/v2/pub/app/manifests/anon", "repository:pub/app:pull,push"},
		{"delete in the public namespace", "DELETE", "/v2/pub/app/manifests/" + pub.ManifestDigest, "repository:pub/app:delete"},
		{"pull from a private namespace", "GET", "/v2/team-a/app/manifests/1", "repository:team-a/app:pull"},
		// The handler ignores a from= that is no repository name and opens
		// an upload session: it needs push like any other.
		{"an upload with a mount from an invalid name", "POST", "/v2/team-a/app/blobs/uploads/?mount=" + harness.Sha(private.Layer) + "&from=NOT..VALID", "repository:team-a/app:pull,push"},
		{"the base endpoint", "GET", "/v2/", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body, err := harness.Request(ctx, tc.method, "http://"+a.addr+tc.path, "")
			if err != nil || code != http.StatusUnauthorized {
				t.Fatalf("%s %s: %d %v, want 401: %s", tc.method, tc.path, code, err, body)
			}
			ch, err := harness.ParseChallenge(hdr.Get("WWW-Authenticate"))
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"realm": realm, "service": "berth"}
			if tc.scope != "" {
				want["scope"] = tc.scope
			}
			if ch.Scheme != "Bearer" || !maps.Equal(ch.Params, want) {
				t.Errorf("WWW-Authenticate %q, want Bearer with %v", hdr.Get("WWW-Authenticate"), want)
			}
			if e, err := harness.ParseOCIError(body); err != nil || e.Code != "UNAUTHORIZED" {
				t.Errorf("body %s: %v, want the UNAUTHORIZED error", body, err)
			}
		})
	}

	// The anonymous token the challenge leads to grants pull only.
	tok, err := harness.Token(ctx, a.addr, "", "", "repository:pub/app:pull,push")
	if err != nil {
		t.Fatal(err)
	}
	if got := grants(t, tok); !slices.Equal(got["repository:pub/app"], []string{"pull"}) || len(got) != 1 {
		t.Errorf("anonymous token grants %v, want pull on pub/app", got)
	}
	if err := pub.VerifyAs(ctx, a.addr, "Bearer "+tok); err != nil {
		t.Errorf("pull with the anonymous token: %v", err)
	}
	if err := harness.NewImage("pub/app", "anon").PushAs(ctx, a.addr, "Bearer "+tok); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("push with the anonymous token: %v, want 401", err)
	}
}

// TestAuthDenials: a robot with guest (pull) in team-a may pull there and
// nothing else, whether it sends Basic credentials, goes through the
// token flow by hand, or uses crane.
func TestAuthDenials(t *testing.T) {
	a := startAuthRegistry(t, t.TempDir())
	a.teams(t)
	ctx := authCtx(t)
	imA, imB := harness.NewImage("team-a/app", "1"), harness.NewImage("team-b/app", "1")
	for _, im := range []harness.Image{imA, imB} {
		if err := im.PushAs(ctx, a.addr, harness.Basic(alice, alicePassword)); err != nil {
			t.Fatalf("alice pushes %s: %v", im.Repo, err)
		}
	}
	basic := harness.Basic("reader-a", a.readerSecret)
	base := "http://" + a.addr

	t.Run("basic", func(t *testing.T) {
		if err := imA.VerifyAs(ctx, a.addr, basic); err != nil {
			t.Fatalf("reader-a pulls team-a: %v", err)
		}
		for _, tc := range []struct{ method, path string }{
			{"POST", "/v2/team-a/app/blobs/uploads/"},
			{"DELETE", "/v2/team-a/app/manifests/" + imA.ManifestDigest},
			{"GET", "/v2/team-b/app/manifests/1"},
			{"GET", "/v2/team-b/app/blobs/" + harness.Sha(imB.Layer)},
			{"GET", "/v2/_catalog"},
		} {
			code, _, body, err := harness.Request(ctx, tc.method, base+tc.path, basic)
			e, perr := harness.ParseOCIError(body)
			if err != nil || code != http.StatusForbidden || perr != nil || e.Code != "DENIED" || !strings.Contains(e.Message, "robot:reader-a") {
				t.Errorf("%s %s as reader-a: %d %v %s, want 403 DENIED naming the robot", tc.method, tc.path, code, err, body)
			}
		}
	})

	t.Run("token flow", func(t *testing.T) {
		// The grant is the intersection of what was asked and what the
		// robot may do: pull on team-a, nothing on team-b.
		tok, err := harness.Token(ctx, a.addr, "reader-a", a.readerSecret, "repository:team-a/app:pull,push,delete", "repository:team-b/app:pull")
		if err != nil {
			t.Fatal(err)
		}
		if got := grants(t, tok); len(got) != 1 || !slices.Equal(got["repository:team-a/app"], []string{"pull"}) {
			t.Fatalf("token grants %v, want only pull on team-a/app", got)
		}
		if err := imA.VerifyAs(ctx, a.addr, "Bearer "+tok); err != nil {
			t.Errorf("pull with the token: %v", err)
		}
		for _, tc := range []struct{ method, path, scope string }{
			{"POST", "/v2/team-a/app/blobs/uploads/", "repository:team-a/app:pull,push"},
			{"GET", "/v2/team-b/app/manifests/1", "repository:team-b/app:pull"},
		} {
			code, hdr, body, err := harness.Request(ctx, tc.method, base+tc.path, "Bearer "+tok)
			ch, _ := harness.ParseChallenge(hdr.Get("WWW-Authenticate"))
			if err != nil || code != http.StatusUnauthorized || ch.Params["error"] != "insufficient_scope" || ch.Params["scope"] != tc.scope {
				t.Errorf("%s %s with the token: %d %v %q %s, want 401 insufficient_scope for %s", tc.method, tc.path, code, err, hdr.Get("WWW-Authenticate"), body, tc.scope)
			}
		}
	})

	t.Run("mounts", func(t *testing.T) {
		// ci-team-a may push to team-a but not read team-b: it cannot
		// mount team-b's blobs, with or without naming the source.
		ci := harness.Basic("ci-team-a", a.ciSecret)
		layer := harness.Sha(imB.Layer)
		code, _, body, err := harness.Request(ctx, "POST", base+"/v2/team-a/app/blobs/uploads/?mount="+layer+"&from=team-b/app", ci)
		if e, _ := harness.ParseOCIError(body); err != nil || code != http.StatusForbidden || e.Code != "DENIED" || !strings.Contains(e.Message, "team-b/app") {
			t.Errorf("mount from team-b: %d %v %s, want 403 DENIED naming team-b/app", code, err, body)
		}
		if code, _, body, err := harness.Request(ctx, "POST", base+"/v2/team-a/app/blobs/uploads/?mount="+layer, ci); err != nil || code != http.StatusAccepted {
			t.Errorf("mount of team-b's blob without from: %d %v %s, want 202 (upload the bytes instead)", code, err, body)
		}
		if code, _, _, _ := harness.Request(ctx, "HEAD", base+"/v2/team-a/app/blobs/"+layer, ci); code != http.StatusNotFound {
			t.Errorf("team-b's layer in team-a after the refused mounts: %d, want 404", code)
		}
		// The same robot mounts within its namespace.
		if code, _, body, err := harness.Request(ctx, "POST", base+"/v2/team-a/copy/blobs/uploads/?mount="+harness.Sha(imA.Layer)+"&from=team-a/app", ci); err != nil || code != http.StatusCreated {
			t.Errorf("mount within team-a: %d %v %s, want 201", code, err, body)
		}
	})

	t.Run("crane", func(t *testing.T) {
		crane, env := harness.Tool(t, "crane"), clientEnv(t)
		harness.RunInput(t, env, a.readerSecret+"\n", crane, "auth", "login", a.addr, "-u", "reader-a", "--password-stdin")
		if got := strings.TrimSpace(harness.Run(t, env, crane, "--insecure", "digest", a.addr+"/team-a/app:1")); got != imA.ManifestDigest {
			t.Errorf("reader-a: crane digest %q, want %s", got, imA.ManifestDigest)
		}
		layer := writeFile(t, filepath.Join(t.TempDir(), "l.tar"), harness.TarWithFile("x", []byte("guest\n")))
		if out := harness.RunFail(t, env, crane, "--insecure", "append", "-f", layer, "-t", a.addr+"/team-a/app:guest"); !strings.Contains(out, "UNAUTHORIZED") {
			t.Errorf("reader-a pushes to team-a: %s", out)
		}
		if out := harness.RunFail(t, env, crane, "--insecure", "digest", a.addr+"/team-b/app:1"); !strings.Contains(out, "UNAUTHORIZED") {
			t.Errorf("reader-a pulls team-b: %s", out)
		}
	})

	// Nothing was written by the refused requests.
	code, _, _, _ := harness.Request(ctx, "GET", base+"/v2/team-a/app/manifests/guest", harness.Basic(alice, alicePassword))
	if code != http.StatusNotFound {
		t.Errorf("team-a/app:guest after the refused push: %d, want 404", code)
	}
}

// grants decodes a token's access claim (without verifying it: the
// registry does that) as "type:name" -> actions.
func grants(t *testing.T, tok string) map[string][]string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Access []struct {
			Type, Name string
			Actions    []string
		} `json:"access"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, a := range c.Access {
		out[a.Type+":"+a.Name] = a.Actions
	}
	return out
}
