package lifecycle

import (
	"context"
	"errors"
	"slices"
	"testing"

	"go.uber.org/zap"
)

func recorder(events *[]string, name string, startErr error) Hook {
	return Hook{
		Name: name,
		OnStart: func(context.Context) error {
			*events = append(*events, "start "+name)
			return startErr
		},
		OnStop: func(context.Context) error {
			*events = append(*events, "stop "+name)
			return nil
		},
	}
}

func TestStopsInReverseOrder(t *testing.T) {
	var events []string
	l := New(zap.NewNop())
	for _, n := range []string{"a", "b", "c"} {
		l.Append(recorder(&events, n, nil))
	}
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"start a", "start b", "start c", "stop c", "stop b", "stop a"}
	if !slices.Equal(events, want) {
		t.Fatalf("events = %v, want %v", events, want)
	}
	// A second Stop does nothing.
	if err := l.Stop(context.Background()); err != nil || len(events) != len(want) {
		t.Fatalf("second stop: err=%v events=%v", err, events)
	}
}

func TestFailedStartStopsWhatStarted(t *testing.T) {
	var events []string
	l := New(zap.NewNop())
	l.Append(recorder(&events, "a", nil))
	l.Append(recorder(&events, "b", errors.New("boom")))
	l.Append(recorder(&events, "c", nil))
	err := l.Start(context.Background())
	if err == nil || err.Error() != "start b: boom" {
		t.Fatalf("err = %v", err)
	}
	want := []string{"start a", "start b", "stop a"}
	if !slices.Equal(events, want) {
		t.Fatalf("events = %v, want %v", events, want)
	}
}

func TestStopRunsAllAndJoinsErrors(t *testing.T) {
	var stopped []string
	l := New(zap.NewNop())
	for _, n := range []string{"a", "b"} {
		l.Append(Hook{Name: n, OnStop: func(context.Context) error {
			stopped = append(stopped, n)
			return errors.New(n + " failed")
		}})
	}
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := l.Stop(context.Background())
	if !slices.Equal(stopped, []string{"b", "a"}) || err == nil || err.Error() != "stop b: b failed\nstop a: a failed" {
		t.Fatalf("stopped=%v err=%v", stopped, err)
	}
}
