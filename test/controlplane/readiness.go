package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// pollInterval is how often start-up polls a health endpoint: short, because
// start-up time is what every test pays.
const pollInterval = 25 * time.Millisecond

// logTailOnError is how much of a process's log an error quotes.
const logTailOnError = 8 << 10

// errPortTaken marks a start that failed because another program took a port
// between freePorts and the process binding it; the caller retries.
var errPortTaken = errors.New("port taken")

// waitReady polls check until it succeeds, the process exits (an error that
// quotes its log) or ctx ends.
func waitReady(ctx context.Context, p *process, check func(context.Context) error) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if exited, err := p.exited(); exited {
			tail := p.tail(logTailOnError)
			if portTaken(tail) {
				return fmt.Errorf("%s: %w", p.name, errPortTaken)
			}
			return fmt.Errorf("%s %v before it was ready; end of %s:\n%s", p.name, err, p.logPath, tail)
		}
		checkCtx, cancel := context.WithTimeout(ctx, time.Second)
		err := check(checkCtx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last check: %v); end of %s:\n%s",
				p.name, ctx.Err(), err, p.logPath, p.tail(logTailOnError))
		case <-tick.C:
		case <-p.done:
		}
	}
}

// startWithRetry runs attempt (choose ports, start, wait ready) and retries
// it a few times when the process lost a port race.
func startWithRetry(attempt func() (*process, error)) (*process, error) {
	const attempts = 3
	var err error
	for range attempts {
		var p *process
		if p, err = attempt(); err == nil || !errors.Is(err, errPortTaken) {
			return p, err
		}
	}
	return nil, err
}

// httpsGetter checks an HTTPS health endpoint of a component whose serving
// certificate our CA signed; token is optional.
type httpsGetter struct {
	client *http.Client
	token  string
}

func newHTTPSGetter(caPEM []byte, token string) (*httpsGetter, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("bad CA certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return &httpsGetter{client: &http.Client{Transport: tr}, token: token}, nil
}

// ok succeeds when url answers 200.
func (g *httpsGetter) ok(ctx context.Context, url string) error {
	return getOK(ctx, g.client, url, g.token)
}

func getOK(ctx context.Context, client *http.Client, url, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}
