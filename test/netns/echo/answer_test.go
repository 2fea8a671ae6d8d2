package echo

import (
	"errors"
	"net/netip"
	"testing"
)

func TestAnswerRoundTrip(t *testing.T) {
	a := Answer{
		Name: "pod-b", Proto: "tcp",
		Source:      netip.MustParseAddrPort("198.18.128.2:40000"),
		Destination: netip.MustParseAddrPort("198.18.129.2:8080"),
		Payload:     newToken(),
	}
	line, err := encodeAnswer(a)
	if err != nil {
		t.Fatal(err)
	}
	if line[len(line)-1] != '\n' {
		t.Fatalf("answer %q does not end the line", line)
	}
	got, err := decodeAnswer(line[:len(line)-1], a.Payload)
	if err != nil || got != a {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, a)
	}
	if _, err := decodeAnswer(line, "another token"); !errors.Is(err, errStaleAnswer) {
		t.Fatalf("answer to another token: %v, want errStaleAnswer", err)
	}
	if _, err := decodeAnswer([]byte("not json"), a.Payload); err == nil {
		t.Fatal("garbage decoded")
	}
}

func TestTokensAreLineSafe(t *testing.T) {
	a, b := newToken(), newToken()
	if a == b || len(a) < 16 {
		t.Fatalf("tokens %q, %q", a, b)
	}
	if parseRequest([]byte(a+"\r\n")) != a {
		t.Fatal("request line not trimmed")
	}
}
