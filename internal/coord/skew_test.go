package coord

import (
	"slices"
	"sync"
	"testing"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The fields a "newer" facts.proto has and this build does not know.
const (
	futureFieldNumber = 99 // WatchResponse.future_field, PodNetwork.future_mode, ServiceVIP.weight
	futureThingNumber = 100
	futureCIDRSource  = nodev1.PodCIDRSource(3) // POD_CIDR_SOURCE_FUTURE
)

// newerFacts returns a later version of facts.proto, built from this one:
//
//	message WatchResponse { ...; string future_field = 99; FutureThing future_thing = 100; }
//	message FutureThing { string note = 1; repeated uint64 values = 2; }
//	message PodNetwork { ...; uint32 future_mode = 99; }
//	message ServiceVIP { ...; uint32 weight = 99; }
//	enum PodCIDRSource { ...; POD_CIDR_SOURCE_FUTURE = 3; }
func newerFacts(t *testing.T) protoreflect.FileDescriptor {
	t.Helper()
	current := nodev1.File_nodenet_node_v1_facts_proto
	for _, m := range []string{"WatchResponse", "PodNetwork", "ServiceVIP"} {
		if current.Messages().ByName(protoreflect.Name(m)).Fields().ByNumber(futureFieldNumber) != nil {
			t.Fatalf("%s now has field %d: pick another number for the skew test", m, futureFieldNumber)
		}
	}
	if current.Messages().ByName("WatchResponse").Fields().ByNumber(futureThingNumber) != nil ||
		current.Enums().ByName("PodCIDRSource").Values().ByNumber(protoreflect.EnumNumber(futureCIDRSource)) != nil {
		t.Fatal("the current facts.proto has what the skew test adds: pick other numbers")
	}

	fdp := proto.CloneOf(protodesc.ToFileDescriptorProto(current))
	fdp.SourceCodeInfo = nil
	message := func(name string) *descriptorpb.DescriptorProto {
		for _, m := range fdp.GetMessageType() {
			if m.GetName() == name {
				return m
			}
		}
		t.Fatalf("no message %s in %s", name, fdp.GetName())
		return nil
	}
	field := func(name string, number int32, typ descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{
			Name: proto.String(name), Number: proto.Int32(number),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: typ.Enum(),
		}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	wr := message("WatchResponse")
	wr.Field = append(wr.Field,
		field("future_field", futureFieldNumber, descriptorpb.FieldDescriptorProto_TYPE_STRING, ""),
		field("future_thing", futureThingNumber, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, ".nodenet.node.v1.FutureThing"))
	values := field("values", 2, descriptorpb.FieldDescriptorProto_TYPE_UINT64, "")
	values.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	fdp.MessageType = append(fdp.MessageType, &descriptorpb.DescriptorProto{
		Name:  proto.String("FutureThing"),
		Field: []*descriptorpb.FieldDescriptorProto{field("note", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, ""), values},
	})
	pn := message("PodNetwork")
	pn.Field = append(pn.Field, field("future_mode", futureFieldNumber, descriptorpb.FieldDescriptorProto_TYPE_UINT32, ""))
	sv := message("ServiceVIP")
	sv.Field = append(sv.Field, field("weight", futureFieldNumber, descriptorpb.FieldDescriptorProto_TYPE_UINT32, ""))
	for _, e := range fdp.GetEnumType() {
		if e.GetName() == "PodCIDRSource" {
			e.Value = append(e.Value, &descriptorpb.EnumValueDescriptorProto{
				Name: proto.String("POD_CIDR_SOURCE_FUTURE"), Number: proto.Int32(int32(futureCIDRSource)),
			})
		}
	}

	// A registry of its own: the newer file must not meet the real one.
	deps := new(protoregistry.Files)
	if err := deps.RegisterFile(timestamppb.File_google_protobuf_timestamp_proto); err != nil {
		t.Fatal(err)
	}
	fd, err := protodesc.NewFile(fdp, deps)
	if err != nil {
		t.Fatalf("build the newer facts.proto: %v", err)
	}
	return fd
}

// newerMessage returns msg as the newer WatchResponse, with every future
// field set: future_field to note, and the others to fixed values.
func newerMessage(t *testing.T, fd protoreflect.FileDescriptor, msg *nodev1.WatchResponse, note string) *dynamicpb.Message {
	t.Helper()
	wire, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	desc := fd.Messages().ByName("WatchResponse")
	m := dynamicpb.NewMessage(desc)
	if err := proto.Unmarshal(wire, m); err != nil {
		t.Fatal(err)
	}
	if len(m.GetUnknown()) != 0 {
		t.Fatal("the newer WatchResponse does not know all fields of the current one")
	}
	fields := desc.Fields()
	m.Set(fields.ByName("future_field"), protoreflect.ValueOfString(note))
	thing := m.Mutable(fields.ByName("future_thing")).Message()
	thing.Set(thing.Descriptor().Fields().ByName("note"), protoreflect.ValueOfString("thing "+note))
	list := thing.Mutable(thing.Descriptor().Fields().ByName("values")).List()
	list.Append(protoreflect.ValueOfUint64(1))
	list.Append(protoreflect.ValueOfUint64(1 << 40))
	if m.Has(fields.ByName("pod_network")) {
		pn := m.Mutable(fields.ByName("pod_network")).Message()
		pn.Set(pn.Descriptor().Fields().ByName("future_mode"), protoreflect.ValueOfUint32(7))
		pn.Set(pn.Descriptor().Fields().ByName("cidr_source"), protoreflect.ValueOfEnum(protoreflect.EnumNumber(futureCIDRSource)))
	}
	vips := m.Get(fields.ByName("vips_set")).List()
	for i := range vips.Len() {
		v := vips.Get(i).Message()
		v.Set(v.Descriptor().Fields().ByName("weight"), protoreflect.ValueOfUint32(uint32(10+i)))
	}
	return m
}

// stripUnknown returns a copy of m without unknown fields, at any depth.
func stripUnknown[M proto.Message](m M) M {
	c := proto.CloneOf(m)
	discardUnknown(c.ProtoReflect())
	return c
}

func discardUnknown(m protoreflect.Message) {
	m.SetUnknown(nil)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				discardUnknown(v.List().Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, e protoreflect.Value) bool {
				discardUnknown(e.Message())
				return true
			})
		case fd.Message() != nil && !fd.IsMap():
			discardUnknown(v.Message())
		}
		return true
	})
}

