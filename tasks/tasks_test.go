package tasks_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/tasks"
)

func TestPlan(t *testing.T) {
	on := tasks.Settings{Enabled: true}
	cases := map[string]struct {
		s    tasks.Settings
		ev   tasks.Event
		want tasks.Action
	}{
		"client opens":      {on, tasks.ClientMessage, tasks.Open},
		"reply closes":      {on, tasks.EmployeeReply, tasks.Close},
		"reset closes":      {on, tasks.UnreadReset, tasks.Close},
		"bot does nothing":  {on, tasks.BotMessage, tasks.None},
		"off: client":       {tasks.Settings{}, tasks.ClientMessage, tasks.None},
		"off: reply":        {tasks.Settings{}, tasks.EmployeeReply, tasks.None},
		"off: unread reset": {tasks.Settings{}, tasks.UnreadReset, tasks.None},
		"off: bot":          {tasks.Settings{}, tasks.BotMessage, tasks.None},
	}
	for name, tc := range cases {
		if got := tasks.Plan(tc.s, tc.ev); got != tc.want {
			t.Errorf("%s: Plan = %v; want %v", name, got, tc.want)
		}
	}
}

func TestSpec(t *testing.T) {
	first := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	ch := channel.Channel{ID: "wa-1", Kind: channel.WhatsApp, Name: "WhatsApp sales"}
	chat := channel.Chat{Channel: "wa-1", ChatID: "79161234567"}
	got := tasks.Spec(tasks.Settings{Enabled: true}, ch, chat, first, "d1", "c1", "u1")
	want := crm.NewTask{Deal: "d1", Responsible: "u1", Deadline: first.Add(time.Hour),
		Text: "Reply to the client: unanswered message in WhatsApp sales (79161234567)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Spec default (-want +got):\n%s", diff)
	}
	got = tasks.Spec(tasks.Settings{Enabled: true, Deadline: tasks.Duration(15 * time.Minute), Text: "Ответьте в {channel}"},
		channel.Channel{ID: "tg"}, chat, first, "", "c1", "")
	want = crm.NewTask{Contact: "c1", Deadline: first.Add(15 * time.Minute), Text: "Ответьте в tg"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Spec custom, no deal (-want +got):\n%s", diff)
	}
}

func TestSettingsJSON(t *testing.T) {
	in := tasks.Settings{Enabled: true, Deadline: tasks.Duration(90 * time.Minute), Text: "x"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"enabled":true,"deadline":"1h30m0s","text":"x"}` {
		t.Errorf("Marshal = %s", b)
	}
	var out tasks.Settings
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("round trip = %+v, %v; want %+v", out, err, in)
	}
	if err := json.Unmarshal([]byte(`{"deadline":"soon"}`), &out); !errors.Is(err, tasks.ErrInvalid) {
		t.Errorf("bad deadline: err = %v; want ErrInvalid", err)
	}
	if err := (tasks.Settings{Deadline: -1}).Validate(); !errors.Is(err, tasks.ErrInvalid) {
		t.Errorf("negative deadline: Validate = %v; want ErrInvalid", err)
	}
	// A blank text would pass here and then make every task creation fail
	// (crm.NewTask.Problems): refused at configuration instead.
	if err := (tasks.Settings{Enabled: true, Text: " \t "}).Validate(); !errors.Is(err, tasks.ErrInvalid) {
		t.Errorf("blank text: Validate = %v; want ErrInvalid", err)
	}
	for _, ok := range []tasks.Settings{{Enabled: true}, {Enabled: true, Text: "Reply to {chat}"}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v; want nil", ok, err)
		}
	}
}

func TestStoreLifecycle(t *testing.T) {
	var s tasks.MemoryStore
	ctx := t.Context()
	chat := channel.Chat{Channel: "wa", ChatID: "1"}
	t0 := time.Unix(100, 0)
	st, opened, err := s.Open(ctx, chat, "m1", t0)
	if err != nil || !opened || st.Opener != "m1" {
		t.Fatalf("first Open = %+v, %v, %v", st, opened, err)
	}
	st, opened, _ = s.Open(ctx, chat, "m2", t0.Add(time.Minute))
	if opened || st.Opener != "m1" || !st.Started.Equal(t0) {
		t.Errorf("second Open in a streak = %+v, opened %v; want the m1 streak unchanged", st, opened)
	}
	if err := s.SetTask(ctx, chat, "m2", "t9"); !errors.Is(err, tasks.ErrStreakClosed) {
		t.Errorf("SetTask by a non-opener = %v; want ErrStreakClosed", err)
	}
	if err := s.SetTask(ctx, chat, "m1", "t1"); err != nil {
		t.Fatal(err)
	}
	st, found, _ := s.Close(ctx, chat)
	if !found || st.Task != "t1" {
		t.Errorf("Close = %+v, %v; want the streak with task t1", st, found)
	}
	if _, found, _ := s.Close(ctx, chat); found {
		t.Error("second Close found a streak")
	}
	if err := s.SetTask(ctx, chat, "m1", "t1"); !errors.Is(err, tasks.ErrStreakClosed) {
		t.Errorf("SetTask after Close = %v; want ErrStreakClosed", err)
	}
	if _, opened, _ := s.Open(ctx, chat, "m3", t0); !opened {
		t.Error("Open after Close must start a new streak")
	}
}

// TestOneOpenerPerStreak: many goroutines open the same chat's streak;
// exactly one is the opener, round after round.
func TestOneOpenerPerStreak(t *testing.T) {
	var s tasks.MemoryStore
	chat := channel.Chat{Channel: "wa", ChatID: "1"}
	for round := range 200 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		openers := 0
		start := make(chan struct{})
		for g := range 32 {
			wg.Go(func() {
				<-start
				_, opened, err := s.Open(t.Context(), chat, fmt.Sprintf("r%d-g%d", round, g), time.Time{})
				if err != nil {
					t.Error(err)
				}
				if opened {
					mu.Lock()
					openers++
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if openers != 1 {
			t.Fatalf("round %d: %d openers; want exactly 1", round, openers)
		}
		if _, found, _ := s.Close(t.Context(), chat); !found {
			t.Fatalf("round %d: no streak to close", round)
		}
	}
}
