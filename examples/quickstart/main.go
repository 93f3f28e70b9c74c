// Command quickstart tells the story of a sales team on two channels,
// run on crmbridge's in-memory fakes (crm/crmtest, channel/channeltest)
// and a local test server for Salesbot's short link. It needs no
// credentials and no network:
//
//	go run ./examples/quickstart
//
// Each section prints what the engine decided and why.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/links"
	"github.com/crmbridge/crmbridge/phone"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/tasks"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// The team. Anna and Boris take new WhatsApp clients (first responder);
// Boris and Vera take new Telegram clients (round robin); Quinn checks
// quality; Sam supervises.
const (
	anna, boris, vera, quinn, sam crm.UserID = "1", "2", "3", "4", "5"
	wa, tg                        channel.ID = "wa", "tg"
)

var names = map[crm.UserID]string{anna: "Anna", boris: "Boris", vera: "Vera", quinn: "Quinn", sam: "Sam"}

func who(u crm.UserID) string {
	if n, ok := names[u]; ok {
		return n
	}
	if u == "" {
		return "nobody yet"
	}
	return string(u)
}

type story struct {
	ctx    context.Context
	w      io.Writer
	crm    *crmtest.Fake
	sent   *channeltest.Recorder
	engine *engine.Engine
	now    time.Time
	seq    int
}

func (s *story) clock() time.Time { return s.now }

func (s *story) id() string { s.seq++; return fmt.Sprintf("msg-%d", s.seq) }

func (s *story) printf(format string, args ...any) { fmt.Fprintf(s.w, format, args...) }

func (s *story) section(title string) { s.printf("\n== %s\n", title) }

func (s *story) client(ch channel.ID, chatID, text string) engine.InboundResult {
	r, err := s.engine.ClientMessage(s.ctx, channel.Message{
		ID: s.id(), Chat: channel.Chat{Channel: ch, ChatID: chatID}, Direction: channel.Inbound,
		Author: channel.Author{Kind: channel.AuthorClient}, Text: text, Time: s.now,
	})
	if err != nil {
		s.printf("   client %s: error: %v\n", chatID, err)
		return r
	}
	var ns []string
	for _, n := range r.Notify {
		ns = append(ns, who(n.User))
	}
	s.printf("   client %s writes %q → %s; notify %s; responsible: %s\n", chatID, text, r.Outcome, strings.Join(ns, ", "), who(r.Responsible))
	if r.TaskCreated {
		if r.Responsible == "" {
			s.printf("     unanswered-message task %s created (the CRM's default user until someone claims the chat)\n", r.Task)
		} else {
			s.printf("     unanswered-message task %s created for %s\n", r.Task, who(r.Responsible))
		}
	}
	return r
}

func (s *story) employee(u crm.UserID, ch channel.ID, chatID, text string) (engine.OutboundResult, error) {
	r, err := s.engine.EmployeeMessage(s.ctx, engine.EmployeeMessage{
		ID: s.id(), User: u, Chat: channel.Chat{Channel: ch, ChatID: chatID}, Text: text,
	})
	if err != nil {
		s.printf("   %s replies %q → refused: %v\n", who(u), text, err)
		return r, err
	}
	s.printf("   %s replies %q → sent", who(u), text)
	if r.Claimed {
		s.printf(", claims the chat (now responsible in the CRM)")
	}
	if r.TaskClosed != "" {
		s.printf(", closes task %s", r.TaskClosed)
	}
	s.printf("\n")
	return r, nil
}

