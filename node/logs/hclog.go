package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"reflect"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// NameKey is the attribute that says which library wrote a line ("raft",
// "raft-net", "memberlist"), so an operator can filter one out.
const NameKey = "logger"

// HCLog returns an hclog.Logger that writes through l's handler. Trace and
// Debug become slog Debug; Info, Warn and Error keep their meaning; the
// key/value arguments become attributes, so a JSON handler keeps them as
// fields instead of one formatted string.
func HCLog(l *slog.Logger, name string) hclog.Logger {
	return &hcLogger{handler: l.Handler(), name: name, level: new(atomic.Int32)}
}

type hcLogger struct {
	handler slog.Handler
	name    string
	implied []any
	// level is hclog's own floor (SetLevel), shared with derived loggers
	// as hclog's are; NoLevel (0) leaves the choice to the handler.
	level *atomic.Int32
}

var _ hclog.Logger = (*hcLogger)(nil)

// slogLevel maps hclog's levels onto slog's four.
func slogLevel(l hclog.Level) slog.Level {
	switch {
	case l <= hclog.Debug: // Trace, Debug (and NoLevel)
		return slog.LevelDebug
	case l == hclog.Info:
		return slog.LevelInfo
	case l == hclog.Warn:
		return slog.LevelWarn
	default: // Error, Off
		return slog.LevelError
	}
}

func (h *hcLogger) enabled(l hclog.Level) bool {
	if min := hclog.Level(h.level.Load()); min != hclog.NoLevel && l < min {
		return false
	}
	return h.handler.Enabled(context.Background(), slogLevel(l))
}

func (h *hcLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || !h.enabled(level) {
		return
	}
	r := slog.NewRecord(time.Now(), slogLevel(level), msg, 0)
	if h.name != "" {
		r.AddAttrs(slog.String(NameKey, h.name))
	}
	r.AddAttrs(attrs(h.implied)...)
	r.AddAttrs(attrs(args)...)
	_ = h.handler.Handle(context.Background(), r)
}

// attrs turns hclog's alternating keys and values into slog attributes. A
// value without a key gets hclog's own name for it.
func attrs(args []any) []slog.Attr {
	if len(args) == 0 {
		return nil
	}
	out := make([]slog.Attr, 0, (len(args)+1)/2)
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) {
			out = append(out, slog.Any("EXTRA_VALUE_AT_END", value(args[i])))
			break
		}
		k, ok := args[i].(string)
		if !ok {
			k = fmt.Sprint(args[i])
		}
		out = append(out, slog.Any(k, value(args[i+1])))
	}
	return out
}

// value renders hclog's formatting types as hclog would.
func value(v any) any {
	switch v := v.(type) {
	case hclog.Format:
		if len(v) > 0 {
			if f, ok := v[0].(string); ok {
				return fmt.Sprintf(f, v[1:]...)
			}
		}
		return fmt.Sprint(v...)
	case hclog.Hex:
		return "0x" + strconv.FormatInt(int64(v), 16)
	case hclog.Octal:
		return "0" + strconv.FormatInt(int64(v), 8)
	case hclog.Binary:
		return "0b" + strconv.FormatInt(int64(v), 2)
	case hclog.Quote:
		return string(v)
	case error:
		return v.Error()
	case time.Duration, time.Time, json.Marshaler, slog.LogValuer:
		return v // slog knows how to write these
	case fmt.Stringer:
		// Raft passes itself ("Node at 10.0.0.1:7000 [Leader]"): its
		// String, not its exported fields, is what hclog wrote.
		return v.String()
	}
	if k := reflect.Indirect(reflect.ValueOf(v)).Kind(); k == reflect.Struct {
		// A raft.Server as {ID:node2 Address:10.0.0.2:7000 ...}, one
		// value in text and JSON alike.
		return fmt.Sprintf("%+v", v)
	}
	return v
}

func (h *hcLogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hcLogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hcLogger) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hcLogger) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hcLogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hcLogger) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *hcLogger) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *hcLogger) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *hcLogger) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *hcLogger) IsError() bool { return h.enabled(hclog.Error) }

func (h *hcLogger) ImpliedArgs() []any { return h.implied }

func (h *hcLogger) With(args ...any) hclog.Logger {
	c := *h
	c.implied = append(append([]any(nil), h.implied...), args...)
	return &c
}

func (h *hcLogger) Name() string { return h.name }

func (h *hcLogger) Named(name string) hclog.Logger {
	c := *h
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

func (h *hcLogger) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	return &c
}

func (h *hcLogger) SetLevel(l hclog.Level) { h.level.Store(int32(l)) }

func (h *hcLogger) GetLevel() hclog.Level {
	if l := hclog.Level(h.level.Load()); l != hclog.NoLevel {
		return l
	}
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if h.handler.Enabled(context.Background(), slogLevel(l)) {
			return l
		}
	}
	return hclog.Off
}

// StandardLogger is for libraries that want a *log.Logger: their lines
// are parsed for a "[LEVEL]" prefix like memberlist's.
func (h *hcLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *hcLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	w := &lineWriter{handler: h.handler, name: h.name, level: slog.LevelInfo}
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		w.level, w.force = slogLevel(opts.ForceLevel), true
	}
	return w
}
