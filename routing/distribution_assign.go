package routing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
)

// Request is the input of the channel-aware distribution calls
// ([Distributor.Assign], [Distributor.Drain], [Distributor.Escalate],
// [Distributor.Owner]): a channel's settings, its mode, the roles, the
// chat and the event's time.
type Request struct {
	// Settings are the chat's channel settings: capacity, weights,
	// schedules, escalation, queue and owner policies. Their Channel, if
	// set, must be the chat's channel.
	Settings ChannelSettings
	// Mode is the channel's mode (see [ChannelSettings.Mode]).
	Mode Mode
	// Roles is the roles table.
	Roles *roles.Table
	// Chat is the client's chat. For Drain only Chat.Channel is used.
	Chat channel.Chat
	// At is the event's time: schedules are read at it, a queued client
	// waits from it, an escalation clock starts at it. It may be zero
	// only when the channel has none of these.
	At time.Time
}

func (r *Request) check(needChat bool) error {
	if needChat {
		if err := checkChat(r.Chat); err != nil {
			return err
		}
	} else if r.Chat.Channel == "" {
		return fmt.Errorf("%w: empty channel", ErrInvalid)
	}
	if r.Settings.Channel != "" && r.Settings.Channel != r.Chat.Channel {
		return fmt.Errorf("%w: settings of channel %q given for chat %s", ErrInvalid, r.Settings.Channel, r.Chat)
	}
	if r.Roles == nil {
		return fmt.Errorf("%w: nil roles table", ErrInvalid)
	}
	if r.Mode != FirstResponder && r.Mode != RoundRobin {
		return fmt.Errorf("%w: unknown mode %d", ErrInvalid, int(r.Mode))
	}
	if f := &r.Settings.Features; r.At.IsZero() && (len(f.Schedules) > 0 || f.Escalation.Enabled() || f.WhenNobody == QueueWhenNobody) {
		return fmt.Errorf("%w: zero event time for channel %q, whose schedules, escalation or queue read it", ErrInvalid, r.Chat.Channel)
	}
	return nil
}

// Limited reports whether the features set any capacity limit.
func (s *Features) Limited() bool { return s.capped() }

// HoldsClients reports whether the channel records which employee holds
// each client: with a capacity limit (the open counts) or a waiting queue
// (what Assign, Drain and Escalate agree on). Then a client who reaches
// an employee other than through the distribution must be recorded with
// [Distributor.Hold].
func (s *Features) HoldsClients() bool { return s.capped() || s.WhenNobody == QueueWhenNobody }

// Assign distributes a new client's chat under its channel's settings at
// the event's time, as [Distributor.Distribute] does and with every
// per-channel feature:
//
//   - Schedules: employees off shift, on a day off or on leave at r.At
//     are skipped ([SkipOffShift], [SkipDayOff], [SkipOnLeave]).
//   - Capacity: employees holding as many open clients as their limit
//     are skipped ([SkipAtCapacity]). Round robin picks and counts the
//     client in one atomic store operation (the pick is keyed by the
//     chat, so a repeated Assign returns the same employee with
//     Why.Repeat, as long as they are still eligible; otherwise the hold
//     moves to a new pick); a first-responder offer goes to those with
//     room and counts toward their limits ([Features.Capacity]).
//     A channel with a queue keys its picks the same way, so that Assign
//     and [Distributor.Drain] agree on a client.
//   - Weights: round robin follows [SmoothWeighted].
//   - Nobody eligible: with [QueueWhenNobody] the client is queued
//     (Rule queue; a repeat keeps its place), else offered to everyone
//     who may write, as Distribute does. With a queue, a client arriving
//     while others wait joins the queue behind them (Rule queue without
//     a Fallback), so that nobody overtakes: [Distributor.Drain] serves
//     the queue oldest first. A client arrives when its Assign starts: one
//     whose Assign began before another was queued (by another instance,
//     say) may still be assigned ahead of it.
//   - Escalation: when enabled, the clock starts at r.At for the picked
//     employee or the offered group ([Distributor.Escalate]).
//
// The zero settings give Distribute's decisions.
func (d *Distributor) Assign(ctx context.Context, r Request) (Decision, error) {
	if err := r.check(true); err != nil {
		return Decision{}, err
	}
	queueing := r.Settings.WhenNobody == QueueWhenNobody
	if queueing {
		// Others waiting: the client joins the queue behind them, so the
		// queue is served oldest first (by Drain), never overtaken.
		head, err := d.queue.Peek(ctx, r.Chat.Channel, 1)
		if err != nil {
			return Decision{}, err
		}
		if len(head) > 0 && head[0].Chat != r.Chat {
			return d.enqueue(ctx, &r, nil)
		}
	}
	dec, err := d.assign(ctx, &r, queueing)
	none, ok := errors.AsType[*NoEligibleError](err)
	if !ok {
		if err == nil {
			err = d.watch(ctx, &r, dec)
		}
		if err == nil && queueing {
			_, err = d.queue.Remove(ctx, r.Chat) // queued by an earlier call
		}
		return dec, err
	}
	if queueing {
		return d.enqueue(ctx, &r, none)
	}
	dec, err = d.OfferToWriters(ctx, r.Roles, r.Chat)
	if err != nil {
		return Decision{}, err
	}
	dec.Why.Fallback = none
	return dec, d.watch(ctx, &r, dec)
}