func run(ctx context.Context, w io.Writer) error {
	s := &story{ctx: ctx, w: w, now: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	s.crm = crmtest.NewFake(&crmtest.Options{Now: s.clock})
	s.crm.AddUsers(
		crm.User{ID: anna, Name: "Anna", Active: true}, crm.User{ID: boris, Name: "Boris", Active: true},
		crm.User{ID: vera, Name: "Vera", Active: true}, crm.User{ID: quinn, Name: "Quinn", Active: true},
		crm.User{ID: sam, Name: "Sam", Active: true},
	)
	s.crm.AddPipelines(crm.Pipeline{ID: "10", Name: "Sales", Main: true, Stages: []crm.Stage{
		{ID: "100", Name: "Unsorted", Kind: crm.StageUnsorted},
		{ID: "101", Name: "New", Kind: crm.StageOpen},
		{ID: "142", Name: "Won", Kind: crm.StageWon},
		{ID: "143", Name: "Lost", Kind: crm.StageLost},
	}})
	s.sent = channeltest.NewRecorder(wa, tg)

	// Salesbot's shortener, played by a local test server.
	shortener := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/4823" {
			http.Redirect(w, r, "/catalog/water-19l", http.StatusFound)
			return
		}
		fmt.Fprint(w, "<html><head><title>Water 19 l</title></head></html>")
	}))
	defer shortener.Close()
	shortHost, _, _ := strings.Cut(strings.TrimPrefix(shortener.URL, "http://"), ":")

	cfg := engine.Config{
		Channels: []engine.ChannelConfig{
			{ID: wa, Kind: channel.WhatsApp, Name: "WhatsApp", Pipeline: "10", Stage: "100", Returning: routing.NotifyResponsible},
			{ID: tg, Kind: channel.Telegram, Name: "Telegram", Pipeline: "10", Stage: "101", Returning: routing.NewDeal},
		},
		Roles: []roles.Assignment{
			{User: anna, Channel: wa, Role: roles.Manager, ReceivesNewClients: true},
			{User: boris, Channel: wa, Role: roles.Manager, ReceivesNewClients: true},
			{User: boris, Channel: tg, Role: roles.Manager, ReceivesNewClients: true},
			{User: vera, Channel: tg, Role: roles.Manager, ReceivesNewClients: true},
			{User: quinn, Channel: wa, Role: roles.QualityControl},
			{User: quinn, Channel: tg, Role: roles.QualityControl},
			{User: sam, Channel: wa, Role: roles.Supervisor},
			{User: sam, Channel: tg, Role: roles.Supervisor},
		},
		Global: engine.GlobalSettings{
			UnansweredTasks:     tasks.Settings{Enabled: true},
			ExpandSalesbotLinks: true,
		},
	}
	eng, err := engine.New(ctx, engine.Options{
		CRM: s.crm, Sender: s.sent, Config: cfg, Now: s.clock,
		Links: links.NewExpander(links.Options{
			Hosts:      []string{shortHost},
			AllowAddrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, // the test server only
		}),
	})
	if err != nil {
		return err
	}
	s.engine = eng
	s.printf("crmbridge quickstart: a sales team on WhatsApp (first responder) and Telegram (round robin)\n")

	s.section("1. A new WhatsApp client lands in Unsorted: the first reply wins")
	s.client(wa, "79161112233", "Здравствуйте, сколько стоит доставка?")
	if _, err := s.employee(anna, wa, "79161112233", "Добрый день! Доставка бесплатная."); err != nil {
		return err
	}
	_, err = s.employee(boris, wa, "79161112233", "Здравствуйте!")
	var claimed *routing.ClaimedError
	if !errors.As(err, &claimed) {
		return fmt.Errorf("boris's late reply: want a *ClaimedError, got %v", err)
	}
	s.printf("   (the chat already belongs to %s; it disappeared for Boris)\n", who(claimed.Winner))

	s.section("2. Round robin over a day of new Telegram clients")
	counts := map[crm.UserID]int{}
	for i := range 12 {
		s.now = s.now.Add(40 * time.Minute)
		r, err := s.engine.ClientMessage(ctx, channel.Message{ID: s.id(), Chat: channel.Chat{Channel: tg, ChatID: fmt.Sprintf("tg-%02d", i)},
			Direction: channel.Inbound, Author: channel.Author{Kind: channel.AuthorClient}, Text: "Хочу заказать", Time: s.now})
		if err != nil {
			return err
		}
		counts[r.Responsible]++
	}
	s.printf("   12 new clients: Boris %d, Vera %d (equal shares)\n", counts[boris], counts[vera])

	s.section("3. Quality control sees every chat but may not write")
	if _, err := s.employee(quinn, wa, "79161112233", "Проверка качества"); !errors.Is(err, engine.ErrForbidden) {
		return fmt.Errorf("quinn: want ErrForbidden, got %v", err)
	}
	ok, reason, _ := s.engine.CanView(ctx, quinn, channel.Chat{Channel: wa, ChatID: "79161112233"})
	s.printf("   Quinn can view the chat: %v (%s)\n", ok, reason)

	s.section("4. A returning client whose deals are all closed")
	c1 := s.crm.AddContact(crm.Contact{Name: "Пётр (машина)", Phones: []string{"+7 903 555-00-11"}, Responsible: anna})
	d1 := s.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "142", Status: crm.DealWon, Responsible: anna, Contacts: []crm.ContactID{c1.ID}})
	s.printf("   WhatsApp policy notify_responsible (rare repeat sales; deal %s won):\n", d1.ID)
	s.client(wa, "79035550011", "Хочу ещё одну машину")
	s.printf("   deals of the contact: %d (none created)\n", len(dealsOf(s.crm, c1.ID)))
	c2 := s.crm.AddContact(crm.Contact{Name: "Офис (вода)", Identities: []crm.Identity{{Kind: "telegram", Value: "office-42"}}, Responsible: vera})
	s.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "142", Status: crm.DealWon, Responsible: vera, Contacts: []crm.ContactID{c2.ID}})
	s.printf("   Telegram policy new_deal (frequent repeat sales):\n")
	s.client(tg, "office-42", "Ещё 10 бутылей, пожалуйста")
	s.printf("   deals of the contact: %d (a new one; contacts named Офис: %d, reused)\n", len(dealsOf(s.crm, c2.ID)), countContacts(s.crm, "Офис (вода)"))

	s.section("5. Unanswered messages: one task per streak, closed by a reply")
	c3 := s.crm.AddContact(crm.Contact{Name: "Ольга", Phones: []string{"+79250001234"}, Responsible: boris})
	d3 := s.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "101", Responsible: boris, Contacts: []crm.ContactID{c3.ID}})
	s.client(wa, "79250001234", "Добрый вечер")
	s.now = s.now.Add(5 * time.Minute)
	s.client(wa, "79250001234", "Вы тут?")
	s.now = s.now.Add(5 * time.Minute)
	s.client(wa, "79250001234", "Жду ответа")
	if _, err := s.employee(boris, wa, "79250001234", "Извините за ожидание!"); err != nil {
		return err
	}
	made, open := 0, 0
	for _, t := range s.crm.Tasks() {
		if t.Deal == d3.ID {
			made++
			if !t.Done {
				open++
			}
		}
	}
	s.printf("   tasks on Ольга's deal: %d for 3 messages, still open: %d\n", made, open)

	s.section("6. Salesbot's short link, expanded so WhatsApp shows a preview")
	r, err := s.engine.SalesbotMessage(ctx, engine.SalesbotMessage{ID: s.id(), Chat: channel.Chat{Channel: wa, ChatID: "79161112233"},
		Text: "Наш каталог: " + shortener.URL + "/4823"})
	if err != nil {
		return err
	}
	s.printf("   sent: %q\n", strings.ReplaceAll(r.Text, shortener.URL, "http://shortener"))

	s.section("7. A number typed with 8 in the CRM matches the WhatsApp chat")
	c4 := s.crm.AddContact(crm.Contact{Name: "Иван", Phones: []string{"8 (916) 123-45-67"}, Responsible: anna})
	s.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "101", Responsible: anna, Contacts: []crm.ContactID{c4.ID}})
	num, _ := phone.Parse("8 (916) 123-45-67", phone.Options{})
	s.printf("   \"8 (916) 123-45-67\" reads as %s\n", num.E164())
	in := s.client(wa, "79161234567", "Это Иван")
	s.printf("   matched contact %s (%s): no duplicate created\n", in.Contact, "Иван")
	amb, _ := phone.Parse("8 (495) 123-45-67", phone.Options{})
	s.printf("   \"8 (495) 123-45-67\" reads as %s, ambiguous: %v (also %s)\n", amb.E164(), amb.Ambiguous(), amb.Alternative().E164())

	s.printf("\nCRM calls made: %d; messages sent: %d\n", s.crm.TotalCalls(), len(s.sent.Sent()))
	return nil
}

func dealsOf(f *crmtest.Fake, c crm.ContactID) []crm.Deal {
	var out []crm.Deal
	for _, d := range f.Deals() {
		for _, id := range d.Contacts {
			if id == c {
				out = append(out, d)
			}
		}
	}
	return out
}

func countContacts(f *crmtest.Fake, name string) int {
	n := 0
	for _, c := range f.Contacts() {
		if c.Name == name {
			n++
		}
	}
	return n
}
