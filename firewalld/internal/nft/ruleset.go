package nft

import (
	"fmt"
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"golang.org/x/sys/unix"
)

// TableName is firewalld's table, family inet. firewalld owns it whole and
// touches no other.
const TableName = "nodenet-firewalld"

// Chain names. The deny chains are named by denyChainName.
const (
	chainForward = "forward"
	chainOutput  = "output"
	chainPods    = "pods"
	chainEgress  = "egress"
	chainIngress = "ingress"
)

// Set names of the family independent sets.
const (
	setIngressAllow = "ing_allow"
	setEgressAllow  = "eg_allow"
	setIngressAny   = "ing_any"
	setEgressAny    = "eg_any"
)

// defaultLogBurst is the burst the kernel gives a packet limit without one
// (NFT_LIMIT_PKT_BURST_DEFAULT); written explicitly, so that the rule
// reads back as written.
const defaultLogBurst = 5

// family holds the names and header offsets of one address family.
type family struct {
	v6                       bool
	nfproto                  byte
	addrLen                  uint32
	saddrOffset, daddrOffset uint32
	// Set names.
	localCIDRs, known     string
	ingGroup, egGroup     string
	podIdent, regionIdent string
	ingDeny, egDeny       string
	suffix                string
}

func newFamily(v6 bool) family {
	if v6 {
		return family{
			v6: true, nfproto: unix.NFPROTO_IPV6, addrLen: 16, saddrOffset: 8, daddrOffset: 24,
			localCIDRs: "local_cidrs6", known: "known_local6", ingGroup: "ing_group6", egGroup: "eg_group6",
			podIdent: "pod_ident6", regionIdent: "region_ident6", ingDeny: "ing_deny6", egDeny: "eg_deny6",
			suffix: "IPv6",
		}
	}
	return family{
		nfproto: unix.NFPROTO_IPV4, addrLen: 4, saddrOffset: 12, daddrOffset: 16,
		localCIDRs: "local_cidrs4", known: "known_local4", ingGroup: "ing_group4", egGroup: "eg_group4",
		podIdent: "pod_ident4", regionIdent: "region_ident4", ingDeny: "ing_deny4", egDeny: "eg_deny4",
		suffix: "IPv4",
	}
}

func families() []family { return []family{newFamily(false), newFamily(true)} }

// chainSpec is one chain of the table: a base chain when hook is set.
type chainSpec struct {
	name     string
	hook     *nftables.ChainHook
	priority nftables.ChainPriority
	rules    []ruleSpec
}

// ruleSpec is one rule: its expressions and a comment nft shows.
type ruleSpec struct {
	comment string
	exprs   []expr.Any
}

func (r ruleSpec) userData() []byte {
	return userdata.AppendString(nil, userdata.TypeComment, r.comment)
}

// ruleset is the static part of the table: set definitions, the fixed
// chains and their rules, and the rules every deny chain has (they depend
// on the log settings of Config). Everything that changes at run time is
// a set element or a deny chain.
type ruleset struct {
	log    logConfig
	sets   []setSpec
	chains []chainSpec
}

// logConfig is Config's logging, normalized.
type logConfig struct {
	group       uint16
	rate, burst uint32
}

func (l logConfig) enabled() bool { return l.group > 0 }

func (l logConfig) String() string {
	if !l.enabled() {
		return "no log"
	}
	return fmt.Sprintf("log group %d rate %d/second burst %d", l.group, l.rate, l.burst)
}

// newLogConfig checks and normalizes Config's logging.
func newLogConfig(cfg Config) (logConfig, error) {
	if cfg.LogGroup == 0 {
		return logConfig{}, nil
	}
	if cfg.LogRate == 0 {
		return logConfig{}, fmt.Errorf("log group %d needs a log rate above zero", cfg.LogGroup)
	}
	burst := cfg.LogBurst
	if burst == 0 {
		burst = defaultLogBurst
	}
	return logConfig{group: cfg.LogGroup, rate: cfg.LogRate, burst: burst}, nil
}

func (rs *ruleset) set(name string) (setSpec, bool) {
	for _, s := range rs.sets {
		if s.name == name {
			return s, true
		}
	}
	return setSpec{}, false
}

// fixedRules is the number of rules of the fixed chains.
func (rs *ruleset) fixedRules() int {
	n := 0
	for _, c := range rs.chains {
		n += len(c.rules)
	}
	return n
}

