package main

import (
	"slices"
	"testing"
)

func TestGuestEnv(t *testing.T) {
	got := guestEnv([]string{
		"PATH=/usr/bin:/bin", "HOME=/root", "GOFLAGS=-count=1", "CI=true",
		"SSH_AUTH_SOCK=/tmp/ssh-x/agent", "DISPLAY=:0", "XDG_RUNTIME_DIR=/run/user/0", "NOTIFY_SOCKET=/run/systemd/notify",
		"NODENET_VM_MEMORY=2048", "NODENET_NODE_NAME=n1", "broken", "=x",
	})
	want := []string{"PATH=/usr/bin:/bin", "HOME=/root", "GOFLAGS=-count=1", "CI=true", "NODENET_NODE_NAME=n1"}
	if !slices.Equal(got, want) {
		t.Errorf("guestEnv = %q\nwant       %q", got, want)
	}
}