// enqueue puts the client in its channel's queue; none says why (nil:
// others were waiting).
func (d *Distributor) enqueue(ctx context.Context, r *Request, none *NoEligibleError) (Decision, error) {
	e, created, err := d.queue.Enqueue(ctx, r.Chat, r.At)
	if err != nil {
		return Decision{}, err
	}
	return queued(r, e, created, none), nil
}

// queued is the decision for a client left waiting in the queue as e;
// none says why (nil: others were waiting ahead).
func queued(r *Request, e QueueEntry, created bool, none *NoEligibleError) Decision {
	why := Explanation{Rule: RuleQueue, Channel: r.Chat.Channel, Chat: r.Chat, Fallback: none, Queued: e.Since, Repeat: !created}
	if none != nil {
		why.Skipped = none.Skipped
	} else {
		why.Behind = true
	}
	return Decision{Why: why}
}

// watch starts the escalation clock for a decision that needs a reply.
func (d *Distributor) watch(ctx context.Context, r *Request, dec Decision) error {
	due, ok := r.Settings.Escalation.Deadline(r.At, 0)
	if !ok || (dec.User == "" && len(dec.Offered) == 0) {
		return nil
	}
	_, _, err := d.esc.Start(ctx, Watch{Chat: r.Chat, Since: r.At, Due: due})
	return err
}

// assign applies the mode with the channel's features; keyed makes a
// round-robin pick hold the chat even without a capacity limit.
func (d *Distributor) assign(ctx context.Context, r *Request, keyed bool) (Decision, error) {
	considered, eligible, skipped, err := d.candidatesAt(ctx, r.Roles, r.Chat.Channel, &r.Settings, r.At)
	if err != nil {
		return Decision{}, err
	}
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	rule := RuleRoundRobin
	if r.Mode == FirstResponder {
		rule = RuleFirstResponder
	}
	if len(eligible) == 0 {
		return Decision{}, &NoEligibleError{Rule: rule, Channel: r.Chat.Channel, Skipped: skipped}
	}
	if r.Mode == FirstResponder {
		if r.Settings.capped() {
			return d.offerWithin(ctx, r, rule, considered, eligible, skipped)
		}
		return d.offer(ctx, r.Chat, rule, considered, eligible, skipped)
	}
	return d.pick(ctx, r, considered, eligible, skipped, "", keyed)
}

// offerKey is the hold key of chat's offer to user in the channel's
// pool; the unit separators keep it apart from every chat's own key.
func offerKey(chatID string, user crm.UserID) string {
	return "offer\x1f" + string(user) + "\x1f" + chatID
}

// capChooser admits the one member of a pick while they hold fewer than
// lim clients and offers (0: no limit).
func capChooser(lim int) Chooser {
	return func(p PoolState) Choice {
		if lim > 0 && p.Members[0].Open >= lim {
			return Choice{Index: -1}
		}
		return Choice{Index: 0}
	}
}

