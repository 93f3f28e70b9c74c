package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// This file turns the engine's results into the story's lines: one line
// per decision, "who did what → what the engine decided. Why: …", with
// people named. The engine speaks in CRM user IDs; a host's UI would do
// the same renaming before showing an explanation to its users.

// name returns an employee's name; "" (nobody) and unknown IDs are shown
// as they are.
func (s *story) name(u crm.UserID) string {
	if n, ok := s.names[u]; ok {
		return n
	}
	if u == "" {
		return "nobody"
	}
	return string(u)
}

func (s *story) nameList(us []crm.UserID) string {
	ns := make([]string, len(us))
	for i, u := range us {
		ns[i] = s.name(u)
	}
	return strings.Join(ns, ", ")
}

// why renders an explanation with names in place of user IDs, contact
// names in place of contact IDs, and client names in place of chat IDs.
// It renames the values and lets the engine's own String do the wording.
func (s *story) why(x engine.Explanation) string {
	parts := make([]string, 0, len(x.Steps))
	for _, st := range x.Steps {
		parts = append(parts, s.namedStep(st).String())
	}
	return strings.Join(parts, "; ")
}

func (s *story) namedStep(st engine.Step) engine.Step {
	if st.Kind == engine.StepTaskCreated && st.User == "" {
		// A task opened while the chat is offered has nobody of its own.
		st.User = "nobody yet: the CRM's default user"
	}
	st.User = s.rename(st.User)
	st.Users = s.renameAll(st.Users)
	if st.Contact != "" {
		st.Contact = crm.ContactID(s.contactName(st.Contact))
	}
	if st.Decision != nil {
		d := s.namedDecision(*st.Decision)
		st.Decision = &d
	}
	return st
}

// decision renders a routing decision (Tick's handovers) with names.
func (s *story) decision(d routing.Decision) string { return s.namedDecision(d).String() }

func (s *story) namedDecision(d routing.Decision) routing.Decision {
	d.User = s.rename(d.User)
	d.Offered = s.renameAll(d.Offered)
	w := &d.Why
	w.Chat = s.namedChat(w.Chat)
	w.Considered = s.renameAll(w.Considered)
	w.Eligible = s.renameAll(w.Eligible)
	w.Skipped = s.renameSkips(w.Skipped)
	w.From = s.rename(w.From)
	w.Owner = s.rename(w.Owner)
	if w.Fallback != nil {
		f := *w.Fallback
		f.Skipped = s.renameSkips(f.Skipped)
		w.Fallback = &f
	}
	return d
}

func (s *story) rename(u crm.UserID) crm.UserID {
	if u == "" {
		return ""
	}
	return crm.UserID(s.name(u))
}

// renameAll returns a renamed copy: decisions' slices may share memory
// with the engine's stores and must not be written to.
func (s *story) renameAll(us []crm.UserID) []crm.UserID {
	if us == nil {
		return nil
	}
	out := make([]crm.UserID, len(us))
	for i, u := range us {
		out[i] = s.rename(u)
	}
	return out
}

func (s *story) renameSkips(ss []routing.Skip) []routing.Skip {
	out := slices.Clone(ss)
	for i := range out {
		out[i].User = s.rename(out[i].User)
	}
	return out
}

// namedChat shows a chat by its client's name when the story gave one.
func (s *story) namedChat(c channel.Chat) channel.Chat {
	if n, ok := s.clients[c.ChatID]; ok {
		c.ChatID = n
	}
	return c
}

func (s *story) contactName(id crm.ContactID) string {
	for _, c := range s.crm.Contacts() {
		if c.ID == id && c.Name != "" {
			return c.Name
		}
	}
	return string(id)
}

// refusal explains an error with names: a role that may not write, a chat
// another employee claimed, a channel to choose.
func (s *story) refusal(err error) string {
	var claimed *routing.ClaimedError
	var perm *engine.PermissionError
	var amb *engine.AmbiguousChannelError
	switch {
	case errors.As(err, &claimed):
		return fmt.Sprintf("refused: %s claimed the chat first; it disappeared for the others", s.name(claimed.Winner))
	case errors.As(err, &perm):
		return fmt.Sprintf("refused: %s (%s) may not %s: %s", s.name(perm.User), perm.Role, perm.Action, perm.Reason)
	case errors.As(err, &amb):
		chs := make([]string, len(amb.Candidates))
		for i, c := range amb.Candidates {
			chs[i] = string(c)
		}
		return fmt.Sprintf("refused: which channel? %s has %s and no \"write first from\" setting", s.name(amb.User), strings.Join(chs, " and "))
	}
	return "error: " + err.Error()
}

// inbound prints one line for a client's message.
func (s *story) inbound(from, text string, r engine.InboundResult) {
	what := string(r.Outcome)
	switch {
	case r.Duplicate:
		what = "nothing new (duplicate)"
	case r.Outcome == engine.OutcomeGroup:
		what = "nothing created"
	case r.Responsible != "":
		what += ", " + s.name(r.Responsible) + " responsible"
	case len(r.Notify) > 0:
		what += ", offered (first reply wins)"
	}
	if n := notified(r.Notify); len(n) > 0 && !r.Duplicate {
		what += ", notify " + s.nameList(n)
	}
	s.printf("  %s: %q → %s. Why: %s\n", from, text, what, s.why(r.Why))
}

// outbound prints one line for an employee's or Salesbot's message.
func (s *story) outbound(from, text string, r engine.OutboundResult, err error) {
	if err != nil {
		s.printf("  %s: %q → %s\n", from, text, s.refusal(err))
		return
	}
	what := string(r.Outcome)
	switch {
	case r.Duplicate:
		what = "nothing new (duplicate)"
	case r.Why.Has(engine.StepRecorded):
		what = "recorded (already sent outside the engine)"
	}
	if r.Claimed {
		what += ", claimed: " + s.name(r.Responsible) + " responsible"
	}
	s.printf("  %s: %q → %s. Why: %s\n", from, text, what, s.why(r.Why))
}

func notified(ns []engine.Notification) []crm.UserID {
	out := make([]crm.UserID, len(ns))
	for i, n := range ns {
		out[i] = n.User
	}
	return out
}
