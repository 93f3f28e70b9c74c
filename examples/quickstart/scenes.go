package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/phone"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// The scenes of the rules, on the team's engine (s.eng).

func (s *story) firstResponder() error {
	s.section("First responder: a new WhatsApp client lands in Unsorted")
	s.clients["79161112233"] = "Mila"
	m := s.message(whatsapp, "79161112233", "Hello, how much is delivery?")
	if _, err := s.deliver(m); err != nil {
		return err
	}
	s.note("the provider retries its webhook: the same message again")
	if _, err := s.deliver(m); err != nil {
		return err
	}
	if err := s.mustReply(anna, whatsapp, "79161112233", "Hi Mila! Delivery is free."); err != nil {
		return err
	}
	_, err := s.reply(boris, whatsapp, "79161112233", "Hello!")
	if !errors.Is(err, routing.ErrAlreadyClaimed) {
		return fmt.Errorf("a late reply: want the chat claimed by Anna, got %v", err)
	}
	return nil
}

func (s *story) roundRobin() error {
	s.section("Round robin: a day of new Telegram clients")
	count := map[crm.UserID]int{}
	for i := range 12 {
		s.now = s.now.Add(40 * time.Minute)
		chat := fmt.Sprintf("tg-client-%02d", i+1)
		s.clients[chat] = fmt.Sprintf("Client %d", i+1)
		r, err := s.eng.ClientMessage(s.ctx, s.message(telegram, chat, "I'd like to order"))
		if err != nil {
			return err
		}
		if i < 2 { // the first two in full, the rest counted
			s.inbound(s.clients[chat], "I'd like to order", r)
		}
		count[r.Responsible]++
	}
	s.printf("  … 12 new clients by evening: Boris %d, Vera %d (equal shares)\n", count[boris], count[vera])

	s.note("the host marks Boris unavailable: a doctor's appointment")
	s.setAway(boris, true)
	s.clients["tg-vlad"] = "Vlad"
	if _, err := s.client(telegram, "tg-vlad", "Is anyone there?"); err != nil {
		return err
	}
	s.note("and Vera too: nobody is eligible")
	s.setAway(vera, true)
	s.clients["tg-yana"] = "Yana"
	if _, err := s.client(telegram, "tg-yana", "Hello?"); err != nil {
		return err
	}
	s.setAway(boris, false)
	s.setAway(vera, false)
	return nil
}

func (s *story) roleRules() error {
	s.section("Roles: quality control never writes, a supervisor writes anywhere")
	if _, err := s.reply(quinn, whatsapp, "79161112233", "Quality check"); !errors.Is(err, engine.ErrForbidden) {
		return fmt.Errorf("quality control writing: want the write refused, got %v", err)
	}
	ok, reason, err := s.eng.CanView(s.ctx, quinn, channel.Chat{Channel: whatsapp, ChatID: "79161112233"})
	if err != nil {
		return err
	}
	s.printf("  Quinn opens Mila's chat → can view: %v (%s)\n", ok, reason)
	return s.mustReply(sam, whatsapp, "79161112233", "Sam here, Anna's supervisor: all good?")
}

