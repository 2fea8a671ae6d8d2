package bgp

import (
	"fmt"
	"slices"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// traceLevel is where GoBGP's debug messages go: below zap's debug level,
// because GoBGP logs every message of every session at debug. They show
// only when routerd's logger is set to this level or lower.
const traceLevel = zapcore.DebugLevel - 1

// zapLogger adapts GoBGP's logger interface to zap, one level quieter:
// GoBGP logs every session state change and configuration call at info,
// which for routerd is debug; its warnings and errors stay what they are.
type zapLogger struct{ l *zap.Logger }

var _ gobgplog.Logger = zapLogger{}

func newZapLogger(l *zap.Logger) zapLogger {
	// The caller is always this adapter: skip it.
	return zapLogger{l.Named("gobgp").WithOptions(zap.AddCallerSkip(1))}
}

// Panic logs at error level and returns: GoBGP calls it on what it
// considers impossible states, and a library must not take routerd down.
func (z zapLogger) Panic(msg string, f gobgplog.Fields) { z.log(zapcore.ErrorLevel, msg, f) }

// Fatal logs at error level and returns, for the same reason (GoBGP's
// default logger would exit the process).
func (z zapLogger) Fatal(msg string, f gobgplog.Fields) { z.log(zapcore.ErrorLevel, msg, f) }

func (z zapLogger) Error(msg string, f gobgplog.Fields) { z.log(zapcore.ErrorLevel, msg, f) }
func (z zapLogger) Warn(msg string, f gobgplog.Fields)  { z.log(zapcore.WarnLevel, msg, f) }
func (z zapLogger) Info(msg string, f gobgplog.Fields)  { z.log(zapcore.DebugLevel, msg, f) }
func (z zapLogger) Debug(msg string, f gobgplog.Fields) { z.log(traceLevel, msg, f) }

// SetLevel does nothing: routerd's logger configuration decides.
func (z zapLogger) SetLevel(gobgplog.LogLevel) {}

// GetLevel tells GoBGP how verbose to be. GoBGP checks it before building
// its per-message debug logs, so they cost nothing unless enabled.
func (z zapLogger) GetLevel() gobgplog.LogLevel {
	switch {
	case z.l.Core().Enabled(traceLevel):
		return gobgplog.DebugLevel
	case z.l.Core().Enabled(zapcore.DebugLevel):
		return gobgplog.InfoLevel
	case z.l.Core().Enabled(zapcore.WarnLevel):
		return gobgplog.WarnLevel
	}
	return gobgplog.ErrorLevel
}

func (z zapLogger) log(level zapcore.Level, msg string, f gobgplog.Fields) {
	ce := z.l.Check(level, msg)
	if ce == nil {
		return
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys) // map order would shuffle the fields of every line
	fields := make([]zap.Field, 0, len(keys))
	for _, k := range keys {
		switch v := f[k].(type) {
		case error:
			fields = append(fields, zap.NamedError(k, v))
		case fmt.Stringer:
			fields = append(fields, zap.Stringer(k, v))
		default:
			fields = append(fields, zap.Any(k, v))
		}
	}
	ce.Write(fields...)
}