// holdOffers counts chat's offer to each of users who has room below
// their limit (see [Features.Capacity]), each in one atomic store
// operation, and returns who got it and who was at capacity. An offer
// counted already (a repeat) stays counted. Employees without a limit
// take no hold.
func (d *Distributor) holdOffers(ctx context.Context, f *Features, chat channel.Chat, users []crm.UserID) (held []crm.UserID, full []Skip, err error) {
	for _, u := range users {
		lim := f.limit(u)
		if lim <= 0 {
			held = append(held, u)
			continue
		}
		_, err := d.rotation.Pick(ctx, string(chat.Channel), offerKey(chat.ChatID, u), []crm.UserID{u}, capChooser(lim))
		switch {
		case err == nil:
			held = append(held, u)
		case errors.Is(err, ErrNoEligible) && ctx.Err() == nil:
			full = append(full, Skip{u, SkipAtCapacity})
		default:
			return held, full, err
		}
	}
	return held, full, nil
}

// freeUnoffered ends the offer holds of chat for those of users its
// recorded offer does not name (as read now; unreadable: none freed).
func (d *Distributor) freeUnoffered(ctx context.Context, chat channel.Chat, users []crm.UserID) error {
	st, found, err := d.claims.Get(ctx, chat)
	if err != nil {
		return err
	}
	var out []crm.UserID
	for _, u := range users {
		if !found || !st.OfferedTo(u) {
			out = append(out, u)
		}
	}
	return d.freeOffers(ctx, chat, out)
}

// freeOffers ends the offer holds of chat for users (none held: no
// change).
func (d *Distributor) freeOffers(ctx context.Context, chat channel.Chat, users []crm.UserID) error {
	for _, u := range users {
		if _, _, err := d.rotation.Free(ctx, string(chat.Channel), offerKey(chat.ChatID, u)); err != nil {
			return err
		}
	}
	return nil
}

// offerWithin offers a chat on a channel with a capacity limit: to the
// eligible who have room, each counted first (see [Features.Capacity]).
// A chat offered already keeps its offer (first wins), and holds taken
// for employees left out of the recorded group are freed.
func (d *Distributor) offerWithin(ctx context.Context, r *Request, rule Rule, considered, eligible []crm.UserID, skipped []Skip) (Decision, error) {
	chat := r.Chat
	st, found, err := d.claims.Get(ctx, chat)
	if err != nil {
		return Decision{}, err
	}
	if found {
		return Decision{Offered: st.Offered, Why: Explanation{
			Rule: rule, Channel: chat.Channel, Chat: chat,
			Considered: considered, Eligible: st.Offered, Skipped: skipped, Repeat: true,
		}}, nil
	}
	held, full, err := d.holdOffers(ctx, &r.Settings.Features, chat, eligible)
	if err != nil {
		return Decision{}, err
	}
	if len(full) > 0 {
		skipped = append(slices.Clone(skipped), full...)
		sortSkips(skipped)
	}
	if len(held) == 0 {
		return Decision{}, &NoEligibleError{Rule: rule, Channel: chat.Channel, Skipped: skipped}
	}
	st, created, err := d.claims.Offer(ctx, chat, held)
	if err != nil {
		return Decision{}, err
	}
	if !created {
		var out []crm.UserID
		for _, u := range held {
			if !st.OfferedTo(u) {
				out = append(out, u)
			}
		}
		if err := d.freeOffers(ctx, chat, out); err != nil {
			return Decision{}, err
		}
	}
	return Decision{Offered: st.Offered, Why: Explanation{
		Rule: rule, Channel: chat.Channel, Chat: chat,
		Considered: considered, Eligible: held, Skipped: skipped, Repeat: !created,
	}}, nil
}