// unknownFields parses raw unknown bytes into field number -> values.
func unknownFields(t *testing.T, raw []byte) map[protowire.Number][]any {
	t.Helper()
	out := map[protowire.Number][]any{}
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			t.Fatalf("bad unknown fields: %v", protowire.ParseError(n))
		}
		raw = raw[n:]
		var v any
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(raw)
		case protowire.BytesType:
			var b []byte
			b, n = protowire.ConsumeBytes(raw)
			v = string(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, raw)
			v = typ
		}
		if n < 0 {
			t.Fatalf("bad unknown field %d: %v", num, protowire.ParseError(n))
		}
		raw = raw[n:]
		out[num] = append(out[num], v)
	}
	return out
}

// skewFacts are the (known) facts the newer publisher sends.
func skewMessages() []*nodev1.WatchResponse {
	a, b, c := vip("10.96.0.1", 443, tcp, "default/kubernetes"), vip("10.96.0.10", 53, udp, "kube-system/kube-dns"), vip("10.96.0.20", 80, tcp, "web/frontend")
	return []*nodev1.WatchResponse{{
		Publisher: "routerd", Incarnation: "future-1", Generation: 1, Snapshot: true,
		PodNetwork: podNet(1450, "10.244.1.0/24", "fd00:10:244:1::/64"), PolicyState: policy(4),
		VipsSet: []*nodev1.ServiceVIP{a, b},
	}, {
		Publisher: "routerd", Incarnation: "future-1", Generation: 2,
		VipsSet: []*nodev1.ServiceVIP{c}, VipsDeleted: []*nodev1.ServiceVIPKey{a.GetKey()},
	}, {
		Publisher: "routerd", Incarnation: "future-1", Generation: 3,
		PodNetwork: podNet(1400, "10.244.2.0/24"),
	}}
}

