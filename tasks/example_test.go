package tasks_test

import (
	"context"
	"fmt"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/tasks"
)

// A streak: two client messages open one task, a reply closes it, and the
// next client message starts a new streak.
func Example() {
	ctx := context.Background()
	settings := tasks.Settings{Enabled: true}
	var store tasks.MemoryStore
	chat := channel.Chat{Channel: "wa-1", ChatID: "79161234567"}
	t0 := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

	for i, ev := range []tasks.Event{tasks.ClientMessage, tasks.ClientMessage, tasks.BotMessage, tasks.EmployeeReply, tasks.ClientMessage} {
		switch tasks.Plan(settings, ev) {
		case tasks.Open:
			s, opened, _ := store.Open(ctx, chat, fmt.Sprint("m", i), t0.Add(time.Duration(i)*time.Minute))
			if opened {
				spec := tasks.Spec(settings, channel.Channel{ID: "wa-1", Name: "WhatsApp"}, chat, s.Started, "deal-7", "", "anna")
				fmt.Printf("m%d opens a streak: task for %s due %s\n", i, spec.Responsible, spec.Deadline.Format("15:04"))
			} else {
				fmt.Printf("m%d: streak already open since %s, no new task\n", i, s.Started.Format("15:04"))
			}
		case tasks.Close:
			_, found, _ := store.Close(ctx, chat)
			fmt.Printf("m%d: reply closes the streak (found %v)\n", i, found)
		default:
			fmt.Printf("m%d: nothing\n", i)
		}
	}
	// Output:
	// m0 opens a streak: task for anna due 10:00
	// m1: streak already open since 09:00, no new task
	// m2: nothing
	// m3: reply closes the streak (found true)
	// m4 opens a streak: task for anna due 10:04
}
