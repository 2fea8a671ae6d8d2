package policy

import (
	"slices"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

func tcp(from, to uint16) model.PortRange {
	return model.PortRange{ProtoFrom: 6, ProtoTo: 6, PortFrom: from, PortTo: to}
}
func udp(from, to uint16) model.PortRange {
	return model.PortRange{ProtoFrom: 17, ProtoTo: 17, PortFrom: from, PortTo: to}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in, want []model.PortRange
	}{
		{"nothing", nil, nil},
		{"one", []model.PortRange{tcp(80, 80)}, []model.PortRange{tcp(80, 80)}},
		{"duplicates", []model.PortRange{tcp(80, 80), tcp(80, 80)}, []model.PortRange{tcp(80, 80)}},
		{"overlap and adjacency merge", []model.PortRange{tcp(100, 200), tcp(80, 99), tcp(150, 300), tcp(302, 302)}, []model.PortRange{tcp(80, 300), tcp(302, 302)}},
		{"protocols stay apart", []model.PortRange{udp(53, 53), tcp(53, 53)}, []model.PortRange{tcp(53, 53), udp(53, 53)}},
		{"all traffic absorbs the rest", []model.PortRange{tcp(80, 80), model.AllTraffic}, []model.PortRange{model.AllTraffic}},
		{"whole protocol", []model.PortRange{tcp(0, 65535), tcp(65535, 65535)}, []model.PortRange{tcp(0, 65535)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := normalize(tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("normalize(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