// pick makes the round-robin pick among eligible minus exclude.
func (d *Distributor) pick(ctx context.Context, r *Request, considered, eligible []crm.UserID, skipped []Skip, exclude crm.UserID, keyed bool) (Decision, error) {
	s := &r.Settings
	if exclude != "" {
		if i := slices.Index(eligible, exclude); i >= 0 {
			eligible = slices.Delete(slices.Clone(eligible), i, i+1)
			skipped = append(slices.Clone(skipped), Skip{exclude, SkipNoReply})
			sortSkips(skipped)
		}
	}
	if len(eligible) == 0 {
		return Decision{}, &NoEligibleError{Rule: RuleRoundRobin, Channel: r.Chat.Channel, Skipped: skipped}
	}
	var fc *featureChooser // its full marks who was at capacity at the last chooser call
	var full []bool
	choose := LeastRecentlyServed
	if s.capped() || len(s.Weights) > 0 {
		fc = &featureChooser{f: s.Features}
		fc.full = fc.buf[:0]
		choose = fc.choose
	}
	key := ""
	if keyed || s.capped() {
		key = r.Chat.ChatID
	}
	var turn Turn
	var err error
	if key != "" {
		// A client held by someone no longer eligible (left, away,
		// escalated from) moves with the new pick, in one step.
		turn, err = d.rotation.Reassign(ctx, string(r.Chat.Channel), key, eligible, choose)
	} else {
		turn, err = d.rotation.Pick(ctx, string(r.Chat.Channel), key, eligible, choose)
	}
	if fc != nil {
		full = fc.full
	}
	atCap := func() ([]crm.UserID, []Skip) {
		if len(full) != len(eligible) || !slices.Contains(full, true) {
			return eligible, skipped
		}
		var el []crm.UserID
		sk := slices.Clone(skipped)
		for i, u := range eligible {
			if full[i] {
				sk = append(sk, Skip{u, SkipAtCapacity})
			} else {
				el = append(el, u)
			}
		}
		sortSkips(sk)
		return el, sk
	}
	if errors.Is(err, ErrNoEligible) && ctx.Err() == nil {
		_, sk := atCap()
		return Decision{}, &NoEligibleError{Rule: RuleRoundRobin, Channel: r.Chat.Channel, Skipped: sk}
	}
	if err != nil {
		return Decision{}, err
	}
	why := Explanation{
		Rule: RuleRoundRobin, Channel: r.Chat.Channel, Chat: r.Chat,
		Considered: considered, Position: turn.Seq, LastServed: turn.Previous, Repeat: turn.Repeat,
	}
	why.Eligible, why.Skipped = atCap()
	if lim := s.limit(turn.User); lim > 0 {
		why.Open, why.Capacity = turn.Open, lim
	}
	if len(s.Weights) > 0 {
		why.Weight = s.weight(turn.User)
	}
	return Decision{User: turn.User, Why: why}, nil
}

// featureChooser composes capacity and weights around the fairness rule;
// full records, by index, who was at capacity at the last call. credits
// holds a weighted answer's credits for small pools (the store reads them
// before the pick returns).
type featureChooser struct {
	f       Features
	full    []bool
	buf     [16]bool
	credits [16]int64
}

func (c *featureChooser) choose(p PoolState) Choice {
	c.full = c.full[:0]
	for _, m := range p.Members {
		lim := c.f.limit(m.User)
		c.full = append(c.full, lim > 0 && m.Open >= lim)
	}
	if len(c.f.Weights) > 0 {
		return smoothWeighted(p, c.f.weight, c.full, c.credits[:])
	}
	best := -1
	for i := range p.Members {
		if !c.full[i] && (best < 0 || lessRecentlyServed(p.Members[i], p.Members[best])) {
			best = i
		}
	}
	return Choice{Index: best}
}

func sortSkips(ss []Skip) {
	slices.SortStableFunc(ss, func(a, b Skip) int {
		switch {
		case a.User < b.User:
			return -1
		case a.User > b.User:
			return 1
		}
		return 0
	})
}

// Hold counts chat as an open client of user on its channel, for the
// capacity limit: call it when a client reaches an employee other than
// through Assign, Drain, Escalate or ClaimWithin (a deal handed over in
// the CRM, an owner's returning client) on a channel whose settings
// [Features.HoldsClients]. A chat held by someone else moves to user.
//
// "Open" means: a client whose deal is open in the CRM, counted from the
// pick or claim that gave it to the employee until [Distributor.Free],
// which the engine calls when it learns that the deal closed or that the
// CRM's responsible changed (then it holds the chat for the new one).
func (d *Distributor) Hold(ctx context.Context, chat channel.Chat, user crm.UserID) error {
	if err := checkChat(chat); err != nil {
		return err
	}
	_, err := d.rotation.Hold(ctx, string(chat.Channel), chat.ChatID, user)
	return err
}

// ErrAtCapacity: an employee at their capacity limit tried to take one
// more client. Matched by [*AtCapacityError].
var ErrAtCapacity = errors.New("routing: employee at capacity")

// AtCapacityError refuses a claim by an employee who holds as many open
// clients on the channel as their limit. It matches ErrAtCapacity.
type AtCapacityError struct {
	// Chat is the chat claimed; it stays offered to the others.
	Chat channel.Chat
	// User is the claimant refused.
	User crm.UserID
	// Limit is User's capacity on the channel ([Features.CapacityOf], else
	// [Features.Capacity]), always above 0, which their open clients and
	// unclaimed offers there have reached.
	Limit int
}