func TestOldReaderKeepsUnknownFields(t *testing.T) {
	fd := newerFacts(t)
	real := skewMessages()[0]
	newer := newerMessage(t, fd, real, "from the future")
	wire, err := proto.Marshal(newer)
	if err != nil {
		t.Fatal(err)
	}

	var old nodev1.WatchResponse
	if err := proto.Unmarshal(wire, &old); err != nil {
		t.Fatalf("this build cannot read the newer message: %v", err)
	}
	// Known fields intact (the enum's new value aside, which proto3 keeps as
	// a number).
	if got := old.GetPodNetwork().GetCidrSource(); got != futureCIDRSource {
		t.Errorf("cidr_source = %v, want the unknown value %d kept", got, futureCIDRSource)
	}
	known := stripUnknown(&old)
	known.PodNetwork.CidrSource = real.GetPodNetwork().GetCidrSource()
	if !proto.Equal(known, real) {
		t.Fatalf("known fields differ:\n got %v\nwant %v", known, real)
	}
	if proto.Equal(&old, real) {
		t.Fatal("the newer message decoded without unknown fields: the test sends nothing new")
	}

	// The unknown ones are kept as bytes, at every level.
	top := unknownFields(t, old.ProtoReflect().GetUnknown())
	if got := top[futureFieldNumber]; !slices.Equal(got, []any{"from the future"}) {
		t.Errorf("unknown field %d = %v", futureFieldNumber, got)
	}
	thing := top[futureThingNumber]
	if len(thing) != 1 {
		t.Fatalf("unknown field %d = %v", futureThingNumber, thing)
	}
	inner := unknownFields(t, []byte(thing[0].(string)))
	if got := inner[1]; !slices.Equal(got, []any{"thing from the future"}) {
		t.Errorf("future_thing.note = %v", got)
	}
	if len(top) != 2 {
		t.Errorf("unknown fields of WatchResponse: %v, want only %d and %d", top, futureFieldNumber, futureThingNumber)
	}
	if got := unknownFields(t, old.GetPodNetwork().ProtoReflect().GetUnknown()); !slices.Equal(got[futureFieldNumber], []any{uint64(7)}) || len(got) != 1 {
		t.Errorf("unknown fields of PodNetwork = %v", got)
	}
	for i, v := range old.GetVipsSet() {
		if got := unknownFields(t, v.ProtoReflect().GetUnknown()); !slices.Equal(got[futureFieldNumber], []any{uint64(10 + i)}) {
			t.Errorf("unknown fields of VIP %d = %v", i, got)
		}
	}

	// The old reader's facts are the known ones.
	f := Facts{}.Apply(&old)
	if f.Generation != 1 || f.Incarnation != "future-1" || len(f.VIPs) != 2 ||
		!slices.Equal(f.PodNetwork.GetPodCidrs(), real.GetPodNetwork().GetPodCidrs()) {
		t.Fatalf("facts from the newer message: %s", describe(f))
	}

	// What the old build re-sends still carries the new fields.
	again, err := proto.Marshal(&old)
	if err != nil {
		t.Fatal(err)
	}
	relayed := dynamicpb.NewMessage(fd.Messages().ByName("WatchResponse"))
	if err := proto.Unmarshal(again, relayed); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(relayed, newer) {
		t.Errorf("relayed through the old build:\n got %v\nwant %v", relayed, newer)
	}

	// And the other way round: the newer build reads an old message, without
	// the new fields.
	wire, err = proto.Marshal(real)
	if err != nil {
		t.Fatal(err)
	}
	fromOld := dynamicpb.NewMessage(fd.Messages().ByName("WatchResponse"))
	if err := proto.Unmarshal(wire, fromOld); err != nil {
		t.Fatal(err)
	}
	if fromOld.Has(fd.Messages().ByName("WatchResponse").Fields().ByName("future_field")) || len(fromOld.GetUnknown()) != 0 {
		t.Errorf("newer reader of an old message: %v", fromOld)
	}
}

// newerServer is a FactsService of the newer build: it sends dynamic
// messages of the newer WatchResponse.
type newerServer struct {
	mu       sync.Mutex
	watchers []string
}

