package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLogFormat(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in            string
		bad           bool
		onTTY, offTTY logFormat
	}{
		{in: "auto", onTTY: logText, offTTY: logJSON},
		{in: "text", onTTY: logText, offTTY: logText},
		{in: "json", onTTY: logJSON, offTTY: logJSON},
		{in: "xml", bad: true},
		{in: "JSON", bad: true},
		{in: "", bad: true},
	}
	for _, c := range cases {
		var f logFormat
		err := f.Set(c.in)
		if c.bad {
			if err == nil || !strings.Contains(err.Error(), "want text, json or auto") {
				t.Errorf("Set(%q) = %v, want an error naming the values", c.in, err)
			}
			continue
		}
		if err != nil || f.String() != c.in {
			t.Fatalf("Set(%q): %v, %q", c.in, err, f.String())
		}
		if got := f.resolve(true); got != c.onTTY {
			t.Errorf("%s on a terminal: %s, want %s", c.in, got, c.onTTY)
		}
		if got := f.resolve(false); got != c.offTTY {
			t.Errorf("%s off a terminal: %s, want %s", c.in, got, c.offTTY)
		}
	}
	var unset logFormat // the flag's default
	if unset.String() != "auto" || unset.resolve(true) != logText || unset.resolve(false) != logJSON {
		t.Errorf("the default is %q, resolving to %s/%s", unset.String(), unset.resolve(true), unset.resolve(false))
	}
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	var text, js bytes.Buffer
	newLogger(&text, logText, slog.LevelInfo).Info("worker registered", "id", "w1")
	newLogger(&text, logText, slog.LevelInfo).Debug("not shown")
	newLogger(&js, logJSON, slog.LevelInfo).Info("worker registered", "id", "w1")
	line := strings.TrimSuffix(text.String(), "\n")
	if strings.Contains(line, "\n") || !strings.HasPrefix(line, "time=") || !strings.HasSuffix(line, ` level=INFO msg="worker registered" id=w1`) {
		t.Errorf("text: %q", text.String())
	}
	if ts := strings.TrimPrefix(strings.Fields(line)[0], "time="); len(ts) != len("15:04:05.000") {
		t.Errorf("text time %q is not the compact clock", ts)
	}
	var rec map[string]any
	if err := json.Unmarshal(js.Bytes(), &rec); err != nil || rec["msg"] != "worker registered" || rec["id"] != "w1" {
		t.Errorf("json: %q (%v)", js.String(), err)
	}
}
