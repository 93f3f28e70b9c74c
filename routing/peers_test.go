package routing_test

// Shared helpers of the peer-ported tests (peers_chatwoot_test.go,
// peers_rocketchat_test.go): each of those tests sets up, with this
// package's API, the situation of one test case of Chatwoot's
// auto-assignment or Rocket.Chat's omnichannel routing, and asserts the
// peer's expected outcome, or our documented behaviour where it differs
// on purpose (the test's comment says how and why).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
)

// peerMonday is Monday 2 March 2026, 12:00 UTC.
var peerMonday = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// peerTeam is a roles table for channel ch: every user a manager who
// receives new clients there.
func peerTeam(t testing.TB, ch channel.ID, users ...crm.UserID) *roles.Table {
	t.Helper()
	as := make([]roles.Assignment, 0, len(users))
	for _, u := range users {
		as = append(as, roles.Assignment{User: u, Channel: ch, Role: roles.Manager, ReceivesNewClients: true})
	}
	tbl, err := roles.NewTable(as)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// peerPresence is the host's availability hook: the peers' online / busy /
// offline status (Chatwoot's OnlineStatusTracker, Rocket.Chat's
// statusLivechat). Users marked away are unavailable; everyone else is
// available.
type peerPresence struct {
	mu   sync.Mutex
	away map[crm.UserID]bool
}

func (p *peerPresence) set(u crm.UserID, away bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.away == nil {
		p.away = map[crm.UserID]bool{}
	}
	p.away[u] = away
}

// only marks everyone in all away except those in online.
func (p *peerPresence) only(all []crm.UserID, online ...crm.UserID) {
	for _, u := range all {
		p.set(u, !slices.Contains(online, u))
	}
}

func (p *peerPresence) hook(_ context.Context, _ channel.ID, u crm.UserID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.away[u]
}

// peerStores are one set of memory stores with a presence hook.
type peerStores struct {
	claims   routing.MemoryClaims
	rotation routing.MemoryRotation
	queue    routing.MemoryQueue
	esc      routing.MemoryEscalations
	presence peerPresence
}

func (s *peerStores) distributor() *routing.Distributor {
	return routing.NewDistributor(routing.DistributorOptions{
		Claims: &s.claims, Rotation: &s.rotation, Queue: &s.queue, Escalations: &s.esc, Available: s.presence.hook,
	})
}

func peerChat(ch channel.ID, i int) channel.Chat {
	return channel.Chat{Channel: ch, ChatID: fmt.Sprintf("visitor-%03d", i)}
}

// peerRoundRobin is Distributor.RoundRobin, failing the test on error.
func peerRoundRobin(t testing.TB, d *routing.Distributor, tbl *roles.Table, ch channel.ID) crm.UserID {
	t.Helper()
	dec, err := d.RoundRobin(context.Background(), tbl, ch)
	if err != nil {
		t.Fatalf("RoundRobin: %v", err)
	}
	return dec.User
}

// peerAssign is Distributor.Assign, failing the test on error.
func peerAssign(t testing.TB, d *routing.Distributor, r routing.Request) routing.Decision {
	t.Helper()
	dec, err := d.Assign(context.Background(), r)
	if err != nil {
		t.Fatalf("Assign %s: %v", r.Chat, err)
	}
	return dec
}

// peerHold counts n open clients of user on ch (chat IDs from prefix and
// user, so that holds of different users never share a chat), as clients
// handed over outside the distribution.
func peerHold(t testing.TB, d *routing.Distributor, ch channel.ID, user crm.UserID, prefix string, n int) []channel.Chat {
	t.Helper()
	var out []channel.Chat
	for i := range n {
		c := channel.Chat{Channel: ch, ChatID: fmt.Sprintf("%s-%s-%d", prefix, user, i)}
		if err := d.Hold(context.Background(), c, user); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// peerOpen returns the open counts of users on ch.
func peerOpen(t testing.TB, r routing.RotationStore, ch channel.ID, users ...crm.UserID) map[crm.UserID]int {
	t.Helper()
	ms, err := r.Members(context.Background(), string(ch), users)
	if err != nil {
		t.Fatal(err)
	}
	out := map[crm.UserID]int{}
	for _, m := range ms {
		out[m.User] = m.Open
	}
	return out
}

// peerSkipped returns the users skipped for reason.
func peerSkipped(why routing.Explanation, reason routing.SkipReason) []crm.UserID {
	var out []crm.UserID
	for _, s := range why.Skipped {
		if s.Reason == reason {
			out = append(out, s.User)
		}
	}
	return out
}

// peerNoEligible asserts that err is a *NoEligibleError and returns it.
func peerNoEligible(t testing.TB, err error) *routing.NoEligibleError {
	t.Helper()
	none, ok := errors.AsType[*routing.NoEligibleError](err)
	if !ok {
		t.Fatalf("err = %v, want a *NoEligibleError", err)
	}
	return none
}
