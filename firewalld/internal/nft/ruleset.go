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

// Names of the fixed chains. Group chains are named by groupChainName,
// peer sets by peerSetName.
const (
	chainForward = "forward"
	chainOutput  = "output"
	chainPods    = "pods"
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
	// Names of the fixed sets and maps.
	localCIDRs, known, ingGroup, egGroup string
	// suffix ends the family's set names ("4", "6"); name is for comments.
	suffix, name string
}

func newFamily(v6 bool) family {
	if v6 {
		return family{
			v6: true, nfproto: unix.NFPROTO_IPV6, addrLen: 16, saddrOffset: 8, daddrOffset: 24,
			localCIDRs: "local_cidrs6", known: "known_local6", ingGroup: "ing_group6", egGroup: "eg_group6",
			suffix: "6", name: "IPv6",
		}
	}
	return family{
		nfproto: unix.NFPROTO_IPV4, addrLen: 4, saddrOffset: 12, daddrOffset: 16,
		localCIDRs: "local_cidrs4", known: "known_local4", ingGroup: "ing_group4", egGroup: "eg_group4",
		suffix: "4", name: "IPv4",
	}
}

func families() []family { return []family{newFamily(false), newFamily(true)} }

// groupMap is the verdict map of the family's pods isolated in dir.
func (f family) groupMap(dir model.Direction) string {
	if dir == model.Egress {
		return f.egGroup
	}
	return f.ingGroup
}

// chainSpec is one fixed chain of the table: a base chain when hook is set.
type chainSpec struct {
	name     string
	hook     *nftables.ChainHook
	priority nftables.ChainPriority
	rules    []ruleSpec
}

// ruleSpec is one rule: its expressions and, for the fixed chains, a
// comment nft shows.
type ruleSpec struct {
	comment string
	exprs   []expr.Any
}

func (r ruleSpec) userData() []byte {
	if r.comment == "" {
		return nil
	}
	return userdata.AppendString(nil, userdata.TypeComment, r.comment)
}

// ruleset is the static part of the table (the fixed sets, the fixed
// chains and their rules) and how the dynamic part is written: the rules
// of a group chain depend on Config's log settings.
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

// setSpec returns the definition of the fixed set or peer set name.
func (rs *ruleset) setSpec(name string) (setSpec, bool) {
	for _, s := range rs.sets {
		if s.name == name {
			return s, true
		}
	}
	if _, v6, ok := parsePeerSet(name); ok {
		return peerSetSpec(name, v6), true
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
		rs.sets = append(rs.sets,
			setSpec{name: f.localCIDRs, v6: f.v6, interval: true, comment: "this node's pod CIDRs"},
			setSpec{name: f.known, v6: f.v6, comment: "local pods firewalld knows"},
			setSpec{name: f.ingGroup, v6: f.v6, verdicts: true, comment: "local pods isolated for ingress: their group's chain"},
			setSpec{name: f.egGroup, v6: f.v6, verdicts: true, comment: "local pods isolated for egress: their group's chain"},
		)
	}
	var pods []ruleSpec
	for _, f := range families() {
		pods = append(pods, pendingRule(f, true), pendingRule(f, false))
	}
	// Egress first: a group chain that lets the packet out returns here,
	// and the destination's ingress group is checked next.
	for _, dir := range []model.Direction{model.Egress, model.Ingress} {
		for _, f := range families() {
			pods = append(pods, groupJumpRule(f, dir))
		}
	}
	// Referenced chains first: a rule can only jump to a chain that exists.
	rs.chains = []chainSpec{
		{name: chainPods, rules: pods},
		{name: chainForward, hook: nftables.ChainHookForward, priority: *nftables.ChainPriorityFilter,
			rules: []ruleSpec{establishedRule(), jumpRule(chainPods)}},
		{name: chainOutput, hook: nftables.ChainHookOutput, priority: *nftables.ChainPriorityFilter,
			rules: []ruleSpec{establishedRule(), localSourceRule(), jumpRule(chainPods)}},
	}
	return rs
}

