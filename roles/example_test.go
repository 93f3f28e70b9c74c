package roles_test

import (
	"fmt"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
)

func Example() {
	tbl, err := roles.NewTable([]roles.Assignment{
		{User: "anna", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "boris", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "vera", Channel: "wa", Role: roles.Supervisor},
		{User: "qc", Channel: "wa", Role: roles.QualityControl},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}

	// A first-responder chat offered to both managers, then claimed by anna.
	offered := roles.ChatState{Offered: []crm.UserID{"anna", "boris"}}
	claimed := offered
	claimed.ClaimedBy = "anna"

	for _, u := range []crm.UserID{"anna", "boris", "vera", "qc"} {
		before, _ := tbl.CanView(u, chat, offered)
		after, why := tbl.CanView(u, chat, claimed)
		write, _ := tbl.CanWrite(u, chat, claimed)
		fmt.Printf("%-5s offered: sees=%v  claimed by anna: sees=%v writes=%v (%s)\n", u, before, after, write, why)
	}
	// Output:
	// anna  offered: sees=true  claimed by anna: sees=true writes=true (claimed the chat)
	// boris offered: sees=true  claimed by anna: sees=false writes=false (claimed by another employee)
	// vera  offered: sees=true  claimed by anna: sees=true writes=true (supervisor: sees and writes every chat)
	// qc    offered: sees=true  claimed by anna: sees=true writes=false (quality control: sees every chat, never writes)
}

func ExampleNewTable_invalid() {
	_, err := roles.NewTable([]roles.Assignment{
		{User: "anna", Channel: "wa", Role: roles.Manager},
		{User: "qc", Channel: "wa", Role: roles.QualityControl, ReceivesNewClients: true},
	})
	fmt.Println(err)
	// Output:
	// roles: invalid assignment #1 (user "qc", channel "wa"): quality control cannot receive new clients
}

func ExampleFilter() {
	tbl, _ := roles.NewTable([]roles.Assignment{
		{User: "anna", Channel: "wa", Role: roles.Manager},
	})
	type row struct {
		chat  channel.Chat
		state roles.ChatState
	}
	rows := []row{
		{channel.Chat{Channel: "wa", ChatID: "1"}, roles.ChatState{Responsible: "anna"}},
		{channel.Chat{Channel: "wa", ChatID: "2"}, roles.ChatState{Responsible: "boris"}},
		{channel.Chat{Channel: "wa", ChatID: "3"}, roles.ChatState{Offered: []crm.UserID{"anna"}}},
		{channel.Chat{Channel: "tg", ChatID: "4"}, roles.ChatState{Responsible: "anna"}},
	}
	for _, r := range roles.Filter(tbl, "anna", rows, func(r row) (channel.Chat, roles.ChatState) { return r.chat, r.state }) {
		fmt.Println(r.chat)
	}
	// Output:
	// wa/1
	// wa/3
}

// Boris is away and the channel lets colleagues cover: Anna, listed in
// Covering, sees and writes his client until he is back.
func ExampleChatState_covering() {
	tbl, _ := roles.NewTable([]roles.Assignment{
		{User: "anna", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "boris", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
	})
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}
	away := roles.ChatState{Responsible: "boris", Covering: []crm.UserID{"anna"}}
	back := roles.ChatState{Responsible: "boris"}

	ok, why := tbl.CanWrite("anna", chat, away)
	fmt.Printf("boris away: anna writes=%v (%s)\n", ok, why)
	ok, why = tbl.CanWrite("anna", chat, back)
	fmt.Printf("boris back: anna writes=%v (%s)\n", ok, why)
	// Output:
	// boris away: anna writes=true (covering for the client's owner, who is away)
	// boris back: anna writes=false (another employee's client, not offered to them)
}