func (s *newerServer) register(srv *grpc.Server, fd protoreflect.FileDescriptor, msgs []*dynamicpb.Message) {
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "nodenet.node.v1.FactsService",
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    "Watch",
			ServerStreams: true,
			Handler: func(_ any, stream grpc.ServerStream) error {
				req := dynamicpb.NewMessage(fd.Messages().ByName("WatchRequest"))
				if err := stream.RecvMsg(req); err != nil {
					return err
				}
				s.mu.Lock()
				s.watchers = append(s.watchers, req.Get(req.Descriptor().Fields().ByName("watcher")).String())
				s.mu.Unlock()
				for _, m := range msgs {
					if err := stream.SendMsg(m); err != nil {
						return err
					}
				}
				<-stream.Context().Done()
				return nil
			},
		}},
		Metadata: "nodenet/node/v1/facts.proto",
	}, struct{}{})
}

func (s *newerServer) watcherNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.watchers)
}

func TestWatcherOfNewerPublisher(t *testing.T) {
	fd := newerFacts(t)
	real := skewMessages()
	var msgs []*dynamicpb.Message
	for i, m := range real {
		msgs = append(msgs, newerMessage(t, fd, m, "note "+string(rune('a'+i))))
	}
	path := socketPath(t, "routerd.sock")
	newer := &newerServer{}
	serve(t, path, nil, func(srv *grpc.Server) { newer.register(srv, fd, msgs) })

	w := startWatcher(t, path)
	w.waitFor(t, "generation 3", func() bool { return w.Facts().Generation == 3 })

	// The known fields, as this build's publisher would have sent them.
	want := Facts{}
	for _, m := range real {
		want = want.Apply(m)
	}
	got := w.Facts()
	if got.Publisher != "routerd" || got.Incarnation != "future-1" || !got.Known {
		t.Fatalf("facts from the newer publisher: %s", describe(got))
	}
	if !slices.Equal(got.PodNetwork.GetPodCidrs(), []string{"10.244.2.0/24"}) || got.PodNetwork.GetMtu() != 1400 {
		t.Errorf("pod network = %v", got.PodNetwork)
	}
	if got.PodNetwork.GetCidrSource() != futureCIDRSource {
		t.Errorf("cidr_source = %v, want the unknown value %d kept", got.PodNetwork.GetCidrSource(), futureCIDRSource)
	}
	if len(got.VIPs) != 2 || got.VIPs[VIPKey{IP: "10.96.0.10", Port: 53, Protocol: udp}].GetService() != "kube-system/kube-dns" ||
		got.VIPs[VIPKey{IP: "10.96.0.20", Port: 80, Protocol: tcp}].GetService() != "web/frontend" {
		t.Errorf("VIPs = %v", sortedVIPs(got.VIPs))
	}
	if got.PolicyState.GetAppliedGeneration() != 4 {
		t.Errorf("policy state = %v", got.PolicyState)
	}
	// All of it, once the unknown fields (and the unknown enum value) are
	// set aside; they are kept, not dropped.
	stripped := got
	stripped.PodNetwork = stripUnknown(got.PodNetwork)
	stripped.PodNetwork.CidrSource = want.PodNetwork.GetCidrSource()
	stripped.VIPs = map[VIPKey]*nodev1.ServiceVIP{}
	for k, v := range got.VIPs {
		stripped.VIPs[k] = stripUnknown(v)
		if len(v.ProtoReflect().GetUnknown()) == 0 {
			t.Errorf("VIP %v lost its unknown weight", k)
		}
	}
	assertFacts(t, stripped, want)
	if len(got.PodNetwork.ProtoReflect().GetUnknown()) == 0 {
		t.Error("the pod network lost its unknown field")
	}

	// Nothing broke: one stream, still connected, no error.
	st := w.Status()
	if !st.GetConnected() || st.GetLastError() != "" || st.GetGeneration() != 3 || st.GetIncarnation() != "future-1" {
		t.Errorf("status = %v", st)
	}
	if names := newer.watcherNames(); !slices.Equal(names, []string{"proxyd"}) {
		t.Errorf("watch streams from %v, want one from proxyd", names)
	}
}
