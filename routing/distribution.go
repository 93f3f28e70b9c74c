package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
)

// ErrNoEligible: nobody is eligible for a distribution rule. Matched by
// [*NoEligibleError], which lists who was skipped and why.
var ErrNoEligible = errors.New("routing: nobody eligible")

// NoEligibleError says that rule found nobody eligible on the channel. The
// engine acts on it by offering the chat to every writer
// ([Distributor.OfferToWriters]); [Distributor.Distribute] does so itself.
// It matches ErrNoEligible.
type NoEligibleError struct {
	// Rule is the rule that found nobody: round robin, first responder,
	// offer to writers or cover.
	Rule Rule
	// Channel is the channel the rule ran on.
	Channel channel.ID
	// Skipped are the employees with a role on the channel, each with why
	// they were left out, sorted by user ID; empty when nobody has a role
	// there.
	Skipped []Skip
}

// Error implements the error interface.
func (e *NoEligibleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "routing: nobody eligible for %s on channel %q", e.Rule, e.Channel)
	if len(e.Skipped) == 0 {
		b.WriteString(": nobody has a role there")
	}
	writeSkips(&b, ": ", e.Skipped)
	return b.String()
}

// Is reports whether target is ErrNoEligible.
func (e *NoEligibleError) Is(target error) bool { return target == ErrNoEligible }

// Rule names the distribution rule that made a decision.
type Rule string

// Rules. The engine may define more of its own.
const (
	RuleFirstResponder Rule = "first_responder"  // offered to the available receivers
	RuleRoundRobin     Rule = "round_robin"      // one receiver, least recently served
	RuleOfferToWriters Rule = "offer_to_writers" // fallback: offered to everyone who may write
	RuleClaim          Rule = "claim"            // the first reply claimed an offered chat
	RuleQueue          Rule = "queue"            // nobody eligible: the client waits in the channel's queue
	RuleEscalation     Rule = "escalation"       // nobody replied in time: passed on, or the offer widened
	RuleOwner          Rule = "owner"            // the client's responsible keeps the client
	RuleCover          Rule = "cover"            // the responsible is away: eligible colleagues cover
)

// SkipReason says why an employee with a role on the channel was not a
// candidate.
type SkipReason string

// Skip reasons.
const (
	SkipCannotWrite  SkipReason = "role cannot write"            // quality control
	SkipNotReceiving SkipReason = "does not receive new clients" // switch off
	SkipUnavailable  SkipReason = "unavailable"                  // the availability hook said no (off shift)
	SkipAtCapacity   SkipReason = "at capacity"                  // holds as many open clients as the channel allows
	SkipOffShift     SkipReason = "off shift"                    // outside the schedule's working hours
	SkipDayOff       SkipReason = "day off"                      // a day off in the schedule
	SkipOnLeave      SkipReason = "on leave"                     // a leave period in the schedule
	SkipNoReply      SkipReason = "did not reply in time"        // the escalated employee
)

// Skip is an employee left out of a decision, and why.
type Skip struct {
	// User is the employee left out.
	User crm.UserID
	// Reason is why: one of the Skip reasons above, never empty.
	Reason SkipReason
}

// Explanation says how a decision was reached.
type Explanation struct {
	// Rule is the rule that made the decision; when it replaces a rule
	// that found nobody, that one is Fallback.Rule.
	Rule Rule
	// Channel is the channel the decision is about; always set.
	Channel channel.ID
	// Chat is set for offers and claims.
	Chat channel.Chat
	// Considered is everyone with a role on the channel (sorted by ID); for
	// a claim, the offered group.
	Considered []crm.UserID
	// Eligible are the employees the rule chose among (round robin) or
	// offered the chat to (offers), sorted by ID.
	Eligible []crm.UserID
	// Skipped are the considered employees left out, with the reason.
	Skipped []Skip
	// Position is the round-robin pick's number in the channel's rotation
	// (1 for the first ever), and LastServed the chosen employee's previous
	// position (0: never served). Zero for other rules.
	Position, LastServed uint64
	// Fallback is set when this decision replaces a rule that found nobody
	// eligible (see [Distributor.Distribute]).
	Fallback *NoEligibleError
	// Repeat is true for an offer that was already recorded (a retry or a
	// concurrent duplicate), or a pick for a client already held: nobody
	// needs notifying again.
	Repeat bool
	// Open and Capacity are, for a pick on a channel with a capacity
	// limit, the chosen employee's open clients after the pick and their
	// limit.
	Open, Capacity int
	// Weight is the chosen employee's weight on a weighted channel.
	Weight int
	// Queued is set for a client put in the waiting queue (Rule queue)
	// and for one assigned from it: when it was queued.
	Queued time.Time
	// Behind is true when a client was queued because others were
	// already waiting on the channel, not because nobody was eligible
	// (then Fallback is nil); false for every other decision.
	Behind bool
	// Escalation is the escalation's number (1 for the first); 0 when the
	// decision is not an escalation.
	Escalation int
	// From is, for an escalation on a round-robin channel, the employee
	// who did not reply in time and whom the client passed on from (still
	// User when nobody else was eligible); empty otherwise.
	From crm.UserID
	// Owner is the client's responsible for an owner decision (Rule
	// owner or cover, or a reassignment of an unavailable owner); empty
	// otherwise.
	Owner crm.UserID
	// Away is why Owner is unavailable ([SkipOffShift], [SkipDayOff],
	// [SkipOnLeave] or [SkipUnavailable]); empty when Owner is available
	// or not set.
	Away SkipReason
}