func (s *story) returningClients() error {
	s.section("Returning clients whose deals are all closed")
	s.clients["79035550011"] = "Petr"
	petr := s.crm.AddContact(crm.Contact{Name: "Petr", Phones: []string{"+7 903 555-00-11"}, Responsible: anna})
	s.crm.AddDeal(crm.Deal{Name: "Petr's first car", Pipeline: pipeline, Stage: won, Status: crm.DealWon, Responsible: anna, Contacts: []crm.ContactID{petr.ID}})
	s.note("WhatsApp's policy is notify_responsible: cars, rare repeat sales")
	if _, err := s.client(whatsapp, "79035550011", "I'd like another car"); err != nil {
		return err
	}
	s.printf("  Petr's deals: %d (none created; Anna decides)\n", s.dealsOf(petr.ID))

	s.clients["office-42"] = "Office 42"
	office := s.crm.AddContact(crm.Contact{Name: "Office 42", Identities: []crm.Identity{{Kind: "telegram", Value: "office-42"}}, Responsible: vera})
	s.crm.AddDeal(crm.Deal{Name: "Water, October", Pipeline: pipeline, Stage: won, Status: crm.DealWon, Responsible: vera, Contacts: []crm.ContactID{office.ID}})
	s.note("Telegram's policy is new_deal: office water, frequent repeat sales")
	if _, err := s.client(telegram, "office-42", "10 more bottles, please"); err != nil {
		return err
	}
	s.printf("  Office 42's deals: %d (a new one; the contact reused)\n", s.dealsOf(office.ID))

	s.section("A responsible who left the channel")
	s.clients["tg-dina"] = "Dina"
	dina := s.crm.AddContact(crm.Contact{Name: "Dina", Identities: []crm.Identity{{Kind: "telegram", Value: "tg-dina"}}, Responsible: anna})
	s.crm.AddDeal(crm.Deal{Name: "Dina's cooler", Pipeline: pipeline, Stage: firstStage, Responsible: anna, Contacts: []crm.ContactID{dina.ID}})
	s.note("Dina's open deal is Anna's, and Anna does not work Telegram")
	_, err := s.client(telegram, "tg-dina", "Where is my cooler?")
	return err
}

func (s *story) unansweredTasks() error {
	s.section("Unanswered messages: one task per streak")
	s.clients["79250001234"] = "Olga"
	olga := s.crm.AddContact(crm.Contact{Name: "Olga", Phones: []string{"+79250001234"}, Responsible: boris})
	deal := s.crm.AddDeal(crm.Deal{Name: "Olga's order", Pipeline: pipeline, Stage: firstStage, Responsible: boris, Contacts: []crm.ContactID{olga.ID}})
	for _, text := range []string{"Good evening", "Are you there?"} {
		if _, err := s.client(whatsapp, "79250001234", text); err != nil {
			return err
		}
		s.now = s.now.Add(5 * time.Minute)
	}
	r, err := s.eng.SalesbotMessage(s.ctx, engine.SalesbotMessage{ID: s.nextID(), Chat: channel.Chat{Channel: whatsapp, ChatID: "79250001234"},
		Text: "We will answer shortly."})
	s.outbound("Salesbot", "We will answer shortly.", r, err)
	if err != nil {
		return err
	}
	s.note("the provider's webhook reports a Salesbot message sent outside the engine")
	echo := channel.Message{ID: s.nextID(), Chat: channel.Chat{Channel: whatsapp, ChatID: "79250001234"}, Direction: channel.Outbound,
		Author: channel.Author{Kind: channel.AuthorSalesbot}, Text: "Your order number is 5521.", Time: s.now}
	r, err = s.eng.EmployeeReplied(s.ctx, echo)
	s.outbound("Salesbot", echo.Text, r, err)
	if err != nil {
		return err
	}
	if err := s.mustReply(boris, whatsapp, "79250001234", "Sorry for the wait!"); err != nil {
		return err
	}
	s.now = s.now.Add(time.Hour)
	if _, err := s.client(whatsapp, "79250001234", "Thanks, bye!"); err != nil {
		return err
	}
	reset, err := s.eng.ResetUnread(s.ctx, engine.UnreadReset{User: boris, Chat: channel.Chat{Channel: whatsapp, ChatID: "79250001234"}})
	if err != nil {
		return err
	}
	s.printf("  Boris marks the chat read → %s. Why: %s\n", reset.Outcome, s.why(reset.Why))
	made, open := 0, 0
	for _, t := range s.crm.Tasks() {
		if t.Deal == deal.ID {
			made++
			if !t.Done {
				open++
			}
		}
	}
	s.printf("  Olga's deal: 3 client messages in 2 streaks made %d tasks; still open: %d\n", made, open)
	return nil
}

