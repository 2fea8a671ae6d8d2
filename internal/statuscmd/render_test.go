package statuscmd

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestWriteTable(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	reports := []Report{
		{Daemon: "routerd", Reachable: true, Health: "SERVING", status: &nodev1.GetResponse{
			Build:  &nodev1.BuildInfo{Version: "v1.2.3"},
			Counts: map[string]uint64{"routes": 4, "peers": 2},
			Sync:   &nodev1.SyncStatus{LastSyncTime: timestamppb.New(now.Add(-3 * time.Second)), LastSyncDuration: durationpb.New(1500 * time.Microsecond)},
			Peers:  []*nodev1.PeerStatus{{Name: "proxyd", Connected: true}, {Name: "firewalld"}},
		}},
		{Daemon: "proxyd", Health: "UNREACHABLE", Error: "no socket"},
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, reports, now); err != nil {
		t.Fatal(err)
	}
	want := `DAEMON   HEALTH       VERSION  LAST SYNC  SYNC TOOK  COUNTS            PEERS                     ERROR
routerd  SERVING      v1.2.3   3s ago     1.5ms      peers=2,routes=4  proxyd:up,firewalld:down  
proxyd   UNREACHABLE  -        -          -          -                 -                         no socket
`
	if buf.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestWriteTableApplied(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	reports := []Report{
		{Daemon: "routerd", Reachable: true, Health: "SERVING", status: &nodev1.GetResponse{
			Build: &nodev1.BuildInfo{Version: "v1"},
			Sync: &nodev1.SyncStatus{Applied: []*nodev1.ObjectVersion{
				{Kind: "nodes", ResourceVersion: "1187", Generation: 3},
			}},
		}},
		{Daemon: "proxyd", Reachable: true, Health: "SERVING", status: &nodev1.GetResponse{
			Build: &nodev1.BuildInfo{Version: "v1"},
			Sync: &nodev1.SyncStatus{Applied: []*nodev1.ObjectVersion{
				{Kind: "endpointslices", ResourceVersion: "1240", Generation: 30},
				{Kind: "nodes", Generation: 1}, // no resourceVersion was a number
				{Kind: "services", ResourceVersion: "1234", Generation: 17},
			}},
		}},
		{Daemon: "firewalld", Health: "UNREACHABLE", Error: "no socket"},
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, reports, now); err != nil {
		t.Fatal(err)
	}
	_, applied, _ := strings.Cut(buf.String(), "\n\n")
	want := `routerd  applied: nodes@1187 (3)
proxyd   applied: endpointslices@1240 (30), nodes (1), services@1234 (17)
`
	if applied != want {
		t.Fatalf("applied:\n%s\nwant:\n%s", applied, want)
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	r := Report{Daemon: "firewalld", Socket: "/run/nodenet/firewalld.sock", Reachable: true, Health: "NOT_SERVING",
		Error: "a change has waited 3m0s", Status: json.RawMessage(`{"daemon":"firewalld"}`)}
	if err := WriteJSON(&buf, []Report{r}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Daemons []map[string]any `json:"daemons"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	d := doc.Daemons[0]
	if d["daemon"] != "firewalld" || d["health"] != "NOT_SERVING" || d["reachable"] != true ||
		d["status"].(map[string]any)["daemon"] != "firewalld" || !strings.Contains(d["error"].(string), "waited") {
		t.Fatalf("json %s", buf.String())
	}
	if r.OK() {
		t.Fatal("NOT_SERVING reported OK")
	}
	if !(Report{Reachable: true, Health: "SERVING"}).OK() {
		t.Fatal("SERVING not OK")
	}
}

func TestWriteTableBGPPeers(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	reports := []Report{{Daemon: "routerd", Reachable: true, Health: "SERVING", status: &nodev1.GetResponse{
		Build: &nodev1.BuildInfo{Version: "v1"},
		BgpPeers: []*nodev1.BGPPeer{
			{Name: "node-1", Address: "198.18.0.11", Asn: 64512, Kind: "node", State: "established", Since: timestamppb.New(now.Add(-time.Minute)),
				Received: 1, Accepted: 1, Advertised: 1, GracefulRestart: true, EndOfRib: true},
			{Name: "198.18.9.1", Address: "198.18.9.1", Asn: 65000, Kind: "external", State: "active", Md5: true},
		},
	}}}
	var buf bytes.Buffer
	if err := WriteTable(&buf, reports, now); err != nil {
		t.Fatal(err)
	}
	_, peers, _ := strings.Cut(buf.String(), "\n\n")
	want := `BGP PEER    ADDRESS      ASN    KIND      STATE        SINCE  RECEIVED  ACCEPTED  ADVERTISED  FLAGS
node-1      198.18.0.11  64512  node      established  1m0s   1         1         1           gr,eor
198.18.9.1  198.18.9.1   65000  external  active       -      0         0         0           md5
`
	if peers != want {
		t.Fatalf("peers:\n%s\nwant:\n%s", peers, want)
	}
}