// String renders the explanation on one line, for logs and operators.
func (e Explanation) String() string {
	var b strings.Builder
	b.WriteString(string(e.Rule))
	if e.Chat != (channel.Chat{}) {
		fmt.Fprintf(&b, " chat %s", e.Chat)
	} else {
		fmt.Fprintf(&b, " on channel %s", e.Channel)
	}
	if e.Position > 0 {
		fmt.Fprintf(&b, ": pick #%d", e.Position)
		if e.LastServed > 0 {
			fmt.Fprintf(&b, " (chosen last served at #%d)", e.LastServed)
		} else {
			b.WriteString(" (chosen never served before)")
		}
	}
	if e.Capacity > 0 {
		fmt.Fprintf(&b, "; open %d of %d", e.Open, e.Capacity)
	}
	if e.Weight > 0 {
		fmt.Fprintf(&b, "; weight %d", e.Weight)
	}
	if e.Escalation > 0 {
		fmt.Fprintf(&b, "; escalation #%d", e.Escalation)
		if e.From != "" {
			fmt.Fprintf(&b, " from %s", e.From)
		}
	}
	if e.Owner != "" {
		fmt.Fprintf(&b, "; owner %s", e.Owner)
		if e.Away != "" {
			fmt.Fprintf(&b, " (%s)", e.Away)
		}
	}
	if !e.Queued.IsZero() {
		fmt.Fprintf(&b, "; queued at %s", e.Queued.UTC().Format(time.RFC3339))
		if e.Behind {
			b.WriteString(" behind the clients already waiting")
		}
	}
	if e.Repeat {
		if e.Rule == RuleRoundRobin {
			b.WriteString(": already assigned")
		} else if e.Rule == RuleQueue {
			b.WriteString(": already queued")
		} else {
			b.WriteString(": already offered")
		}
	}
	writeUsers(&b, "; eligible ", e.Eligible)
	writeSkips(&b, "; skipped ", e.Skipped)
	if e.Fallback != nil {
		b.WriteString("; fallback: ")
		b.WriteString(strings.TrimPrefix(e.Fallback.Error(), "routing: "))
	}
	return b.String()
}

func writeUsers(b *strings.Builder, prefix string, us []crm.UserID) {
	for i, u := range us {
		if i == 0 {
			b.WriteString(prefix)
		} else {
			b.WriteString(", ")
		}
		b.WriteString(string(u))
	}
}