// newRuleset returns the table's static part. It is a function (no
// package state): every applier holds its own.
func newRuleset(log logConfig) *ruleset {
	rs := &ruleset{log: log}
	for _, f := range families() {
		addr := []field{fieldAddr}
		rs.sets = append(rs.sets,
			setSpec{name: f.localCIDRs, v6: f.v6, kind: rangeSet, fields: addr,
				comment: "this node's pod CIDRs"},
			setSpec{name: f.known, v6: f.v6, kind: hashSet, fields: addr,
				comment: "local pods firewalld knows"},
			setSpec{name: f.ingGroup, v6: f.v6, kind: hashSet, fields: addr, data: markData,
				comment: "local pods isolated for ingress: their target group"},
			setSpec{name: f.egGroup, v6: f.v6, kind: hashSet, fields: addr, data: markData,
				comment: "local pods isolated for egress: their target group"},
			setSpec{name: f.podIdent, v6: f.v6, kind: hashSet, fields: addr, data: markData,
				comment: "pods (every node's): their identity"},
			setSpec{name: f.regionIdent, v6: f.v6, kind: rangeSet, fields: addr, data: markData,
				comment: "address regions of ipBlocks: their identity"},
			setSpec{name: f.ingDeny, v6: f.v6, kind: hashSet, fields: addr, data: verdictData,
				comment: "isolated for ingress: the deny chain of their group"},
			setSpec{name: f.egDeny, v6: f.v6, kind: hashSet, fields: addr, data: verdictData,
				comment: "isolated for egress: the deny chain of their group"},
		)
	}
	allow := []field{fieldMark, fieldMark, fieldProto, fieldPort}
	anyPeer := []field{fieldMark, fieldProto, fieldPort}
	rs.sets = append(rs.sets,
		setSpec{name: setIngressAllow, kind: concatRangeSet, fields: allow,
			comment: "ingress allowed: group . peer identity . protocols . ports"},
		setSpec{name: setEgressAllow, kind: concatRangeSet, fields: allow,
			comment: "egress allowed: group . peer identity . protocols . ports"},
		setSpec{name: setIngressAny, kind: concatRangeSet, fields: anyPeer,
			comment: "ingress allowed from anywhere: group . protocols . ports"},
		setSpec{name: setEgressAny, kind: concatRangeSet, fields: anyPeer,
			comment: "egress allowed to anywhere: group . protocols . ports"},
	)

	var pods, egress, ingress []ruleSpec
	for _, f := range families() {
		pods = append(pods, pendingRule(f, true), pendingRule(f, false))
	}
	pods = append(pods, jumpRule(chainEgress), jumpRule(chainIngress))
	for _, f := range families() {
		egress = append(egress, directionRules(f, model.Egress)...)
		ingress = append(ingress, directionRules(f, model.Ingress)...)
	}
	// Referenced chains first: a rule can only jump to a chain that exists.
	rs.chains = []chainSpec{
		{name: chainEgress, rules: egress},
		{name: chainIngress, rules: ingress},
		{name: chainPods, rules: pods},
		{name: chainForward, hook: nftables.ChainHookForward, priority: *nftables.ChainPriorityFilter,
			rules: []ruleSpec{establishedRule(), jumpRule(chainPods)}},
		{name: chainOutput, hook: nftables.ChainHookOutput, priority: *nftables.ChainPriorityFilter,
			rules: []ruleSpec{establishedRule(), localSourceRule(), jumpRule(chainPods)}},
	}
	return rs
}

// denyChainName is the deny chain of group id in direction dir:
// deny-in-<id> or deny-eg-<id>, the id as 8 hex digits.
func denyChainName(dir model.Direction, id model.ID) string {
	return "deny-" + dirTag(dir) + "-" + id.String()
}

func dirTag(dir model.Direction) string {
	if dir == model.Egress {
		return "eg"
	}
	return "in"
}

// parseDenyChain is the inverse of denyChainName.
func parseDenyChain(name string) (model.Direction, model.ID, bool) {
	const n = len("deny-in-") + 8
	if len(name) != n || name[:5] != "deny-" || name[7] != '-' {
		return 0, 0, false
	}
	var dir model.Direction
	switch name[5:7] {
	case "in":
		dir = model.Ingress
	case "eg":
		dir = model.Egress
	default:
		return 0, 0, false
	}
	id, err := strconv.ParseUint(name[8:], 16, 32)
	if err != nil || denyChainName(dir, model.ID(id)) != name {
		return 0, 0, false // not in canonical form: not one firewalld wrote
	}
	return dir, model.ID(id), true
}

// denyRules are the rules of a deny chain: count, log (when configured,
// rate limited; the limit ends the rule, so the drop is a rule of its
// own), drop.
func (rs *ruleset) denyRules(dir model.Direction, id model.ID) []ruleSpec {
	what := fmt.Sprintf("%s group %s", dir, id)
	if !rs.log.enabled() {
		return []ruleSpec{{comment: "deny " + what, exprs: []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}}}
	}
	prefix := fmt.Sprintf("nodenet deny %s %s ", dirTag(dir), id)
	return []ruleSpec{
		{comment: "count and log " + what, exprs: []expr.Any{
			&expr.Counter{},
			&expr.Limit{Type: expr.LimitTypePkts, Rate: uint64(rs.log.rate), Unit: expr.LimitTimeSecond, Burst: rs.log.burst},
			&expr.Log{Key: 1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX, Group: rs.log.group, Data: []byte(prefix)},
		}},
		{comment: "deny " + what, exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}},
	}
}

// denyRuleCount is the number of rules of every deny chain.
func (rs *ruleset) denyRuleCount() int { return len(rs.denyRules(model.Ingress, 0)) }
