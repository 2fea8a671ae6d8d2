package coord

import (
	"sync"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// maxQueued is how many changes a watcher may fall behind before it is sent
// a fresh snapshot instead: a slow watcher never blocks the publisher, and
// never holds an unbounded backlog.
const maxQueued = 256

// Publisher holds the facts one daemon owns and serves them to watchers.
// The daemon's sync loop calls the Set methods with the complete current
// value; the publisher works out the change, bumps the generation and sends
// the change to every watcher.
type Publisher struct {
	nodev1.UnimplementedFactsServiceServer

	log    *zap.Logger
	mu     sync.Mutex
	facts  Facts
	subs   map[*subscriber]struct{}
	closed chan struct{}
	once   sync.Once
}

type subscriber struct {
	watcher string
	queue   []*nodev1.WatchResponse
	// resync: the next message must be a snapshot (new stream, fell behind,
	// or a fact became unknown, which a change cannot say).
	resync bool
	wake   chan struct{}
}

// NewPublisher returns a publisher for daemon name; incarnation must differ
// between runs of the daemon (a random or time-based id).
func NewPublisher(log *zap.Logger, name, incarnation string) *Publisher {
	return &Publisher{
		log:    log.Named("facts"),
		facts:  Facts{Publisher: name, Incarnation: incarnation, Known: true, VIPs: map[VIPKey]*nodev1.ServiceVIP{}},
		subs:   map[*subscriber]struct{}{},
		closed: make(chan struct{}),
	}
}

// Facts returns the current facts.
func (p *Publisher) Facts() Facts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.facts
}

// Watchers returns the number of open watch streams.
func (p *Publisher) Watchers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.subs)
}

// SetPodNetwork publishes routerd's pod network; nil means unknown.
func (p *Publisher) SetPodNetwork(pn *nodev1.PodNetwork) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if proto.Equal(p.facts.PodNetwork, pn) {
		return
	}
	if pn == nil {
		p.resetLocked(func(f *Facts) { f.PodNetwork = nil })
		return
	}
	p.publishLocked(&nodev1.WatchResponse{PodNetwork: proto.CloneOf(pn)})
}

// SetPolicyState publishes firewalld's policy state; nil means unknown.
func (p *Publisher) SetPolicyState(ps *nodev1.PolicyState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if proto.Equal(p.facts.PolicyState, ps) {
		return
	}
	if ps == nil {
		p.resetLocked(func(f *Facts) { f.PolicyState = nil })
		return
	}
	p.publishLocked(&nodev1.WatchResponse{PolicyState: proto.CloneOf(ps)})
}

// SetVIPs publishes the complete set of service VIPs proxyd has programmed.
// Only the difference to the previous set is sent.
func (p *Publisher) SetVIPs(vips []*nodev1.ServiceVIP) {
	want := make(map[VIPKey]*nodev1.ServiceVIP, len(vips))
	for _, v := range vips {
		want[KeyOf(v)] = v
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	change := &nodev1.WatchResponse{}
	for _, v := range sortedVIPs(want) {
		if old, ok := p.facts.VIPs[KeyOf(v)]; !ok || !proto.Equal(old, v) {
			change.VipsSet = append(change.VipsSet, proto.CloneOf(v))
		}
	}
	for _, old := range sortedVIPs(p.facts.VIPs) {
		if k := KeyOf(old); want[k] == nil {
			change.VipsDeleted = append(change.VipsDeleted, k.proto())
		}
	}
	if len(change.VipsSet) == 0 && len(change.VipsDeleted) == 0 {
		return
	}
	p.publishLocked(change)
}

// UpdateVIPs publishes a change to some VIPs: set adds or replaces, deleted
// removes. Unlike SetVIPs it costs in proportion to the change, not to all
// VIPs, for a proxy that knows what it changed. VIPs that end up as they
// were are not sent.
func (p *Publisher) UpdateVIPs(set []*nodev1.ServiceVIP, deleted []VIPKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	change := &nodev1.WatchResponse{}
	for _, v := range set {
		if old, ok := p.facts.VIPs[KeyOf(v)]; !ok || !proto.Equal(old, v) {
			change.VipsSet = append(change.VipsSet, proto.CloneOf(v))
		}
	}
	for _, k := range deleted {
		if _, ok := p.facts.VIPs[k]; ok {
			change.VipsDeleted = append(change.VipsDeleted, k.proto())
		}
	}
	if len(change.VipsSet) == 0 && len(change.VipsDeleted) == 0 {
		return
	}
	p.publishLocked(change)
}

// publishLocked applies change as the next generation and queues it for
// every watcher.
func (p *Publisher) publishLocked(change *nodev1.WatchResponse) {
	change.Publisher = p.facts.Publisher
	change.Incarnation = p.facts.Incarnation
	change.Generation = p.facts.Generation + 1
	p.facts = p.facts.Apply(change)
	for s := range p.subs {
		if s.resync {
			continue
		}
		if len(s.queue) >= maxQueued {
			p.log.Info("watcher fell behind; it will get a new snapshot", zap.String("watcher", s.watcher))
			s.queue, s.resync = nil, true
		} else {
			s.queue = append(s.queue, change)
		}
		s.wakeUp()
	}
}

// resetLocked changes the facts in a way only a snapshot can carry.
func (p *Publisher) resetLocked(mutate func(*Facts)) {
	next := p.facts
	mutate(&next)
	next.Generation++
	p.facts = next
	for s := range p.subs {
		s.queue, s.resync = nil, true
		s.wakeUp()
	}
}

func (s *subscriber) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take returns what s must be sent next.
func (p *Publisher) take(s *subscriber) []*nodev1.WatchResponse {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.resync {
		s.queue, s.resync = nil, false
		return []*nodev1.WatchResponse{p.facts.Snapshot()}
	}
	q := s.queue
	s.queue = nil
	return q
}

// Close ends every watch stream (the daemon is stopping); watchers will
// reconnect to the next incarnation.
func (p *Publisher) Close() { p.once.Do(func() { close(p.closed) }) }

// Watch is part of nodev1.FactsServiceServer.
func (p *Publisher) Watch(req *nodev1.WatchRequest, stream nodev1.FactsService_WatchServer) error {
	s := &subscriber{watcher: req.GetWatcher(), resync: true, wake: make(chan struct{}, 1)}
	p.mu.Lock()
	p.subs[s] = struct{}{}
	name := p.facts.Publisher // p.facts is only read under p.mu
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.subs, s)
		p.mu.Unlock()
	}()
	p.log.Debug("watch started", zap.String("watcher", s.watcher))
	s.wakeUp()
	for {
		select {
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		case <-p.closed:
			return status.Error(codes.Unavailable, name+" is shutting down")
		case <-s.wake:
		}
		for _, msg := range p.take(s) {
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
	}
}
