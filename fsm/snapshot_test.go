package fsm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/internal/golden"
)

// The snapshot this binary writes is byte for byte the released golden file
// of the current version.
func TestSnapshotGolden(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	a.seed()
	b.seed()
	sa, sb := a.snapshot(), b.snapshot()
	if !bytes.Equal(sa, sb) {
		t.Fatal("two FSMs that applied the same log wrote different snapshots")
	}
	name := filepath.Join("testdata", fmt.Sprintf("snapshot.v%d.ndjson", snapshotVersion))
	if _, err := os.Stat(name); *update && errors.Is(err, os.ErrNotExist) {
		golden.Write(t, name, sa)
	}
	if want := golden.Released(t, name); !bytes.Equal(sa, want) {
		t.Errorf("snapshot format changed without a new version; got:\n%s", sa)
	}
}

var goldenSnapshotName = regexp.MustCompile(`^snapshot\.v([0-9]+)\.ndjson$`)

// Every released snapshot version restores into the seeded state: Raft
// snapshots on disk from older binaries must still load (rule 3).
func TestEverySnapshotGoldenRestores(t *testing.T) {
	a := newHarness(t)
	a.seed()
	current := a.snapshot()
	versions := 0
	for _, name := range golden.Files(t, "testdata") {
		t.Run(filepath.Base(name), func(t *testing.T) {
			m := goldenSnapshotName.FindStringSubmatch(filepath.Base(name))
			if m == nil {
				t.Fatalf("no test decodes %s: name golden snapshots snapshot.vN.ndjson", name)
			}
			versions++
			in := golden.Released(t, name)
			var hdr snapshotHeader
			if err := json.Unmarshal(in[:bytes.IndexByte(in, '\n')], &hdr); err != nil || strconv.Itoa(hdr.Version) != m[1] {
				t.Fatalf("header %+v (%v) does not match the file name", hdr, err)
			}
			c := newHarness(t)
			if err := c.f.Restore(io.NopCloser(bytes.NewReader(in))); err != nil {
				t.Fatal(err)
			}
			if c.f.AppliedIndex() != a.f.AppliedIndex() {
				t.Errorf("restored index %d, want %d", c.f.AppliedIndex(), a.f.AppliedIndex())
			}
			if got := c.snapshot(); !bytes.Equal(got, current) {
				t.Errorf("restored state differs from the seeded one; it snapshots as:\n%s", got)
			}
			if d, ok := c.f.View().Tag("app", "multi"); !ok || d != dg("idx") {
				t.Error("restored state lost a tag")
			}
		})
	}
	if versions < snapshotVersion {
		t.Errorf("%d golden snapshots, want one per version 1..%d", versions, snapshotVersion)
	}
}

// reseal turns snapshot lines (header and rows, with or without a
// trailer) into a version 2 snapshot with a correct trailer, so that a
// corrupt row is caught by the row checks, not by the hash.
func reseal(b []byte) []byte {
	lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
	if strings.HasPrefix(lines[len(lines)-1], `{"t":"end"`) {
		lines = lines[:len(lines)-1]
	}
	lines[len(lines)-1] = strings.TrimSuffix(lines[len(lines)-1], "\n") + "\n"
	lines[0] = strings.Replace(lines[0], `"version":1`, `"version":2`, 1)
	body := strings.Join(lines, "")
	sum := sha256.Sum256([]byte(body))
	end, _ := json.Marshal(snapshotTrailer{Rows: int64(len(lines) - 1), SHA256: hex.EncodeToString(sum[:])})
	return []byte(body + `{"t":"end","v":` + string(end) + "}\n")
}

func replaceOnce(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("fixture lacks %q", old)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

func dropLine(t *testing.T, b []byte, containing string) []byte {
	t.Helper()
	var out []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if !strings.Contains(l, containing) {
			out = append(out, l)
		}
	}
	if len(out) == len(strings.SplitAfter(string(b), "\n")) {
		t.Fatalf("fixture has no line with %q", containing)
	}
	return []byte(strings.Join(out, ""))
}

// expectRefused restores in into a seeded FSM and wants an error naming
// want, with the state untouched; CheckSnapshot must agree.
func expectRefused(t *testing.T, in []byte, want string) {
	t.Helper()
	h := newHarness(t)
	h.seed()
	before := h.snapshot()
	err := h.f.Restore(io.NopCloser(bytes.NewReader(in)))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("restore: err = %v, want one mentioning %q", err, want)
	}
	if _, cerr := CheckSnapshot(bytes.NewReader(in)); cerr == nil {
		t.Error("CheckSnapshot accepted what Restore refused")
	}
	if after := h.snapshot(); !bytes.Equal(before, after) {
		t.Error("a refused restore changed the state")
	}
}