// Error implements the error interface.
func (e *AtCapacityError) Error() string {
	return fmt.Sprintf("routing: %s holds %d open clients on channel %s, the limit: chat %s stays offered", e.User, e.Limit, e.Chat.Channel, e.Chat.ChatID)
}

// Is reports whether target is ErrAtCapacity.
func (e *AtCapacityError) Is(target error) bool { return target == ErrAtCapacity }

// ClaimWithin is [Distributor.Claim] on a channel with features: when f
// limits capacity, the claim also counts the chat as the claimer's open
// client in place of the offer ([Features.Capacity]), and a claimer at
// their limit is refused with an [*AtCapacityError] (the chat stays
// offered to the others). The count comes first, in one atomic store
// operation keyed by the chat, so among concurrent claimants the one
// whose count was recorded wins and the others get a [*ClaimedError];
// with no limit it is Claim. All claims of a limited channel must go
// through ClaimWithin.
func (d *Distributor) ClaimWithin(ctx context.Context, f Features, chat channel.Chat, user crm.UserID) (Decision, error) {
	if !f.capped() {
		return d.Claim(ctx, chat, user)
	}
	if err := checkChat(chat); err != nil {
		return Decision{}, err
	}
	st, found, err := d.claims.Get(ctx, chat)
	switch {
	case err != nil:
		return Decision{}, err
	case !found || st.Claimed() || !st.OfferedTo(user):
		return d.Claim(ctx, chat, user) // the store's answer: no offer, the winner, not offered
	}
	lim := f.limit(user)
	pool := string(chat.Channel)
	turn, err := d.rotation.Pick(ctx, pool, chat.ChatID, []crm.UserID{user}, capChooser(lim))
	if errors.Is(err, ErrNoEligible) && ctx.Err() == nil {
		// At the limit, perhaps by this very offer: the claim turns the
		// offer into the client, so the claimer's own offer hold makes
		// room. A pick whose chooser admits nobody records nothing and
		// tells whether the key is held. The client is counted before
		// the offer stops counting, so for that instant the store counts
		// the chat twice (never a client or offer more than the limit).
		held, herr := d.rotation.Pick(ctx, pool, offerKey(chat.ChatID, user), []crm.UserID{user}, func(PoolState) Choice { return Choice{Index: -1} })
		switch {
		case herr == nil && held.Repeat && held.User == user:
			turn, err = d.rotation.Pick(ctx, pool, chat.ChatID, []crm.UserID{user}, capChooser(lim+1))
		case herr != nil && !errors.Is(herr, ErrNoEligible):
			return Decision{}, herr
		}
	}
	switch {
	case errors.Is(err, ErrNoEligible) && ctx.Err() == nil:
		return Decision{}, &AtCapacityError{Chat: chat, User: user, Limit: lim}
	case err != nil:
		return Decision{}, err
	case turn.Repeat && turn.User != user:
		return Decision{}, &ClaimedError{Chat: chat, Winner: turn.User}
	}
	dec, err := d.Claim(ctx, chat, user)
	if err != nil && !turn.Repeat {
		if _, _, ferr := d.rotation.Free(ctx, string(chat.Channel), chat.ChatID); ferr != nil {
			return Decision{}, errors.Join(err, ferr)
		}
	}
	if err == nil {
		// Claimed: the offer stops counting for everyone offered, the
		// claimer first.
		others := slices.DeleteFunc(slices.Clone(dec.Offered), func(u crm.UserID) bool { return u == user })
		err = d.freeOffers(ctx, chat, append([]crm.UserID{user}, others...))
	}
	return dec, err
}

// Free ends the hold of chat (its deal closed or was reassigned) and
// returns who held it; freeing twice is harmless (ok false).
func (d *Distributor) Free(ctx context.Context, chat channel.Chat) (holder crm.UserID, ok bool, err error) {
	if err := checkChat(chat); err != nil {
		return "", false, err
	}
	return d.rotation.Free(ctx, string(chat.Channel), chat.ChatID)
}

