// Package echo is the tiny TCP, UDP and SCTP echo service the network tests
// run inside pods: a client sends a random token, the server answers with who
// it is and the addresses it saw, so a test can check which pod answered and
// whether the client's source address was preserved or NATed on the way.
//
// The package knows nothing about network namespaces: a socket belongs to the
// namespace of the thread that created it, so callers create listeners and
// client connections inside the namespace they want (see test/netns) and
// hand them to Server or Session, which then run on any goroutine.
//
// Wire format, one request and one answer per line (TCP, SCTP) or per
// datagram (UDP): the request is the token followed by "\n"; the answer is
// the JSON encoding of Answer followed by "\n".
package echo

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Answer is what an echo server replies.
type Answer struct {
	// Name is who answered: the pod (or node) the server runs in.
	Name string `json:"name"`
	// Proto is "tcp", "udp" or "sctp".
	Proto string `json:"proto"`
	// Source is the client address as the server saw it: the client pod's
	// own address when nothing NATs on the way, another address after SNAT.
	Source netip.AddrPort `json:"source"`
	// Destination is the server-side address of the exchange as the server
	// saw it: its own address even when the client dialled a service VIP.
	Destination netip.AddrPort `json:"destination"`
	// Payload is the client's token, echoed so the client can tell this
	// answer from a late one to an earlier request.
	Payload string `json:"payload"`
}

func (a Answer) String() string {
	return fmt.Sprintf("%s answered %s from %s to %s", a.Name, a.Proto, a.Source, a.Destination)
}

// maxLine bounds a request or an answer: tokens are short, answers a few
// hundred bytes; anything longer is not this protocol.
const maxLine = 4096

// newToken returns a random request payload (letters and digits only, so it
// can never contain the line separator).
func newToken() string { return rand.Text() }

func encodeAnswer(a Answer) ([]byte, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// decodeAnswer parses an answer and checks it answers the request token.
func decodeAnswer(line []byte, token string) (Answer, error) {
	var a Answer
	if err := json.Unmarshal(line, &a); err != nil {
		return Answer{}, fmt.Errorf("echo: malformed answer %q: %w", truncate(line), err)
	}
	if a.Payload != token {
		return a, fmt.Errorf("%w: got %q, want %q", errStaleAnswer, a.Payload, token)
	}
	return a, nil
}

// errStaleAnswer marks an answer to another request (a UDP retransmission's
// duplicate reply, say): the UDP client skips it and keeps reading.
var errStaleAnswer = errors.New("echo: answer to another request")

// parseRequest returns the token of a request line.
func parseRequest(line []byte) string {
	return strings.TrimRight(string(line), "\r\n")
}

func truncate(b []byte) string {
	const n = 120
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
