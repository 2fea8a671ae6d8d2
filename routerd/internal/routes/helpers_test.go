package routes

import (
	"slices"
	"testing"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// Assertions shared by the unit, kernel and VM tests.

func wantResult(tb testing.TB, got, want Result) {
	tb.Helper()
	if got != want {
		tb.Fatalf("Result = %+v, want %+v", got, want)
	}
}

func wantInstalled(tb testing.TB, k Interface, want []model.Route) {
	tb.Helper()
	got, err := k.Installed()
	if err != nil {
		tb.Fatalf("Installed: %v", err)
	}
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b model.Route) int { return model.ComparePrefix(a.Prefix, b.Prefix) })
	if !slices.Equal(got, want) {
		tb.Fatalf("Installed =\n%v\nwant\n%v", got, want)
	}
}