// Drain assigns the oldest queued clients of r.Chat.Channel as long as
// someone is eligible, up to limit of them, and returns the decisions in
// queue order (each with Why.Queued). Call it when someone may have
// become eligible: a shift starts, a hold is freed, a switch turns on, or
// on a timer. Each client is served as by [Distributor.Serve], so
// concurrent Drains on several instances and a Drain interrupted midway
// assign each client once, and an apply that fails leaves the client
// queued (apply must be idempotent). Drain stops at the first error.
//
// Drain serializes nothing per chat: a caller whose other events on a
// chat must not interleave with its assignment (a deal closing, which
// calls Forget) takes its per-chat lock and calls Serve for each entry of
// [Distributor.Queued] itself, as the engine's Tick does.
func (d *Distributor) Drain(ctx context.Context, r Request, limit int, apply func(context.Context, Decision) error) ([]Decision, error) {
	if err := r.check(false); err != nil {
		return nil, err
	}
	entries, err := d.queue.Peek(ctx, r.Chat.Channel, limit)
	if err != nil {
		return nil, err
	}
	var out []Decision
	for _, e := range entries {
		q := r
		q.Chat = e.Chat
		dec, ok, err := d.Serve(ctx, q, apply)
		if errors.Is(err, ErrNoEligible) {
			break
		}
		if err != nil {
			return out, err
		}
		if ok {
			out = append(out, dec)
		}
	}
	return out, nil
}

// Serve assigns r.Chat if it is still waiting in its channel's queue: the
// assignment is keyed by the chat (round robin holds it; an offer is
// first-wins), then apply (if not nil) acts on it — makes the pick
// responsible in the CRM, notifies — then the escalation clock starts and
// only then is the entry removed. The decision has Why.Queued set. ok is
// false, and nothing is done, when the chat is not queued (served
// already, or forgotten: [Distributor.Forget]). An error from apply is
// returned with the client still queued and its assignment recorded, so
// a later Serve makes the same one again. Nobody eligible: an error
// matching ErrNoEligible ([*NoEligibleError]), and the client stays
// queued.
//
// Serve does not check that older clients are served first; Drain and
// the engine's Tick call it in queue order. Called under the chat's lock
// (the engine's lease), a client whose deal closed meanwhile is never
// assigned: Forget, under the same lock, took it out of the queue.
func (d *Distributor) Serve(ctx context.Context, r Request, apply func(context.Context, Decision) error) (Decision, bool, error) {
	if err := r.check(true); err != nil {
		return Decision{}, false, err
	}
	e, queued, err := d.queue.Entry(ctx, r.Chat)
	if err != nil || !queued {
		return Decision{}, false, err
	}
	dec, err := d.assign(ctx, &r, true)
	if err != nil {
		return Decision{}, false, err
	}
	dec.Why.Queued = e.Since
	if apply != nil {
		if err := apply(ctx, dec); err != nil {
			return dec, false, err
		}
	}
	if err := d.watch(ctx, &r, dec); err != nil {
		return dec, false, err
	}
	if _, err := d.queue.Remove(ctx, r.Chat); err != nil {
		return dec, false, err
	}
	return dec, true, nil
}

// Queued returns up to limit clients waiting in ch's queue, oldest
// first.
func (d *Distributor) Queued(ctx context.Context, ch channel.ID, limit int) ([]QueueEntry, error) {
	return d.queue.Peek(ctx, ch, limit)
}

// Unqueue takes chat out of its channel's queue (the client was served
// another way); ok is false when it was not queued.
func (d *Distributor) Unqueue(ctx context.Context, chat channel.Chat) (ok bool, err error) {
	return d.queue.Remove(ctx, chat)
}

// DueEscalations returns up to limit watches whose escalation is due at
// now, earliest first: the host's timer (or the engine's Tick) passes
// each to [Distributor.Escalate] with its channel's Request.
func (d *Distributor) DueEscalations(ctx context.Context, now time.Time, limit int) ([]Watch, error) {
	return d.esc.DueBy(ctx, now, limit)
}

// Replied stops the escalation clock of chat: someone answered.
func (d *Distributor) Replied(ctx context.Context, chat channel.Chat) error {
	return d.esc.Stop(ctx, chat)
}