// Every row is checked, in both versions: with a correct trailer a bad row
// must still be refused, since it would restore "fine" and then serve 500s
// or panic a later Apply.
func TestRestoreRefusesBadRows(t *testing.T) {
	v1 := golden.Released(t, filepath.Join("testdata", "snapshot.v1.ndjson"))
	m1 := dg("m1").String()
	layer := dg("layer").String()
	tests := []struct {
		name   string
		mutate func(t *testing.T, b []byte) []byte
		want   string
	}{
		{"digest sha256:zz", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"Digest":"`+layer+`","Size":20`, `"Digest":"sha256:zz","Size":20`)
		}, "sha256:zz"},
		{"unknown digest algorithm", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"Digest":"`+layer+`","Size":20`, `"Digest":"md5:d41d8cd98f00b204e9800998ecf8427e","Size":20`)
		}, "md5"},
		{"negative blob size", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"Size":20`, `"Size":-20`)
		}, "negative size"},
		{"negative manifest size", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"Size":100`, `"Size":-1`)
		}, "negative size"},
		{"bad subject digest", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"Subject":"`+m1+`","Blobs"`, `"Subject":"sha256:`+strings.Repeat("A", 64)+`","Blobs"`)
		}, "subject"},
		{"invalid repository name", func(t *testing.T, b []byte) []byte {
			return bytes.ReplaceAll(b, []byte(`"other"`), []byte(`"Other/../x"`))
		}, "not a valid repository name"},
		{"invalid tag", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"Tag":"multi"`, `"Tag":"-multi"`)
		}, "not a valid tag"},
		{"tag of a missing manifest", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"Tag":"multi","Digest":"`+dg("idx").String(), `"Tag":"multi","Digest":"`+dg("gone").String())
		}, "does not hold"},
		{"duplicate tag", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"Tag":"v1"`, `"Tag":"latest"`)
		}, "given twice"},
		{"duplicate blob row", func(t *testing.T, b []byte) []byte {
			line := `{"t":"blob","v":{"Repo":"other","Digest":"` + layer + `","Size":20,"Linked":"2026-03-04T05:06:12Z"}}` + "\n"
			return replaceOnce(t, b, line, line+line)
		}, "given twice"},
		{"referrer without its manifest", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"Digest":"`+dg("sig").String()+`"}}`, `"Digest":"`+dg("x").String()+`"}}`)
		}, "no such manifest"},
		{"repository counter disagrees", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"Name":"app","Manifests":3`, `"Name":"app","Manifests":4`)
		}, "counts"},
		{"rows of a repository without a row", func(t *testing.T, b []byte) []byte { return dropLine(t, b, `{"t":"repo","v":{"Name":"other"`) }, "no repo row"},
		{"unknown field", func(t *testing.T, b []byte) []byte { return replaceOnce(t, b, `"Size":20,`, `"Size":20,"Evil":1,`) }, "Evil"},
		{"unknown table", func(t *testing.T, b []byte) []byte { return replaceOnce(t, b, `{"t":"blob"`, `{"t":"nope"`) }, "unknown table"},
		{"resource document not JSON", func(t *testing.T, b []byte) []byte {
			return regexp.MustCompile(`("t":"resource","v":\{[^}]*"Document":)"[^"]*"`).ReplaceAll(b, []byte(`${1}"bm90IGpzb24="`))
		}, "not a JSON object"},
		{"resource generation zero", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"Name":"hub","Generation":2`, `"Name":"hub","Generation":0`)
		}, "generation"},
		{"history without a current resource", func(t *testing.T, b []byte) []byte { return dropLine(t, b, `{"t":"resource"`) }, "history"},
		{"header index 2^64-1", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"index":8}`, `"index":18446744073709551615}`)
		}, "index"},
	}
	for _, tt := range tests {
		for _, version := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/v%d", tt.name, version), func(t *testing.T) {
				in := tt.mutate(t, bytes.Clone(v1))
				if version == 2 {
					in = reseal(in)
				}
				expectRefused(t, in, tt.want)
			})
		}
	}
}

