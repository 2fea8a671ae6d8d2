package main

import "strings"

// hostOnly tells the variables that name things of the host session
// (sockets, processes, systemd's handles) that do not exist in the guest:
// passing them would make a program try to reach them.
func hostOnly(name string) bool {
	switch name {
	case "SSH_AUTH_SOCK", "SSH_AGENT_PID", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "GPG_AGENT_INFO",
		"DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY",
		"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "XDG_SESSION_ID",
		"NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
		"INVOCATION_ID", "JOURNAL_STREAM", "SYSTEMD_EXEC_PID":
		return true
	}
	return false
}

// guestEnv is the command's environment in the guest: the host's, less
// host-only variables and vmexec's own settings (NODENET_VM_*), which
// configure this VM and mean nothing inside it.
func guestEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || hostOnly(k) || strings.HasPrefix(k, "NODENET_VM_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