// Escalate processes one due watch at r.At (the host's "now"), with
// current the client's responsible employee (round robin; empty for an
// unclaimed offer). It first advances the watch in one compare-and-swap,
// so among instances and redeliveries processing the same deadline
// exactly one goes on; the others get ok false and do nothing. ok is
// also false when nothing is due at r.At, and when the channel's policy
// no longer escalates the watch (turned off, or Times lowered below the
// escalations done): then the watch is stopped.
//
// Round robin: the client passes to the next employee in rotation, with
// current skipped ([SkipNoReply]); the caller makes them responsible in
// the CRM. When capacity is limited the hold moves with the client. If
// nobody else is eligible, the decision names current again with
// Why.Fallback set. First responder: an unclaimed offer widens to
// everyone who may write on the channel and is available at r.At
// (supervisors, and managers whatever their "receives new clients"
// switch), through [ClaimStore.Widen], except those at their capacity
// limit ([Features.Capacity]); Why.Repeat says nobody was added.
// A claimed offer stops being watched (ok false).
func (d *Distributor) Escalate(ctx context.Context, r Request, w Watch, current crm.UserID) (dec Decision, ok bool, err error) {
	r.Chat = w.Chat
	if err := r.check(true); err != nil {
		return Decision{}, false, err
	}
	pol := r.Settings.Escalation
	if !pol.Enabled() || w.Done >= pol.times() {
		// The policy was turned off or its Times lowered since the clock
		// started: the watch can never fire, and left in place it would
		// fill DueEscalations' batches ahead of watches that can. It is
		// ended by a compare-and-swap, so a stale copy cannot end a clock
		// started again since.
		if err := d.esc.Advance(ctx, w, time.Time{}); err != nil && !errors.Is(err, ErrStaleWatch) {
			return Decision{}, false, err
		}
		return Decision{}, false, nil
	}
	if w.Due.IsZero() || r.At.Before(w.Due) {
		return Decision{}, false, nil
	}
	next, more := pol.Deadline(r.At, w.Done+1) // the clock restarts now
	if !more {
		next = time.Time{}
	}
	if err := d.esc.Advance(ctx, w, next); errors.Is(err, ErrStaleWatch) {
		return Decision{}, false, nil
	} else if err != nil {
		return Decision{}, false, err
	}
	n := w.Done + 1
	if r.Mode == FirstResponder {
		st, found, err := d.claims.Get(ctx, w.Chat)
		if err != nil {
			return Decision{}, false, err
		}
		if !found || st.Claimed() {
			return Decision{}, false, d.esc.Stop(ctx, w.Chat)
		}
		considered := r.Roles.Users(w.Chat.Channel)
		var writers []crm.UserID
		var skipped []Skip
		for _, u := range considered {
			if !r.Roles.Role(u, w.Chat.Channel).MayWrite() {
				skipped = append(skipped, Skip{u, SkipCannotWrite})
				continue
			}
			ok, why, err := d.availableAt(ctx, w.Chat.Channel, &r.Settings, u, r.At)
			if err != nil {
				return Decision{}, false, err
			}
			if ok {
				writers = append(writers, u)
			} else {
				skipped = append(skipped, Skip{u, why})
			}
		}
		var held []crm.UserID
		if r.Settings.capped() {
			// Those added are counted first, within their limits.
			var add []crm.UserID
			for _, u := range writers {
				if !st.OfferedTo(u) {
					add = append(add, u)
				}
			}
			var full []Skip
			held, full, err = d.holdOffers(ctx, &r.Settings.Features, w.Chat, add)
			if err != nil {
				return Decision{}, false, err
			}
			if len(full) > 0 {
				writers = slices.DeleteFunc(writers, func(u crm.UserID) bool {
					return !st.OfferedTo(u) && !slices.Contains(held, u)
				})
				skipped = append(skipped, full...)
				sortSkips(skipped)
			}
		}
		before := len(st.Offered)
		st, err = d.claims.Widen(ctx, w.Chat, writers)
		if err != nil {
			// The deadline is spent: places counted for employees the
			// offer does not name would never be given back. The offer is
			// read again, since a widening whose answer was lost may have
			// been recorded.
			if ferr := d.freeUnoffered(context.WithoutCancel(ctx), w.Chat, held); ferr != nil {
				err = errors.Join(err, ferr)
			}
			return Decision{}, false, err
		}
		if st.Claimed() && r.Settings.capped() {
			// Claimed meanwhile: the offer counts for nobody, not even
			// those just counted for the widening.
			if err := d.freeOffers(ctx, w.Chat, append(slices.Clone(st.Offered), held...)); err != nil {
				return Decision{}, false, err
			}
		}
		return Decision{User: st.ClaimedBy, Offered: st.Offered, Why: Explanation{
			Rule: RuleEscalation, Channel: w.Chat.Channel, Chat: w.Chat,
			Considered: considered, Eligible: writers, Skipped: skipped,
			Escalation: n, Repeat: len(st.Offered) == before,
		}}, true, nil
	}
	considered, eligible, skipped, err := d.candidatesAt(ctx, r.Roles, w.Chat.Channel, &r.Settings, r.At)
	if err != nil {
		return Decision{}, false, err
	}
	// A channel that holds its clients (capacity, queue) moves the hold
	// from current to the pick in one step: nobody else eligible, it
	// stays with current.
	dec, err = d.pick(ctx, &r, considered, eligible, skipped, current, r.Settings.WhenNobody == QueueWhenNobody)
	if none, ok := errors.AsType[*NoEligibleError](err); ok {
		return Decision{User: current, Why: Explanation{
			Rule: RuleEscalation, Channel: w.Chat.Channel, Chat: w.Chat, Considered: considered,
			Skipped: none.Skipped, Fallback: none, Escalation: n, From: current,
		}}, true, nil
	}
	if err != nil {
		return Decision{}, false, err
	}
	dec.Why.Rule, dec.Why.Escalation, dec.Why.From = RuleEscalation, n, current
	return dec, true, nil
}

