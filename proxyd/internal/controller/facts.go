package controller

import (
	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/problems"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"k8s.io/apimachinery/pkg/runtime"
)

// vipFacts renders the programmed virtual services for the coordination API
// (routerd announces a VIP only once proxyd has programmed it).
func vipFacts(programmed []*model.VirtualService) []*nodev1.ServiceVIP {
	out := make([]*nodev1.ServiceVIP, len(programmed))
	for i, vs := range programmed {
		out[i] = &nodev1.ServiceVIP{
			Key:                  &nodev1.ServiceVIPKey{Ip: vs.Addr.String(), Port: uint32(vs.Port), Protocol: protoFact(vs.Proto)},
			Service:              vs.Service.String(),
			PortName:             vs.PortName,
			Kind:                 kindFact(vs.Kind),
			LocalEndpoints:       vs.LocalEndpoints,
			ExternalTrafficLocal: vs.ExternalLocal,
		}
	}
	return out
}

func protoFact(p model.Protocol) nodev1.Protocol {
	switch p {
	case model.TCP:
		return nodev1.Protocol_PROTOCOL_TCP
	case model.UDP:
		return nodev1.Protocol_PROTOCOL_UDP
	case model.SCTP:
		return nodev1.Protocol_PROTOCOL_SCTP
	}
	return nodev1.Protocol_PROTOCOL_UNSPECIFIED
}

func kindFact(k model.Kind) nodev1.VIPKind {
	switch k {
	case model.ClusterIP:
		return nodev1.VIPKind_VIP_KIND_CLUSTER_IP
	case model.ExternalIP:
		return nodev1.VIPKind_VIP_KIND_EXTERNAL_IP
	case model.LoadBalancer:
		return nodev1.VIPKind_VIP_KIND_LOAD_BALANCER
	case model.NodePort:
		return nodev1.VIPKind_VIP_KIND_NODE_PORT
	}
	return nodev1.VIPKind_VIP_KIND_UNSPECIFIED
}

// lookup finds the object a problem is about, for its event.
func (c *Controller) lookup(p problems.Problem) runtime.Object {
	switch p.Kind {
	case "Service":
		if svc, err := c.svcs.Services(p.Namespace).Get(p.Name); err == nil {
			return svc
		}
	case "EndpointSlice":
		if obj, ok, err := c.sliceIndexer.GetByKey(p.Namespace + "/" + p.Name); err == nil && ok {
			if ro, ok := obj.(runtime.Object); ok {
				return ro
			}
		}
	}
	return nil
}
