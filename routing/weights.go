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
//   - while the candidates and their weights stay the same from a fresh
//     pool, the count stays strictly within 1 of the share at every pick
//     (the smooth-weighted-round-robin bound), so with integer weights
//     summing to W, after k·W picks each employee has exactly k times
//     their weight;
//   - while others join, leave, toggle or reach capacity, the count stays
//     below 2 from the share (property-tested over random churn and
//     against an adversary that chooses the candidates before every
//     pick).
//
// No rule can keep 1 under churn: once k of n equal-weight employees have
// been picked once each and the other n-k leave, the next pick puts one
// of the k 2 - k/n - 1/k above their share, whoever it picks.
//
// With all weights equal, use [LeastRecentlyServed], whose pairwise
// equal-shares bound is tighter.
func SmoothWeighted(weight func(crm.UserID) int) Chooser {
	return func(p PoolState) Choice {
		return smoothWeighted(p, weight, nil, nil)
	}
}

func clampWeight(w int) int64 {
	return int64(min(max(w, 1), MaxWeight))
}

// smoothWeighted runs the rule over the members not excluded (exclude
// nil: none excluded; else by index); the excluded get zero credit. The
// credits are written to buf when it is long enough.
func smoothWeighted(p PoolState, weight func(crm.UserID) int, exclude []bool, buf []int64) Choice {
	n := len(p.Members)
	credits := buf[:0]
	if cap(credits) < n {
		credits = make([]int64, n)
	} else {
		credits = credits[:n]
		clear(credits)
	}
	var wbuf [32]int64
	ws := wbuf[:0]
	if n > len(wbuf) {
		ws = make([]int64, 0, n)
	}
	var total int64
	for i, m := range p.Members {
		w := int64(0)
		if exclude == nil || !exclude[i] {
			w = clampWeight(weight(m.User))
		}
		ws = append(ws, w)
		total += w
	}
	if total == 0 {
		return Choice{Index: -1, Credits: credits}
	}
	best, first := -1, -1
	var handed int64
	for i, m := range p.Members {
		if ws[i] == 0 {
			continue
		}
		if first < 0 {
			first = i
		}
		c := m.Credit
		if m.Seen != p.Seq {
			c = 0
		}
		inc := ws[i] * creditUnit / total
		handed += inc
		credits[i] = c + inc
	}
	credits[first] += creditUnit - handed // rounding: under one 2^-40 of a pick per candidate
	for i, m := range p.Members {
		if ws[i] != 0 && (best < 0 || credits[i] > credits[best] || (credits[i] == credits[best] && lessRecentlyServed(m, p.Members[best]))) {
			best = i
		}
	}
	credits[best] -= creditUnit
	return Choice{Index: best, Credits: credits}
}