// Owner decides who handles a client whose responsible employee is owner
// (an open deal, or a returning client notified under
// [NotifyResponsible]), at r.At. An available owner (their schedule on
// the channel and the availability hook) keeps the client (Rule owner).
// An unavailable one is handled by r.Settings.OwnerOffShift:
//
//   - [KeepOwner]: the owner keeps the client (Rule owner, Why.Away says
//     why they are away).
//   - [CoverOwner]: the channel's eligible employees (as for a new
//     client, owner excluded) are notified and may write; the decision's
//     User stays owner, who remains responsible (Rule cover, Offered the
//     covering group). Nobody to cover: as KeepOwner, with Why.Fallback.
//   - [ReassignOwner]: the channel's distribution applies as for a new
//     client ([Distributor.Assign], without a queue or an escalation
//     clock of its own): a round-robin pick becomes responsible, or the
//     chat is offered. Nobody eligible: as KeepOwner, with Why.Fallback.
//
// Owner records nothing except what a reassignment records.
func (d *Distributor) Owner(ctx context.Context, r Request, owner crm.UserID) (Decision, error) {
	if err := r.check(true); err != nil {
		return Decision{}, err
	}
	if owner == "" {
		return Decision{}, fmt.Errorf("%w: empty owner for chat %s", ErrInvalid, r.Chat)
	}
	ok, away, err := d.availableAt(ctx, r.Chat.Channel, &r.Settings, owner, r.At)
	if err != nil {
		return Decision{}, err
	}
	keep := Decision{User: owner, Why: Explanation{Rule: RuleOwner, Channel: r.Chat.Channel, Chat: r.Chat, Owner: owner, Away: away}}
	if ok || r.Settings.OwnerOffShift == KeepOwner {
		return keep, nil
	}
	switch r.Settings.OwnerOffShift {
	case CoverOwner:
		considered, eligible, skipped, err := d.candidatesAt(ctx, r.Roles, r.Chat.Channel, &r.Settings, r.At)
		if err != nil {
			return Decision{}, err
		}
		if i := slices.Index(eligible, owner); i >= 0 { // the hook and schedule said away; a stale table might not
			eligible = slices.Delete(eligible, i, i+1)
		}
		if len(eligible) == 0 {
			keep.Why.Fallback = &NoEligibleError{Rule: RuleCover, Channel: r.Chat.Channel, Skipped: skipped}
			return keep, nil
		}
		return Decision{User: owner, Offered: eligible, Why: Explanation{
			Rule: RuleCover, Channel: r.Chat.Channel, Chat: r.Chat,
			Considered: considered, Eligible: eligible, Skipped: skipped, Owner: owner, Away: away,
		}}, nil
	case ReassignOwner:
		q := r
		q.Settings.Escalation, q.Settings.WhenNobody = Escalation{}, OfferWhenNobody
		dec, err := d.assign(ctx, &q, false)
		if none, ok := errors.AsType[*NoEligibleError](err); ok {
			keep.Why.Fallback = none
			return keep, nil
		}
		if err != nil {
			return Decision{}, err
		}
		dec.Why.Owner, dec.Why.Away = owner, away
		return dec, nil
	}
	return Decision{}, fmt.Errorf("%w: unknown owner policy %d", ErrInvalid, int(r.Settings.OwnerOffShift))
}