// The trailer catches what no row check can: a file cut at a row boundary,
// a flipped bit that still parses, a file that is not a snapshot.
func TestRestoreRefusesDamagedFiles(t *testing.T) {
	h := newHarness(t)
	h.seed()
	good := h.snapshot()
	lines := strings.SplitAfter(string(good), "\n")
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", "empty file"},
		{"foreign", "\x89PNG\r\n\x1a\nIHDR", "not a Berth FSM snapshot"},
		{"backup header, not fsm", `{"format":"berth-snapshot","version":1,"index":3}` + "\n", "not a Berth FSM snapshot"},
		{"newer version", strings.Replace(string(good), `"version":2`, `"version":3`, 1), "newer than this binary"},
		{"header only", lines[0], "truncated"},
		{"cut at a row boundary", strings.Join(lines[:len(lines)-3], ""), "truncated"},
		{"trailer dropped", strings.Join(lines[:len(lines)-2], ""), "truncated"},
		{"cut mid-line", string(good[:len(good)/2]), "truncated"},
		{"trailer without newline", strings.TrimSuffix(string(good), "\n"), "truncated"},
		{"bit flip", strings.Replace(string(good), `"Size":20`, `"Size":28`, 1), "checksum mismatch"},
		{"flipped header index", strings.Replace(string(good), `"index":8`, `"index":9`, 1), "checksum mismatch"},
		{"row dropped", string(dropLine(t, good, `{"t":"blob","v":{"Repo":"other"`)), "trailer counts 14 rows, the file holds 13"},
		{"data after the trailer", string(good) + lines[1], "after the trailer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expectRefused(t, []byte(tt.in), tt.want) })
	}
}

// A file without newlines is not buffered whole.
func TestSnapshotLineIsBounded(t *testing.T) {
	lr := &lineReader{br: bufio.NewReaderSize(strings.NewReader(strings.Repeat("x", 100)), 16), max: 50}
	if _, err := lr.next(); err == nil || !strings.Contains(err.Error(), "longer than 50 bytes") {
		t.Errorf("err = %v", err)
	}
	lr = &lineReader{br: bufio.NewReaderSize(strings.NewReader(strings.Repeat("x", 40)+"\n"), 16), max: 50}
	if l, err := lr.next(); err != nil || len(l) != 40 {
		t.Errorf("a line under the bound: %d %v", len(l), err)
	}
}

func TestCheckSnapshotReportsEmptiness(t *testing.T) {
	h := newHarness(t)
	info, err := CheckSnapshot(bytes.NewReader(h.snapshot()))
	if err != nil || !info.Empty || info.Version != snapshotVersion {
		t.Errorf("empty state: %+v %v", info, err)
	}
	if !h.f.View().Empty() {
		t.Error("a new FSM is not empty")
	}
	h.must(events.ResourceApplied{Kind: "Registry", Name: "r", Document: []byte(`{"metadata":{}}`)})
	if h.f.View().Empty() {
		t.Error("an FSM holding a resource is empty")
	}
	h.must(events.ResourceDeleted{Kind: "Registry", Name: "r"}, events.BlobLinked{Repo: "a", Digest: dg("b")})
	if h.f.View().Empty() {
		t.Error("an FSM holding a repository is empty")
	}
	h.seed()
	info, err = CheckSnapshot(bytes.NewReader(h.snapshot()))
	if err != nil || info.Empty || info.Index != h.f.AppliedIndex() || info.Rows != 16 {
		t.Errorf("seeded state: %+v %v", info, err)
	}
}

// Whatever a restore is given, it never panics, and what it accepts is a
// state whose own snapshot it accepts again.
func FuzzCheckSnapshot(f *testing.F) {
	for _, name := range []string{"snapshot.v1.ndjson", "snapshot.v2.ndjson"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		info, err := CheckSnapshot(bytes.NewReader(in))
		if err != nil {
			return
		}
		h := newHarness(t)
		if err := h.f.Restore(io.NopCloser(bytes.NewReader(in))); err != nil {
			t.Fatalf("CheckSnapshot accepted what Restore refuses: %v", err)
		}
		again, err := CheckSnapshot(bytes.NewReader(h.snapshot()))
		if err != nil {
			t.Fatalf("the snapshot of a restored state is refused: %v", err)
		}
		if again.Empty != info.Empty || again.Index != info.Index {
			t.Fatalf("round trip changed %+v into %+v", info, again)
		}
	})
}

// A backup's header index and its rows come from one FSM step: while
// events are applied, every SnapshotAt holds exactly as many rows as the
// index it reports (each event here links one new blob).
func TestSnapshotAtPairsStateAndIndex(t *testing.T) {
	h := newHarness(t)
	const n = 3000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			h.must(events.BlobLinked{Repo: "r", Digest: dg(strconv.Itoa(i)), Size: 1})
		}
	}()
	for checks := 0; ; checks++ {
		select {
		case <-done:
			if checks == 0 {
				t.Fatal("no snapshot taken while applying")
			}
			return
		default:
		}
		s, index := h.f.SnapshotAt()
		it, err := s.(*snapshot).txn.Get(tBlob, idx)
		if err != nil {
			t.Fatal(err)
		}
		rows := uint64(0)
		for o := it.Next(); o != nil; o = it.Next() {
			rows++
		}
		if rows != index {
			t.Fatalf("snapshot at index %d holds %d blobs", index, rows)
		}
	}
}
