package logs

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
	"time"
)

// StdLog returns a *log.Logger for libraries that log through the
// standard logger with a "[LEVEL] name: message" convention, as memberlist
// does. Each line becomes one record at the level its prefix names (Info
// when it names none), with the "name: " prefix taken off the message and
// kept as the logger attribute, so "[DEBUG]" lines stay hidden at info.
func StdLog(l *slog.Logger, name string) *log.Logger {
	return log.New(&lineWriter{handler: l.Handler(), name: name, level: slog.LevelInfo}, "", 0)
}

// lineWriter parses the lines a *log.Logger writes (one per Write).
type lineWriter struct {
	handler slog.Handler
	name    string
	level   slog.Level // when a line names no level, or always if force
	force   bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(p, []byte{'\n'}) {
		if s := strings.TrimSpace(string(line)); s != "" {
			w.line(s)
		}
	}
	return len(p), nil
}

func (w *lineWriter) line(s string) {
	level, msg, ok := parseLevel(s)
	if !ok || w.force {
		level, msg = w.level, s
	}
	if !w.handler.Enabled(context.Background(), level) {
		return
	}
	if w.name != "" {
		msg = strings.TrimPrefix(msg, w.name+": ")
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	if w.name != "" {
		r.AddAttrs(slog.String(NameKey, w.name))
	}
	_ = w.handler.Handle(context.Background(), r)
}

// parseLevel splits "[WARN] rest" into a level and "rest".
func parseLevel(s string) (slog.Level, string, bool) {
	if !strings.HasPrefix(s, "[") {
		return 0, s, false
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return 0, s, false
	}
	var level slog.Level
	switch strings.ToUpper(s[1:end]) {
	case "TRACE", "DEBUG":
		level = slog.LevelDebug
	case "INFO":
		level = slog.LevelInfo
	case "WARN", "WARNING":
		level = slog.LevelWarn
	case "ERR", "ERROR":
		level = slog.LevelError
	default:
		return 0, s, false
	}
	return level, strings.TrimSpace(s[end+1:]), true
}
