package routing

import (
	"github.com/crmbridge/crmbridge/crm"
)

// creditUnit is one pick's worth of credit in a weighted pool: each pick
// hands out creditUnit among the candidates in proportion to their
// weights and takes it back from the one picked. 2^40 keeps the rounding
// of a share below 2^-40 of a pick while weights up to MaxWeight fit in
// an int64.
const creditUnit = int64(1) << 40

// MaxWeight is the largest weight [SmoothWeighted] accepts.
const MaxWeight = 1_000_000

// SmoothWeighted returns the weighted-shares rule: a smooth weighted round
// robin over normalised credits, deterministic (no randomness). weight
// gives each member's weight (values below 1 count as 1, above MaxWeight
// as MaxWeight).
//
// At each pick every candidate's credit grows by its weight divided by
// the candidates' total weight (so the pick's one unit is shared out),
// the candidate with the most credit is picked (ties: served least
// recently, then the smaller ID in byte order) and its credit drops by
// one unit. A member who was not a candidate at the pool's previous pick
// (they joined, came back, or were at capacity) starts again from zero
// credit: absence is neither owed nor charged.
//
// Guarantee. An employee's weighted share over a period is the sum, over
// the picks of the period, of their weight divided by the total weight of
// the candidates at that pick; their count is how many of those picks
// they got. Over the period since an employee last became a candidate:
//   - while the other candidates and all weights stay the same from a
//     fresh pool, the count stays strictly within 1 of the share at every
//     pick (the smooth-weighted-round-robin bound), so over every W picks
//     with weights summing to W each employee gets exactly their weight;
//   - while others join, leave, toggle or reach capacity, the count stays
//     within 2 of the share (property-tested over random churn).
//
// With all weights equal, use [LeastRecentlyServed], whose pairwise
// equal-shares bound is tighter.
func SmoothWeighted(weight func(crm.UserID) int) Chooser {
	return func(p PoolState) Choice {
		return smoothWeighted(p, weight, nil)
	}
}

func clampWeight(w int) int64 {
	return int64(min(max(w, 1), MaxWeight))
}

// smoothWeighted runs the rule over the members whose index ok accepts
// (nil: all); the others' credits are set to zero.
func smoothWeighted(p PoolState, weight func(crm.UserID) int, ok func(int) bool) Choice {
	credits := make([]int64, len(p.Members))
	var total int64
	for i, m := range p.Members {
		if ok == nil || ok(i) {
			total += clampWeight(weight(m.User))
		}
	}
	if total == 0 {
		return Choice{Index: -1, Credits: credits}
	}
	best := -1
	var handed int64
	first := -1
	for i, m := range p.Members {
		if ok != nil && !ok(i) {
			continue
		}
		if first < 0 {
			first = i
		}
		c := m.Credit
		if m.Seen != p.Seq {
			c = 0
		}
		inc := clampWeight(weight(m.User)) * creditUnit / total
		handed += inc
		credits[i] = c + inc
	}
	credits[first] += creditUnit - handed // rounding: under one 2^-40 of a pick per candidate
	for i, m := range p.Members {
		if ok != nil && !ok(i) {
			continue
		}
		if best < 0 || credits[i] > credits[best] || (credits[i] == credits[best] && lessRecentlyServed(m, p.Members[best])) {
			best = i
		}
	}
	credits[best] -= creditUnit
	return Choice{Index: best, Credits: credits}
}
