package bgp

import (
	"errors"
	"net"
	"testing"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestZapLogger(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := newZapLogger(zap.New(core))

	l.Info("peer up", gobgplog.Fields{"Topic": "Peer", "Key": "198.18.0.2"})
	l.Warn("md5", gobgplog.Fields{"Err": errors.New("boom"), "Addr": net.ParseIP("198.18.0.2")})
	l.Error("bad", nil)
	l.Fatal("would exit", nil) // must return
	l.Panic("would panic", nil)
	l.Debug("every message", nil) // below debug: dropped

	type entry struct {
		level zapcore.Level
		msg   string
	}
	var got []entry
	for _, e := range logs.All() {
		got = append(got, entry{e.Level, e.Message})
		if e.LoggerName != "gobgp" {
			t.Errorf("logger name %q", e.LoggerName)
		}
	}
	want := []entry{
		{zapcore.DebugLevel, "peer up"},
		{zapcore.WarnLevel, "md5"},
		{zapcore.ErrorLevel, "bad"},
		{zapcore.ErrorLevel, "would exit"},
		{zapcore.ErrorLevel, "would panic"},
	}
	if len(got) != len(want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: %v, want %v", i, got[i], want[i])
		}
	}
	// Fields are sorted by key, errors and Stringers kept as such.
	f := logs.All()[1].Context
	if len(f) != 2 || f[0].Key != "Addr" || f[0].Type != zapcore.StringerType || f[1].Key != "Err" || f[1].Type != zapcore.ErrorType {
		t.Errorf("fields %+v", f)
	}

	if lvl := l.GetLevel(); lvl != gobgplog.InfoLevel {
		t.Errorf("level at zap debug: %v, want GoBGP info (no per-message debug)", lvl)
	}
	traceCore, _ := observer.New(traceLevel)
	if lvl := newZapLogger(zap.New(traceCore)).GetLevel(); lvl != gobgplog.DebugLevel {
		t.Errorf("level at trace: %v, want GoBGP debug", lvl)
	}
	if lvl := newZapLogger(zap.NewNop()).GetLevel(); lvl != gobgplog.ErrorLevel {
		t.Errorf("level of a nop logger: %v", lvl)
	}
}