func writeSkips(b *strings.Builder, prefix string, ss []Skip) {
	for i, s := range ss {
		if i == 0 {
			b.WriteString(prefix)
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%s (%s)", s.User, s.Reason)
	}
}

// Decision is the outcome of a distribution rule, with its explanation.
type Decision struct {
	// User is the employee who gets the client: the round-robin pick, or
	// the winner of a claim. Empty for offers.
	User crm.UserID
	// Offered is the group an offer went to (to be notified when
	// Why.Repeat is false). Read-only.
	Offered []crm.UserID
	// Why says how the decision was reached; Why.Repeat tells whether
	// anyone needs notifying.
	Why Explanation
}

// String renders the decision and its explanation on one line.
func (d Decision) String() string {
	switch {
	case d.User != "":
		return fmt.Sprintf("to %s: %v", d.User, d.Why)
	case len(d.Offered) > 0:
		var b strings.Builder
		writeUsers(&b, "offered to ", d.Offered)
		return b.String() + ": " + d.Why.String()
	}
	return d.Why.String()
}

// Availability reports whether an employee can take a new client on the
// channel right now (on shift, not on leave). It must be safe for
// concurrent use and fast: it is called once per receiver per decision.
type Availability func(ctx context.Context, ch channel.ID, user crm.UserID) bool

// DistributorOptions configure a Distributor. The zero value is valid.
type DistributorOptions struct {
	// Claims records first-responder offers and claims. Nil: a
	// [MemoryClaims] private to the Distributor.
	Claims ClaimStore
	// Rotation records round-robin state. Nil: a [MemoryRotation] private
	// to the Distributor.
	Rotation RotationStore
	// Available marks employees who cannot take new clients now. Nil:
	// everyone is available. Schedules in the channel settings apply
	// too.
	Available Availability
	// Queue keeps the waiting queues ([QueueWhenNobody]). Nil: a
	// [MemoryQueue] private to the Distributor.
	Queue QueueStore
	// Escalations keeps the clients waiting for a reply ([Escalation]).
	// Nil: a [MemoryEscalations] private to the Distributor.
	Escalations EscalationStore
}

// Distributor applies the distribution rules of a channel: round robin,
// first-responder offers and claims, and the fallback when nobody is
// eligible. It holds no state of its own beyond its stores, so several
// Distributors on the same stores (in one process or many) behave as one,
// and a new Distributor continues where the previous one stopped. It is
// safe for concurrent use.
//
// Round-robin guarantee ("equal shares"): for any two employees who were
// continuously eligible (a receiver on the channel, able to write,
// available, on shift by their schedule and below their capacity limit)
// throughout a period, the numbers of clients each got in that
// period differ by at most one — under concurrent arrivals and while other
// employees join, leave, switch "receives new clients" off or go off
// shift. It follows from least-recently-served order: between two picks of
// A, an eligible B was served less recently than A and so is picked first.
// A newcomer, or an employee back from leave, gets the next client and then
// waits a full cycle: never a burst, unlike a lifetime counter.
type Distributor struct {
	claims    ClaimStore
	rotation  RotationStore
	available Availability
	queue     QueueStore
	esc       EscalationStore
	zones     zones
}

// NewDistributor returns a Distributor using opts.
func NewDistributor(opts DistributorOptions) *Distributor {
	d := &Distributor{claims: opts.Claims, rotation: opts.Rotation, available: opts.Available}
	if d.claims == nil {
		d.claims = &MemoryClaims{}
	}
	if d.rotation == nil {
		d.rotation = &MemoryRotation{}
	}
	d.queue, d.esc = opts.Queue, opts.Escalations
	if d.queue == nil {
		d.queue = &MemoryQueue{}
	}
	if d.esc == nil {
		d.esc = &MemoryEscalations{}
	}
	return d
}

// candidates sorts everyone with a role on ch into eligible receivers and
// skips, in ID order.
func (d *Distributor) candidates(ctx context.Context, t *roles.Table, ch channel.ID) (considered, eligible []crm.UserID, skipped []Skip) {
	considered, eligible, skipped, _ = d.candidatesAt(ctx, t, ch, nil, time.Time{})
	return considered, eligible, skipped
}

// candidatesAt is candidates with the channel's schedules (s may be nil)
// read at the time at.
func (d *Distributor) candidatesAt(ctx context.Context, t *roles.Table, ch channel.ID, s *ChannelSettings, at time.Time) (considered, eligible []crm.UserID, skipped []Skip, err error) {
	considered = t.Users(ch)
	eligible = make([]crm.UserID, 0, len(considered))
	for a := range t.Members(ch) { // same order as considered
		u := a.User
		switch {
		case !a.Role.MayWrite():
			skipped = append(skipped, Skip{u, SkipCannotWrite})
		case !a.ReceivesNewClients:
			skipped = append(skipped, Skip{u, SkipNotReceiving})
		default:
			ok, why, err := d.availableAt(ctx, ch, s, u, at)
			if err != nil {
				return nil, nil, nil, err
			}
			if ok {
				eligible = append(eligible, u)
			} else {
				skipped = append(skipped, Skip{u, why})
			}
		}
	}
	return considered, eligible, skipped, nil
}

// availableAt applies u's schedule on the channel (if any) at the time at,
// then the host's hook.
func (d *Distributor) availableAt(ctx context.Context, ch channel.ID, s *ChannelSettings, u crm.UserID, at time.Time) (bool, SkipReason, error) {
	if s != nil {
		if sc, ok := s.Schedules[u]; ok {
			loc, err := d.zones.load(sc.TimeZone)
			if err != nil {
				return false, "", err
			}
			if ok, why := sc.availableIn(loc, at); !ok {
				return false, why, nil
			}
		}
	}
	if d.available != nil && !d.available(ctx, ch, u) {
		return false, SkipUnavailable, nil
	}
	return true, "", nil
}

// RoundRobin gives a new client on ch to one employee: among those who
// receive new clients there and are available, the one served least
// recently on this channel (ties: smaller ID). The pick is recorded in the
// rotation store (pool: the channel ID). Nobody eligible: a
// [*NoEligibleError].
//
// RoundRobin is not keyed by chat: every call takes a turn. Call it once
// per new client, behind the engine's idempotency for retried messages; a
// second call for the same client gives it to the next employee.
func (d *Distributor) RoundRobin(ctx context.Context, t *roles.Table, ch channel.ID) (Decision, error) {
	if ch == "" {
		return Decision{}, fmt.Errorf("%w: empty channel", ErrInvalid)
	}
	considered, eligible, skipped := d.candidates(ctx, t, ch)
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	if len(eligible) == 0 {
		return Decision{}, &NoEligibleError{Rule: RuleRoundRobin, Channel: ch, Skipped: skipped}
	}
	turn, err := d.rotation.Pick(ctx, string(ch), "", eligible, LeastRecentlyServed)
	if err != nil {
		return Decision{}, err
	}
	return Decision{User: turn.User, Why: Explanation{
		Rule: RuleRoundRobin, Channel: ch,
		Considered: considered, Eligible: eligible, Skipped: skipped,
		Position: turn.Seq, LastServed: turn.Previous,
	}}, nil
}

// Offer offers chat (first responder) to every employee who receives new
// clients on its channel and is available; the first reply claims it
// ([Distributor.Claim]). An existing offer for the chat is kept and
// returned with Why.Repeat set. Nobody eligible: a [*NoEligibleError].
func (d *Distributor) Offer(ctx context.Context, t *roles.Table, chat channel.Chat) (Decision, error) {
	if err := checkChat(chat); err != nil {
		return Decision{}, err
	}
	considered, eligible, skipped := d.candidates(ctx, t, chat.Channel)
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	if len(eligible) == 0 {
		return Decision{}, &NoEligibleError{Rule: RuleFirstResponder, Channel: chat.Channel, Skipped: skipped}
	}
	return d.offer(ctx, chat, RuleFirstResponder, considered, eligible, skipped)
}

// OfferToWriters offers chat to every employee who may write on its channel
// (managers and supervisors), whatever their "receives new clients" switch
// and availability: the fallback when a rule finds nobody eligible, so that
// nothing waits unseen. An existing offer is kept (Why.Repeat). Nobody may
// write on the channel: a [*NoEligibleError].
func (d *Distributor) OfferToWriters(ctx context.Context, t *roles.Table, chat channel.Chat) (Decision, error) {
	if err := checkChat(chat); err != nil {
		return Decision{}, err
	}
	considered := t.Users(chat.Channel)
	eligible := make([]crm.UserID, 0, len(considered))
	var skipped []Skip
	for _, u := range considered {
		if t.Role(u, chat.Channel).MayWrite() {
			eligible = append(eligible, u)
		} else {
			skipped = append(skipped, Skip{u, SkipCannotWrite})
		}
	}
	if len(eligible) == 0 {
		return Decision{}, &NoEligibleError{Rule: RuleOfferToWriters, Channel: chat.Channel, Skipped: skipped}
	}
	return d.offer(ctx, chat, RuleOfferToWriters, considered, eligible, skipped)
}

func (d *Distributor) offer(ctx context.Context, chat channel.Chat, rule Rule, considered, eligible []crm.UserID, skipped []Skip) (Decision, error) {
	st, created, err := d.claims.Offer(ctx, chat, eligible)
	if err != nil {
		return Decision{}, err
	}
	return Decision{Offered: st.Offered, Why: Explanation{
		Rule: rule, Channel: chat.Channel, Chat: chat,
		Considered: considered, Eligible: eligible, Skipped: skipped,
		Repeat: !created,
	}}, nil
}

// Distribute applies the channel's mode to a new client's chat:
// FirstResponder offers it (Offer), RoundRobin picks one employee
// (RoundRobin). When the rule finds nobody eligible, the chat is offered to
// everyone who may write (OfferToWriters) and Why.Fallback says why. The
// error is a [*NoEligibleError] only when nobody may write on the channel
// at all.
func (d *Distributor) Distribute(ctx context.Context, mode Mode, t *roles.Table, chat channel.Chat) (Decision, error) {
	var (
		dec Decision
		err error
	)
	switch mode {
	case FirstResponder:
		dec, err = d.Offer(ctx, t, chat)
	case RoundRobin:
		if err = checkChat(chat); err == nil {
			dec, err = d.RoundRobin(ctx, t, chat.Channel)
			dec.Why.Chat = chat
		}
	default:
		return Decision{}, fmt.Errorf("%w: unknown mode %d", ErrInvalid, int(mode))
	}
	none, ok := errors.AsType[*NoEligibleError](err)
	if !ok {
		return dec, err
	}
	dec, err = d.OfferToWriters(ctx, t, chat)
	if err != nil {
		return Decision{}, err
	}
	dec.Why.Fallback = none
	return dec, nil
}

// Claim makes user the winner of an offered chat: the claim primitive every
// path (a reply, an explicit "take") goes through. Exactly one of any
// number of concurrent claimants wins; the others get a [*ClaimedError]
// naming the winner (errors.Is ErrAlreadyClaimed). The winner claiming
// again succeeds. A user outside the offered group gets a
// [*NotOfferedError]. After Claim returns, the roles predicates given the
// new state hide the chat from the other managers.
func (d *Distributor) Claim(ctx context.Context, chat channel.Chat, user crm.UserID) (Decision, error) {
	st, err := d.claims.Claim(ctx, chat, user)
	if err != nil {
		return Decision{}, err
	}
	return Decision{User: st.ClaimedBy, Offered: st.Offered, Why: Explanation{
		Rule: RuleClaim, Channel: chat.Channel, Chat: chat, Considered: st.Offered,
	}}, nil
}

// ClaimState returns the chat's recorded offer and claim; found is false
// when there is none.
func (d *Distributor) ClaimState(ctx context.Context, chat channel.Chat) (st ClaimState, found bool, err error) {
	return d.claims.Get(ctx, chat)
}

// Release deletes the chat's offer and claim, so the CRM alone decides whose
// client it is and a later offer starts a new round. Call it once the CRM
// names the claimer as responsible, or to withdraw an offer. The offer
// stops counting toward the offered employees' capacity (see
// [Features.Capacity]).
func (d *Distributor) Release(ctx context.Context, chat channel.Chat) error {
	st, found, err := d.claims.Get(ctx, chat)
	if err != nil {
		return err
	}
	if found {
		// Only those holding anything may hold this offer: on a channel
		// without a limit nobody does, and nothing more is written.
		ms, err := d.rotation.Members(ctx, string(chat.Channel), st.Offered)
		if err != nil {
			return err
		}
		var holding []crm.UserID
		for _, m := range ms {
			if m.Open > 0 {
				holding = append(holding, m.User)
			}
		}
		if err := d.freeOffers(ctx, chat, holding); err != nil {
			return err
		}
	}
	return d.claims.Release(ctx, chat)
}

// Forget ends everything the distribution holds for chat's client: its
// offer (withdrawn, as by Release: it stops counting toward anyone's
// capacity), its claim record, its open-client hold, its escalation
// watch and its place in the queue. Call it when the client's deal is
// closed or deleted in the CRM, so that an abandoned offer or a finished
// client no longer takes a place under a capacity limit and nobody is
// escalated to or assigned for it. Each step is idempotent, so a Forget
// that fails midway is completed by calling it again; the caller
// serializes it with the chat's other events (the engine holds the
// chat's lease).
func (d *Distributor) Forget(ctx context.Context, chat channel.Chat) error {
	if err := checkChat(chat); err != nil {
		return err
	}
	if err := d.Release(ctx, chat); err != nil {
		return err
	}
	if _, _, err := d.rotation.Free(ctx, string(chat.Channel), chat.ChatID); err != nil {
		return err
	}
	if err := d.esc.Stop(ctx, chat); err != nil {
		return err
	}
	_, err := d.queue.Remove(ctx, chat)
	return err
}
