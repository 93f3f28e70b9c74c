package main

import (
	"fmt"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// The distribution features. Each scene runs a fresh engine whose one
// channel, Telegram (round robin), has that feature on: Boris and Vera
// take new clients, Sam supervises.

func (s *story) withFeatures(f routing.Features) error {
	eng, err := s.newEngine(engine.Config{
		Channels: []engine.ChannelConfig{{
			ID: telegram, Kind: channel.Telegram, Name: "Telegram",
			Pipeline: pipeline, Stage: firstStage, Returning: routing.NotifyResponsible,
			Features: f,
		}},
		Roles: []roles.Assignment{
			{User: boris, Channel: telegram, Role: roles.Manager, ReceivesNewClients: true},
			{User: vera, Channel: telegram, Role: roles.Manager, ReceivesNewClients: true},
			{User: sam, Channel: telegram, Role: roles.Supervisor},
		},
	})
	s.eng = eng
	return err
}

// tick runs the host's timer once and prints what Tick handed over.
func (s *story) tick() error {
	r, err := s.eng.Tick(s.ctx, s.now)
	if err != nil {
		return err
	}
	for _, h := range append(r.Escalated, r.Assigned...) {
		s.printf("  Tick %s: %s → %s responsible. Why: %s\n", s.now.Format("15:04"), s.clientOf(h.Chat), s.name(h.Responsible), s.decision(h.Decision))
	}
	if len(r.Escalated)+len(r.Assigned) == 0 {
		s.printf("  Tick %s: nothing to hand over\n", s.now.Format("15:04"))
	}
	return nil
}

func (s *story) clientOf(c channel.Chat) string {
	if n, ok := s.clients[c.ChatID]; ok {
		return n
	}
	return c.ChatID
}

// newClients names and feeds one message from each client.
func (s *story) newClients(names ...string) ([]engine.InboundResult, error) {
	var out []engine.InboundResult
	for _, n := range names {
		chat := "tg-" + n
		s.clients[chat] = n
		r, err := s.client(telegram, chat, "Hello!")
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *story) capacityAndQueue() error {
	s.printf("\nDistribution features, each on a fresh engine: Telegram, round robin between Boris and Vera; Sam supervises.\n")
	s.section("Capacity: one open client each, then a waiting queue")
	if err := s.withFeatures(routing.Features{Capacity: 1, WhenNobody: routing.QueueWhenNobody}); err != nil {
		return err
	}
	rs, err := s.newClients("Artem", "Bella", "Cyril")
	if err != nil {
		return err
	}
	if err := s.tick(); err != nil {
		return err
	}
	s.note("Artem's deal is won in the CRM; amoCRM's webhook tells the host, which calls Refresh")
	if err := s.crm.CloseDeal(rs[0].Deal, crm.DealWon); err != nil {
		return err
	}
	s.now = s.now.Add(10 * time.Minute)
	r, err := s.eng.Refresh(s.ctx, rs[0].Chat)
	if err != nil {
		return err
	}
	s.printf("  Refresh Artem → %s. Why: %s\n", r.Outcome, s.why(r.Why))
	return s.tick()
}

func (s *story) shiftsAndLeave() error {
	s.section("Shifts and leave (Moscow time)")
	weekdays := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	if err := s.withFeatures(routing.Features{Schedules: map[crm.UserID]routing.Schedule{
		boris: {TimeZone: "Europe/Moscow", Shifts: []routing.Shift{{Days: weekdays, From: 9 * 60, To: 18 * 60}}},
		vera: {TimeZone: "Europe/Moscow", Shifts: []routing.Shift{{Days: weekdays, From: 14 * 60, To: 23 * 60}},
			Leave: []routing.Period{{From: "2026-11-25", To: "2026-11-27"}}},
	}}); err != nil {
		return err
	}
	for _, at := range []struct {
		when   time.Time
		client string
	}{
		{time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC), "Denis"},  // Tuesday 10:00 in Moscow
		{time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC), "Elena"}, // Tuesday 19:00
		{time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), "Fedor"}, // Wednesday 15:00, Vera on leave
	} {
		s.now = at.when
		s.note("%s", s.now.In(moscow()).Format("Mon 15:04 MST"))
		if _, err := s.newClients(at.client); err != nil {
			return err
		}
	}
	return nil
}

func moscow() *time.Location {
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		return time.FixedZone("MSK", 3*60*60)
	}
	return loc
}

func (s *story) escalation() error {
	s.section("Escalation: 15 minutes without a reply")
	if err := s.withFeatures(routing.Features{Escalation: routing.Escalation{After: routing.Duration(15 * time.Minute)}}); err != nil {
		return err
	}
	if _, err := s.newClients("Galina"); err != nil {
		return err
	}
	s.now = s.now.Add(15 * time.Minute)
	if err := s.tick(); err != nil {
		return err
	}
	s.now = s.now.Add(15 * time.Minute)
	return s.tick() // once per deadline: Times is 1 by default
}

func (s *story) ownerOffShift() error {
	s.section("Owner off shift: Vera is on leave and her client Hanna writes")
	s.clients["tg-hanna"] = "Hanna"
	hanna := s.crm.AddContact(crm.Contact{Name: "Hanna", Identities: []crm.Identity{{Kind: "telegram", Value: "tg-hanna"}}, Responsible: vera})
	s.crm.AddDeal(crm.Deal{Name: "Hanna's order", Pipeline: pipeline, Stage: firstStage, Responsible: vera, Contacts: []crm.ContactID{hanna.ID}})
	leave := map[crm.UserID]routing.Schedule{vera: {Leave: []routing.Period{{From: "2026-11-25", To: "2026-11-27"}}}}
	for _, p := range []routing.OwnerPolicy{routing.KeepOwner, routing.CoverOwner, routing.ReassignOwner} {
		if err := s.withFeatures(routing.Features{Schedules: leave, OwnerOffShift: p}); err != nil {
			return err
		}
		s.note("owner_off_shift: %s", p)
		if _, err := s.client(telegram, "tg-hanna", "Is my order on its way?"); err != nil {
			return err
		}
		if p == routing.CoverOwner { // a covering colleague may answer
			if err := s.mustReply(boris, telegram, "tg-hanna", "Hi Hanna, Boris here for Vera: it ships today."); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *story) weightedShares() error {
	s.section("Weighted shares: Boris weighs 2, Vera 1")
	if err := s.withFeatures(routing.Features{Weights: map[crm.UserID]int{boris: 2, vera: 1}}); err != nil {
		return err
	}
	count := map[crm.UserID]int{}
	var order []crm.UserID
	for i := range 9 {
		r, err := s.eng.ClientMessage(s.ctx, s.message(telegram, fmt.Sprintf("tg-w%d", i), "Hello!"))
		if err != nil {
			return err
		}
		count[r.Responsible]++
		order = append(order, r.Responsible)
	}
	s.printf("  9 new clients go to %s: Boris %d, Vera %d\n", s.nameList(order), count[boris], count[vera])
	return nil
}
