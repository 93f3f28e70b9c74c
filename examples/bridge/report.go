package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// report prints what the bridge does, one block per event. Webhooks are
// served concurrently, so every block is written under a lock and appears
// whole.
type report struct {
	mu sync.Mutex
	w  io.Writer
	// tasks are the CRM tasks the engine reported, for the demo's summary.
	tasks []crm.TaskID
}

func newReport(w io.Writer) *report { return &report{w: w} }

// Write lets a logger print through the report without splitting its
// blocks.
func (r *report) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.w.Write(p)
}

func (r *report) printf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.w, format, args...)
}

// block prints a headline and indented "name: value" lines.
func (r *report) block(head string, lines ...[2]string) {
	var sb strings.Builder
	sb.WriteString(head)
	sb.WriteByte('\n')
	for _, l := range lines {
		if l[1] == "" {
			continue
		}
		if l[0] == "why" {
			// The engine's explanation is a list of steps joined by "; ".
			for i, step := range strings.Split(l[1], "; ") {
				name := ""
				if i == 0 {
					name = "why:"
				}
				fmt.Fprintf(&sb, "    %-12s %s\n", name, step)
			}
			continue
		}
		fmt.Fprintf(&sb, "    %-12s %s\n", l[0]+":", l[1])
	}
	r.printf("%s", sb.String())
}

func (r *report) inbound(channelName string, m channel.Message, res engine.InboundResult) {
	head := fmt.Sprintf("client %s on %q: %q", m.Chat.ChatID, channelName, m.Text)
	if res.Duplicate {
		r.block(head, [2]string{"outcome", string(res.Outcome) + " (a redelivery: nothing done again)"})
		return
	}
	var created []string
	if res.ContactCreated {
		created = append(created, "contact "+string(res.Contact))
	}
	if res.DealCreated {
		created = append(created, "deal "+string(res.Deal))
	}
	if res.TaskCreated {
		created = append(created, "task "+string(res.Task))
		r.mu.Lock()
		r.tasks = append(r.tasks, res.Task)
		r.mu.Unlock()
	}
	responsible := string(res.Responsible)
	if responsible == "" && res.Distribution != nil && len(res.Distribution.Offered) > 0 {
		responsible = "nobody yet: the first to reply wins"
	}
	r.block(head,
		[2]string{"outcome", string(res.Outcome)},
		[2]string{"created", strings.Join(created, ", ")},
		[2]string{"responsible", responsible},
		[2]string{"notify", notifications(res.Notify)},
		[2]string{"why", res.Why.String()},
		[2]string{"warnings", strings.Join(res.Warnings, "; ")},
	)
}

func (r *report) outbound(who string, m engine.EmployeeMessage, res engine.OutboundResult) {
	claimed := ""
	if res.Claimed {
		claimed = "yes: the chat is now " + string(m.User) + "'s"
	}
	task := ""
	if res.TaskClosed != "" {
		task = "task " + string(res.TaskClosed) + " completed"
	}
	r.block(fmt.Sprintf("%s to client %s: %q", who, m.Chat.ChatID, m.Text),
		[2]string{"outcome", string(res.Outcome)},
		[2]string{"wazzup id", res.Receipt.ProviderID},
		[2]string{"claimed", claimed},
		[2]string{"responsible", string(res.Responsible)},
		[2]string{"closed", task},
		[2]string{"why", res.Why.String()},
	)
}

func (r *report) echo(m channel.Message, d wazzup.MessageDetails, res engine.OutboundResult) {
	author := "an employee the CRM cannot name (on the phone?)"
	if m.Author.UserID != "" {
		author = "user " + m.Author.UserID
	}
	claimed, task := "", ""
	if res.Claimed {
		claimed = "yes: the chat is now " + m.Author.UserID + "'s"
	}
	if res.TaskClosed != "" {
		task = "task " + string(res.TaskClosed) + " completed"
	}
	r.block(fmt.Sprintf("echo in chat %s: %q", m.Chat.ChatID, m.Text),
		[2]string{"written by", author},
		[2]string{"claimed", claimed},
		[2]string{"closed", task},
		[2]string{"why", res.Why.String()},
		[2]string{"status", string(d.Status)})
}

func (r *report) skipped(m channel.Message, why string) {
	r.block(fmt.Sprintf("message %s in chat %s", m.ID, m.Chat.ChatID), [2]string{"skipped", why})
}

func (r *report) rejected(m channel.Message, err error) {
	r.block(fmt.Sprintf("message %s in chat %s", m.ID, m.Chat),
		[2]string{"rejected", err.Error() + " (acknowledged: a redelivery cannot fix it)"})
}

func (r *report) failed(m channel.Message, err error) {
	r.block(fmt.Sprintf("message %s in chat %s", m.ID, m.Chat),
		[2]string{"failed", err.Error() + " (answered 500: Wazzup delivers it again)"})
}

func (r *report) status(st wazzup.Status) {
	line := fmt.Sprintf("status of sent message %s: %s", st.MessageID, st.Status)
	if st.Error != nil {
		line += fmt.Sprintf(" (%s: %s)", st.Error.Code, st.Error.Description)
	}
	r.printf("%s\n", line)
}

// notifications renders "501 (new client: assigned by round_robin), 502 (…)".
func notifications(ns []engine.Notification) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprintf("%s (%s)", n.User, n.Reason)
	}
	return strings.Join(parts, ", ")
}

// createdTasks returns the tasks reported so far.
func (r *report) createdTasks() []crm.TaskID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tasks)
}
