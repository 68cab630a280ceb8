package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// jsonLines decodes each line buf holds, failing on any that is not JSON.
func jsonLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line is not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func jsonLogger(buf *bytes.Buffer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level}))
}

func TestHCLogLevels(t *testing.T) {
	cases := []struct {
		name      string
		handler   slog.Level
		log       func(hclog.Logger)
		wantLevel string // "" when nothing may be written
	}{
		{"trace is debug", slog.LevelDebug, func(l hclog.Logger) { l.Trace("m") }, "DEBUG"},
		{"debug is debug", slog.LevelDebug, func(l hclog.Logger) { l.Debug("m") }, "DEBUG"},
		{"debug hidden at info", slog.LevelInfo, func(l hclog.Logger) { l.Debug("m") }, ""},
		{"trace hidden at info", slog.LevelInfo, func(l hclog.Logger) { l.Trace("m") }, ""},
		{"info", slog.LevelInfo, func(l hclog.Logger) { l.Info("m") }, "INFO"},
		{"warn", slog.LevelInfo, func(l hclog.Logger) { l.Warn("m") }, "WARN"},
		{"error", slog.LevelInfo, func(l hclog.Logger) { l.Error("m") }, "ERROR"},
		{"info hidden at warn", slog.LevelWarn, func(l hclog.Logger) { l.Info("m") }, ""},
		{"Log(Error)", slog.LevelInfo, func(l hclog.Logger) { l.Log(hclog.Error, "m") }, "ERROR"},
		{"Log(Off) writes nothing", slog.LevelDebug, func(l hclog.Logger) { l.Log(hclog.Off, "m") }, ""},
		{"SetLevel raises the floor", slog.LevelDebug, func(l hclog.Logger) { l.SetLevel(hclog.Warn); l.Info("m") }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.log(HCLog(jsonLogger(&buf, tc.handler), "raft"))
			lines := jsonLines(t, &buf)
			if tc.wantLevel == "" {
				if len(lines) != 0 {
					t.Fatalf("wrote %v, want nothing", lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("wrote %d lines, want 1: %s", len(lines), buf.String())
			}
			if lines[0]["level"] != tc.wantLevel || lines[0]["msg"] != "m" || lines[0][NameKey] != "raft" {
				t.Errorf("line = %v, want level %s, msg m, logger raft", lines[0], tc.wantLevel)
			}
		})
	}
}

func TestHCLogIsLevel(t *testing.T) {
	l := HCLog(jsonLogger(new(bytes.Buffer), slog.LevelInfo), "raft")
	if l.IsDebug() || l.IsTrace() || !l.IsInfo() || !l.IsWarn() || !l.IsError() {
		t.Errorf("at info: IsTrace %v IsDebug %v IsInfo %v IsWarn %v IsError %v", l.IsTrace(), l.IsDebug(), l.IsInfo(), l.IsWarn(), l.IsError())
	}
	if got := l.GetLevel(); got != hclog.Info {
		t.Errorf("GetLevel = %v, want info", got)
	}
}

func TestHCLogAttrs(t *testing.T) {
	var buf bytes.Buffer
	l := HCLog(jsonLogger(&buf, slog.LevelDebug), "raft").Named("snapshot").With("id", "1-2-3")
	l.Error("failed to heartbeat to", "peer", "10.0.0.2:7000", "backoff time", 50, "error", errors.New("connection refused"),
		"fmt", hclog.Fmt("%d/%d", 1, 2), "hex", hclog.Hex(255), "node", stringer("Node at x [Leader]"),
		"server", struct{ ID, Address string }{"n2", "10.0.0.2:7000"}, "dangling")
	got := jsonLines(t, &buf)[0]
	want := map[string]any{
		"level": "ERROR", "msg": "failed to heartbeat to", NameKey: "raft.snapshot", "id": "1-2-3",
		"peer": "10.0.0.2:7000", "backoff time": float64(50), "error": "connection refused",
		"fmt": "1/2", "hex": "0xff", "EXTRA_VALUE_AT_END": "dangling",
		"node": "Node at x [Leader]", "server": "{ID:n2 Address:10.0.0.2:7000}",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v (line %v)", k, got[k], v, got)
		}
	}
	if _, ok := got["time"]; !ok {
		t.Errorf("no time in %v", got)
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

func TestStdLog(t *testing.T) {
	cases := []struct {
		line      string
		handler   slog.Level
		wantLevel string
		wantMsg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:5000", slog.LevelInfo, "", ""},
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:5000", slog.LevelDebug, "DEBUG", "Stream connection from=127.0.0.1:5000"},
		{"[INFO] memberlist: Suspect node-3 has failed, no acks received", slog.LevelInfo, "INFO", "Suspect node-3 has failed, no acks received"},
		{"[WARN] memberlist: Was able to connect to node-2 over TCP but UDP probes failed", slog.LevelInfo, "WARN", "Was able to connect to node-2 over TCP but UDP probes failed"},
		{"[ERR] memberlist: Failed to send gossip to 10.0.0.3:7946: connection refused", slog.LevelInfo, "ERROR", "Failed to send gossip to 10.0.0.3:7946: connection refused"},
		{"no level at all", slog.LevelInfo, "INFO", "no level at all"},
		{"[BOGUS] memberlist: x", slog.LevelInfo, "INFO", "[BOGUS] memberlist: x"},
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			var buf bytes.Buffer
			StdLog(jsonLogger(&buf, tc.handler), "memberlist").Print(tc.line)
			lines := jsonLines(t, &buf)
			if tc.wantLevel == "" {
				if len(lines) != 0 {
					t.Fatalf("wrote %v, want nothing", lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("wrote %d lines, want 1: %s", len(lines), buf.String())
			}
			if got := lines[0]; got["level"] != tc.wantLevel || got["msg"] != tc.wantMsg || got[NameKey] != "memberlist" {
				t.Errorf("line = %v, want level %q msg %q logger memberlist", got, tc.wantLevel, tc.wantMsg)
			}
		})
	}
}

// TestStandardWriterForceLevel: a library handed StandardLogger with a
// forced level gets that level whatever its lines say.
func TestStandardWriterForceLevel(t *testing.T) {
	var buf bytes.Buffer
	l := HCLog(jsonLogger(&buf, slog.LevelDebug), "raft").StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn})
	l.Print("[INFO] something")
	if got := jsonLines(t, &buf)[0]; got["level"] != "WARN" || got["msg"] != "[INFO] something" {
		t.Errorf("line = %v, want WARN with the line as message", got)
	}
}
