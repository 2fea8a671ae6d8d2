package controller

import (
	"context"
	"testing"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
)

func traceReq(from string, to string, port uint32) *nodev1.ProxyTraceServiceTraceRequest {
	r := &nodev1.ProxyTraceServiceTraceRequest{ToIp: to, ToPort: port, ToProtocol: nodev1.Protocol_PROTOCOL_TCP}
	switch from {
	case "node":
		r.Source = &nodev1.ProxyTraceServiceTraceRequest_FromNode{FromNode: true}
	default:
		r.Source = &nodev1.ProxyTraceServiceTraceRequest_FromPod{FromPod: from}
	}
	return r
}

// The trace answers from the last sync: before it, it refuses; after it,
// it names the sync, resolves pods from the slices, and tells which
// virtual services are programmed.
func TestTraceFromTheLastSync(t *testing.T) {
	h := newHarness(t)
	srv := traceServer{c: h.c}
	h.c.now = func() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }
	ctx := context.Background()
	if _, err := srv.Trace(ctx, traceReq("node", "198.19.0.10", 80)); status.Code(err) != codes.Unavailable {
		t.Fatalf("before the first sync: %v", err)
	}
	h.sync(true)
	h.create(webService("198.19.0.10"))
	sl := webSlice("web-1", "198.18.128.5", "198.18.129.5")
	sl.Endpoints[0].TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-a"}
	h.create(sl)

	// Changed in the informers, not synced yet: the trace still answers from the last sync.
	r, err := srv.Trace(ctx, traceReq("node", "198.19.0.10", 80))
	if err != nil || r.GetVerdict() != nodev1.TraceVerdict_TRACE_VERDICT_NOT_SERVED || r.GetSyncGeneration() != 1 {
		t.Fatalf("before the sync of the Service: %v, %v", r, err)
	}
	h.sync(false)
	r, err = srv.Trace(ctx, traceReq("shop/web-a", "198.19.0.10", 80))
	if err != nil {
		t.Fatal(err)
	}
	if r.GetVerdict() != nodev1.TraceVerdict_TRACE_VERDICT_FORWARD || r.GetSyncGeneration() != 2 || r.GetSource().GetIp() != "198.18.128.5" ||
		!r.GetSource().GetLocalPod() || !r.GetService().GetProgrammed() || len(r.GetEndpoints()) != 2 || r.GetNodeName() != "node-0" ||
		r.GetMasquerade().GetCode() != "HairpinLocalEndpoint" || r.GetSyncTime().AsTime().Year() != 2025 {
		t.Fatalf("trace: %v", r)
	}
	for _, tc := range []struct {
		req  *nodev1.ProxyTraceServiceTraceRequest
		code codes.Code
	}{
		{traceReq("shop/nobody", "198.19.0.10", 80), codes.NotFound},
		{traceReq("shop", "198.19.0.10", 80), codes.InvalidArgument},
		{traceReq("node", "not-an-ip", 80), codes.InvalidArgument},
		{traceReq("node", "198.19.0.10", 0), codes.InvalidArgument},
		{&nodev1.ProxyTraceServiceTraceRequest{ToIp: "198.19.0.10", ToPort: 80}, codes.InvalidArgument},
	} {
		if _, err := srv.Trace(ctx, tc.req); status.Code(err) != tc.code {
			t.Errorf("%v: %v, want %v", tc.req, err, tc.code)
		}
	}
}
