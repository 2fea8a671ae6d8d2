package controlplane

import (
	"net"
	"strings"
)

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment
// ago. The binaries take their ports as flags, so a port can only be reserved
// by listening and closing; another program may grab it in between, which
// startWithRetry detects in the log and answers with fresh ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		// Held open until all n are chosen, so the kernel hands out n different ones.
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portTaken reports whether a process's log says it lost a port race.
func portTaken(log string) bool {
	return strings.Contains(log, "address already in use")
}