func (s *story) writeFirst() error {
	s.section("Writing to a client first: which channel")
	s.clients["79037770000"] = "a new lead"
	if err := s.mustReply(boris, "", "79250001234", "Olga, your order ships today."); err != nil {
		return err
	}
	if err := s.mustReply(sam, "", "79037770000", "Hello from our shop!"); err != nil {
		return err
	}
	_, err := s.reply(boris, "", "79037770000", "Hello!")
	if !errors.Is(err, engine.ErrAmbiguousChannel) {
		return fmt.Errorf("writing first with two channels: want a channel to choose, got %v", err)
	}
	return nil
}

func (s *story) phoneNumbers() error {
	s.section("Phone numbers typed with 8")
	s.clients["79161234567"] = "Ivan"
	ivan := s.crm.AddContact(crm.Contact{Name: "Ivan", Phones: []string{"8 (916) 123-45-67"}, Responsible: anna})
	s.crm.AddDeal(crm.Deal{Name: "Ivan's order", Pipeline: pipeline, Stage: firstStage, Responsible: anna, Contacts: []crm.ContactID{ivan.ID}})
	s.note("Ivan's phone was typed \"8 (916) 123-45-67\" in the CRM; he writes from WhatsApp 79161234567")
	if _, err := s.client(whatsapp, "79161234567", "It's Ivan"); err != nil {
		return err
	}
	// The rule itself, package phone: GlobalSettings.PhoneOptions gives
	// these options to the engine.
	for _, c := range []struct{ typed, chat string }{
		{"8 (916) 123-45-67", "79161234567"}, // Ivan in Moscow
		{"8 (495) 123-45-67", "84951234567"}, // also a Vietnamese number
	} {
		chat, err := phone.ParseChatID(c.chat)
		if err != nil {
			return err
		}
		for _, opt := range []phone.Options{{}, {DisableEightAsSeven: true}} {
			rule := "8→+7 on: "
			if opt.DisableEightAsSeven {
				rule = "8→+7 off:"
			}
			_, match := phone.Match(chat, []string{c.typed}, opt)
			s.printf("  %s %q %s; matches WhatsApp chat %s: %v\n", rule, c.typed, reading(c.typed, opt), c.chat, match)
		}
	}
	return nil
}

// reading says how package phone reads a typed number under opt.
func reading(typed string, opt phone.Options) string {
	n, err := phone.Parse(typed, opt)
	var pe *phone.ParseError
	switch {
	case errors.As(err, &pe) && pe.Alternative.IsValid():
		return "is no number (read with 8 as +7 it would be " + pe.Alternative.E164() + ")"
	case err != nil:
		return "is no number: " + err.Error()
	case n.Ambiguous():
		return "reads " + n.E164() + " (ambiguous: also " + n.Alternative().E164() + ")"
	}
	return "reads " + n.E164()
}

func (s *story) salesbotLinks() error {
	s.section("Salesbot's short links, expanded for a preview")
	for _, path := range []string{"/4823", "/broken"} {
		text := "Our catalog: " + s.shortener.URL + path
		r, err := s.eng.SalesbotMessage(s.ctx, engine.SalesbotMessage{ID: s.nextID(), Chat: channel.Chat{Channel: whatsapp, ChatID: "79161112233"}, Text: text})
		if err != nil {
			return err
		}
		for _, l := range r.Links {
			if l.Replaced {
				s.printf("  %s → %s\n", s.local(l.Short), s.local(l.Long))
			} else {
				s.printf("  %s → not expanded (%v); the short link stays\n", s.local(l.Short), s.local(l.Err.Error()))
			}
		}
		s.printf("  Salesbot to Mila: %q → %s. Why: %s\n", s.local(r.Text), r.Outcome, s.why(r.Why))
	}
	return nil
}

// local shows the test servers' addresses (a port that changes on every
// run) as the services they play: amo.sh and the shop's site.
func (s *story) local(text string) string {
	return strings.NewReplacer(s.shortener.URL, "http://amo.sh", s.shop.URL, "https://shop.example").Replace(text)
}

func (s *story) groupChat() error {
	s.section("Group chats are not clients")
	m := s.message(whatsapp, "120363041234567890@g.us", "Hi all, who sells water here?")
	m.Group = true
	s.clients[m.Chat.ChatID] = "a WhatsApp group"
	_, err := s.deliver(m)
	return err
}
