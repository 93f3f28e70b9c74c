// Command quickstart tells the story of a small sales team working
// WhatsApp and Telegram clients through crmbridge, and prints every
// decision the engine takes with its explanation. It runs on the
// in-memory fakes (crm/crmtest, channel/channeltest) and a local test
// server playing Salesbot's link shortener, on a fixed clock, so it needs
// no credentials and no network:
//
//	go run ./examples/quickstart
//
// What it shows, one section each:
//
//   - first responder: a new WhatsApp client is offered to the managers who
//     receive new clients; the first reply claims the chat and a second
//     reply is refused; a redelivered message has no second effect;
//   - round robin: a day of new Telegram clients in equal shares, an
//     unavailable employee skipped, and nobody eligible;
//   - roles: quality control sees but may not write; a supervisor writes
//     anywhere;
//   - returning clients under both policies, and a responsible who left the
//     channel;
//   - unanswered-message tasks: opened by a streak, closed by a reply or an
//     unread reset; a Salesbot message opens none;
//   - which channel an employee writes first from;
//   - a number typed with 8 in the CRM matched to a WhatsApp chat, and how
//     package phone reads such numbers with the 8→+7 rule on and off;
//   - Salesbot's short links expanded, and a failed expansion;
//   - a group chat, which creates nothing;
//   - the distribution features: capacity with a waiting queue, shifts and
//     leave, escalation, an owner off shift, weighted shares.
//
// Each line reads: who did what → what the engine decided. Why: the
// engine's explanation (engine.Explanation), with people's names in
// place of CRM user IDs (see render.go).
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the schedules' time zones, whatever the machine has

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/links"
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

// The team, by CRM user ID. On WhatsApp, Anna and Boris take new clients
// and Gleb has "receives new clients" off; on Telegram, Boris and Vera take
// new clients. Quinn checks quality on both; Sam supervises both.
const (
	anna, boris, vera, gleb, quinn, sam crm.UserID = "1", "2", "3", "4", "5", "6"

	whatsapp, telegram channel.ID = "whatsapp", "telegram"

	// The CRM's pipeline and its stages (amoCRM: 142 won, 143 lost).
	pipeline                  crm.PipelineID = "10"
	unsorted, firstStage, won crm.StageID    = "100", "101", "142"
)

// story holds what every scene needs: the fake CRM and sender, the engine
// in use, a fixed clock, and the names shown for IDs.
type story struct {
	ctx     context.Context
	w       io.Writer
	crm     *crmtest.Fake
	sent    *channeltest.Recorder
	eng     *engine.Engine
	now     time.Time
	seq     int
	names   map[crm.UserID]string
	clients map[string]string // chat ID → the client's name

	mu   sync.Mutex
	away map[crm.UserID]bool // the host's "unavailable" marks

	shortener, shop *httptest.Server
}

func run(ctx context.Context, w io.Writer) error {
	s := newStory(ctx, w)
	defer s.shortener.Close()
	defer s.shop.Close()
	if err := s.start(); err != nil {
		return err
	}
	s.printf("crmbridge quickstart: one sales team, WhatsApp (first responder) and Telegram (round robin).\n")
	s.printf("Each line: who wrote what → what the engine decided. Why: the engine's explanation.\n")
	for _, scene := range []func() error{
		s.firstResponder,
		s.roundRobin,
		s.roleRules,
		s.returningClients,
		s.unansweredTasks,
		s.writeFirst,
		s.phoneNumbers,
		s.salesbotLinks,
		s.groupChat,
		s.capacityAndQueue,
		s.shiftsAndLeave,
		s.escalation,
		s.ownerOffShift,
		s.weightedShares,
	} {
		if err := scene(); err != nil {
			return err
		}
	}
	s.printf("\nCRM calls: %d; messages sent: %d\n", s.crm.TotalCalls(), len(s.sent.Sent()))
	return nil
}

func newStory(ctx context.Context, w io.Writer) *story {
	s := &story{
		ctx: ctx, w: w,
		now:     time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), // a Monday
		names:   map[crm.UserID]string{},
		clients: map[string]string{},
		away:    map[crm.UserID]bool{},
	}
	s.crm = crmtest.NewFake(&crmtest.Options{Now: s.clock})
	team := []crm.User{
		{ID: anna, Name: "Anna", Active: true}, {ID: boris, Name: "Boris", Active: true},
		{ID: vera, Name: "Vera", Active: true}, {ID: gleb, Name: "Gleb", Active: true},
		{ID: quinn, Name: "Quinn", Active: true}, {ID: sam, Name: "Sam", Active: true},
	}
	s.crm.AddUsers(team...)
	for _, u := range team { // a host takes the names from the CRM's users
		s.names[u.ID] = u.Name
	}
	s.crm.AddPipelines(crm.Pipeline{ID: pipeline, Name: "Sales", Main: true, Stages: []crm.Stage{
		{ID: unsorted, Name: "Unsorted", Kind: crm.StageUnsorted},
		{ID: firstStage, Name: "New", Kind: crm.StageOpen},
		{ID: won, Name: "Won", Kind: crm.StageWon},
		{ID: "143", Name: "Lost", Kind: crm.StageLost},
	}})
	s.sent = channeltest.NewRecorder()
	s.shop = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html><head><title>Water 19 l</title></head></html>")
	}))
	s.shortener = newShortener(s.shop.URL + "/catalog/water-19l")
	return s
}

