package main

import (
	"fmt"
	"io"
	"log/slog"
)

// logFormat is the value of --log-format: "text", "json" or "auto" (the
// zero value, which is auto).
type logFormat string

const (
	logText logFormat = "text"
	logJSON logFormat = "json"
	logAuto logFormat = "auto"
)

// String is the flag's value as the help shows it.
func (f *logFormat) String() string {
	if *f == "" {
		return string(logAuto)
	}
	return string(*f)
}

// Set accepts text, json or auto, and refuses anything else with the
// values it takes.
func (f *logFormat) Set(s string) error {
	switch v := logFormat(s); v {
	case logText, logJSON, logAuto:
		*f = v
		return nil
	}
	return fmt.Errorf("want text, json or auto, not %q", s)
}

// Type names the flag's value in the help.
func (f *logFormat) Type() string { return "text|json|auto" }

// resolve is the format to write: auto is text when the log goes to a
// terminal and json otherwise.
func (f logFormat) resolve(terminal bool) logFormat {
	if f == logText || f == logJSON {
		return f
	}
	if terminal {
		return logText
	}
	return logJSON
}

// newLogger writes records at lvl and above to w, as JSON objects or as
// key=value text lines whose time is the local clock to the millisecond.
func newLogger(w io.Writer, f logFormat, lvl slog.Level) *slog.Logger {
	if f == logJSON {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl}))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
				return slog.String(slog.TimeKey, a.Value.Time().Format("15:04:05.000"))
			}
			return a
		}}))
}