func (rs *ruleset) chain(name string) (chainSpec, bool) {
	for _, c := range rs.chains {
		if c.name == name {
			return c, true
		}
	}
	return chainSpec{}, false
}

// groupChainName is the chain of target group k: in-<id> or out-<id>, the
// id as 8 hex digits.
func groupChainName(k model.GroupKey) string {
	if k.Direction == model.Egress {
		return "out-" + k.ID.String()
	}
	return "in-" + k.ID.String()
}

// parseGroupChain is the inverse of groupChainName.
func parseGroupChain(name string) (model.GroupKey, bool) {
	var k model.GroupKey
	var hex string
	switch {
	case len(name) == len("in-")+8 && name[:3] == "in-":
		k.Direction, hex = model.Ingress, name[3:]
	case len(name) == len("out-")+8 && name[:4] == "out-":
		k.Direction, hex = model.Egress, name[4:]
	default:
		return k, false
	}
	id, err := strconv.ParseUint(hex, 16, 32)
	if err != nil {
		return k, false
	}
	k.ID = model.ID(id)
	if groupChainName(k) != name {
		return k, false // not in canonical form: not one firewalld wrote
	}
	return k, true
}

// peerSetName is the set of peer p's addresses of one family:
// peer-<id>-4 or peer-<id>-6.
func peerSetName(p model.ID, v6 bool) string {
	if v6 {
		return "peer-" + p.String() + "-6"
	}
	return "peer-" + p.String() + "-4"
}

// parsePeerSet is the inverse of peerSetName.
func parsePeerSet(name string) (model.ID, bool, bool) {
	if len(name) != len("peer-")+8+2 || name[:5] != "peer-" || name[13] != '-' {
		return 0, false, false
	}
	id, err := strconv.ParseUint(name[5:13], 16, 32)
	if err != nil {
		return 0, false, false
	}
	v6 := name[14] == '6'
	if peerSetName(model.ID(id), v6) != name {
		return 0, false, false
	}
	return model.ID(id), v6, true
}

// logPrefix is what a group chain's log rule prefixes its lines with.
func logPrefix(k model.GroupKey) string {
	tag := "in"
	if k.Direction == model.Egress {
		tag = "eg"
	}
	return "nodenet deny " + tag + " " + k.ID.String() + " "
}

// groupRules are the rules of group chain k: one per rule of the model
// and family (a rule without a peer matches any address: one for both),
// in the model's order, each returning to the pods chain when it matches;
// then, when configured, a rate limited log; then the counted drop.
func (rs *ruleset) groupRules(k model.GroupKey, rules []model.Rule) []ruleSpec {
	out := make([]ruleSpec, 0, rs.groupRuleCount(rules))
	for _, r := range rules {
		if r.Peer == model.AnyPeer {
			out = append(out, ruleSpec{exprs: allowRule(nil, k.Direction, r)})
			continue
		}
		for _, f := range families() {
			f := f
			out = append(out, ruleSpec{exprs: allowRule(&f, k.Direction, r)})
		}
	}
	if rs.log.enabled() {
		out = append(out, ruleSpec{exprs: []expr.Any{
			&expr.Limit{Type: expr.LimitTypePkts, Rate: uint64(rs.log.rate), Unit: expr.LimitTimeSecond, Burst: rs.log.burst},
			&expr.Log{Key: 1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX, Group: rs.log.group, Data: []byte(logPrefix(k))},
		}})
	}
	return append(out, ruleSpec{exprs: []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}})
}

// groupRuleCount is len(rs.groupRules(_, rules)), without encoding them.
func (rs *ruleset) groupRuleCount(rules []model.Rule) int {
	n := 1 // the drop
	if rs.log.enabled() {
		n++
	}
	for _, r := range rules {
		if r.Peer == model.AnyPeer {
			n++
		} else {
			n += 2
		}
	}
	return n
}