// newShortener plays amo.sh: /4823 redirects to target; any other path
// answers with a page of its own (no redirect: nothing to expand).
func newShortener(target string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/4823" {
			http.Redirect(w, r, target, http.StatusFound)
			return
		}
		fmt.Fprint(w, "<html><head><title>Not found</title></head></html>")
	}))
}

// config is the team's configuration; a host loads it from JSON.
func config() engine.Config {
	return engine.Config{
		Channels: []engine.ChannelConfig{
			// Unsorted stage: first responder. Returning clients with all
			// deals closed: their responsible is notified (cars).
			{ID: whatsapp, Kind: channel.WhatsApp, Name: "WhatsApp", Pipeline: pipeline, Stage: unsorted, Returning: routing.NotifyResponsible},
			// Any other stage: round robin. Returning clients: a new deal
			// (office water).
			{ID: telegram, Kind: channel.Telegram, Name: "Telegram", Pipeline: pipeline, Stage: firstStage, Returning: routing.NewDeal},
		},
		Roles: []roles.Assignment{
			{User: anna, Channel: whatsapp, Role: roles.Manager, ReceivesNewClients: true},
			{User: boris, Channel: whatsapp, Role: roles.Manager, ReceivesNewClients: true},
			{User: gleb, Channel: whatsapp, Role: roles.Manager}, // "receives new clients" off
			{User: quinn, Channel: whatsapp, Role: roles.QualityControl},
			{User: sam, Channel: whatsapp, Role: roles.Supervisor},
			{User: boris, Channel: telegram, Role: roles.Manager, ReceivesNewClients: true},
			{User: vera, Channel: telegram, Role: roles.Manager, ReceivesNewClients: true},
			{User: quinn, Channel: telegram, Role: roles.QualityControl},
			{User: sam, Channel: telegram, Role: roles.Supervisor},
		},
		Global: engine.GlobalSettings{
			UnansweredTasks:     tasks.Settings{Enabled: true},
			ExpandSalesbotLinks: true,
			WriteFirstFrom:      map[crm.UserID]channel.ID{sam: whatsapp},
		},
	}
}

// start builds the team's engine.
func (s *story) start() error {
	eng, err := s.newEngine(config())
	s.eng = eng
	return err
}

// newEngine builds an engine over the story's CRM, sender and clock.
func (s *story) newEngine(cfg engine.Config) (*engine.Engine, error) {
	host := strings.TrimPrefix(s.shortener.URL, "http://")
	host, _, _ = strings.Cut(host, ":")
	return engine.New(s.ctx, engine.Options{
		CRM: s.crm, Sender: s.sent, Config: cfg, Now: s.clock,
		Available: s.available,
		Links: links.NewExpander(links.Options{
			Hosts: []string{host}, // the local shortener stands in for amo.sh
			// Loopback is refused by default; let the test server through.
			AllowAddrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			Now:        s.clock,
		}),
	})
}

func (s *story) clock() time.Time { return s.now }

// available is the host's availability hook (Options.Available).
func (s *story) available(_ context.Context, _ channel.ID, u crm.UserID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.away[u]
}

func (s *story) setAway(u crm.UserID, away bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.away[u] = away
}

func (s *story) printf(format string, args ...any) { fmt.Fprintf(s.w, format, args...) }

func (s *story) section(title string) { s.printf("\n== %s\n", title) }

func (s *story) note(format string, args ...any) { s.printf("  ("+format+")\n", args...) }

func (s *story) nextID() string { s.seq++; return fmt.Sprintf("msg-%d", s.seq) }

// message is a client's message as a channel adapter delivers it.
func (s *story) message(ch channel.ID, chatID, text string) channel.Message {
	return channel.Message{
		ID: s.nextID(), Chat: channel.Chat{Channel: ch, ChatID: chatID}, Direction: channel.Inbound,
		Author: channel.Author{Kind: channel.AuthorClient}, Text: text, Time: s.now, ClientName: s.clients[chatID],
	}
}

// client feeds a client's message to the engine and prints the decision.
func (s *story) client(ch channel.ID, chatID, text string) (engine.InboundResult, error) {
	return s.deliver(s.message(ch, chatID, text))
}

func (s *story) deliver(m channel.Message) (engine.InboundResult, error) {
	r, err := s.eng.ClientMessage(s.ctx, m)
	if err != nil {
		return r, fmt.Errorf("%s's message %q: %w", m.Chat, m.Text, err)
	}
	from := s.clients[m.Chat.ChatID]
	if from == "" {
		from = m.Chat.ChatID
	}
	s.inbound(from, m.Text, r)
	return r, nil
}

// reply feeds an employee's message and prints the decision or the
// refusal. The error is returned for the scene to check.
func (s *story) reply(u crm.UserID, ch channel.ID, chatID, text string) (engine.OutboundResult, error) {
	r, err := s.eng.EmployeeMessage(s.ctx, engine.EmployeeMessage{
		ID: s.nextID(), User: u, Chat: channel.Chat{Channel: ch, ChatID: chatID}, Text: text,
	})
	s.outbound(s.name(u), text, r, err)
	return r, err
}

// mustReply is reply for a message that must go out.
func (s *story) mustReply(u crm.UserID, ch channel.ID, chatID, text string) error {
	_, err := s.reply(u, ch, chatID, text)
	return err
}

func (s *story) dealsOf(c crm.ContactID) int {
	n := 0
	for _, d := range s.crm.Deals() {
		for _, id := range d.Contacts {
			if id == c {
				n++
			}
		}
	}
	return n
}
