// Package lifecycle starts a daemon's components in order and stops them in
// reverse order, so that nothing is stopped while something that uses it still
// runs (the gRPC server stops before the state it serves, etc.).
package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// Hook is one component's start and stop. Either function may be nil.
// OnStart must not block: long-running work goes into a goroutine that
// OnStop ends and waits for.
type Hook struct {
	Name    string
	OnStart func(ctx context.Context) error
	OnStop  func(ctx context.Context) error
}

// Lifecycle is an ordered list of hooks.
type Lifecycle struct {
	log     *zap.Logger
	hooks   []Hook
	started int
}

// New returns an empty lifecycle.
func New(log *zap.Logger) *Lifecycle { return &Lifecycle{log: log} }

// Append adds a hook after the ones already appended.
func (l *Lifecycle) Append(h Hook) { l.hooks = append(l.hooks, h) }

// Start runs the OnStart hooks in order. When one fails, the hooks already
// started are stopped in reverse order and the error is returned.
func (l *Lifecycle) Start(ctx context.Context) error {
	for i, h := range l.hooks[l.started:] {
		if h.OnStart != nil {
			if err := h.OnStart(ctx); err != nil {
				err = fmt.Errorf("start %s: %w", h.Name, err)
				l.started += i
				if stopErr := l.Stop(context.WithoutCancel(ctx)); stopErr != nil {
					err = errors.Join(err, stopErr)
				}
				return err
			}
		}
		l.log.Debug("started", zap.String("component", h.Name))
	}
	l.started = len(l.hooks)
	return nil
}

// Stop runs the OnStop hooks of the started components in reverse order. It
// stops every component even when some fail, and returns all their errors.
func (l *Lifecycle) Stop(ctx context.Context) error {
	var errs []error
	for ; l.started > 0; l.started-- {
		h := l.hooks[l.started-1]
		if h.OnStop == nil {
			continue
		}
		if err := h.OnStop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", h.Name, err))
			continue
		}
		l.log.Debug("stopped", zap.String("component", h.Name))
	}
	return errors.Join(errs...)
}
