package wazzup_test

import (
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
)

// unknownChannel is a well-formed channel ID the fake does not know.
const unknownChannel = channel.ID("0000dead-0000-4000-8000-000000000000")

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name   string
		static bool // kinds given in Options.Channels instead of looked up
	}{
		{"LookedUpChannels", false},
		{"StaticChannels", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			channeltest.TestSender(t, func(t *testing.T) channeltest.Harness {
				srv := wazzuptest.NewServer(wazzuptest.Options{})
				t.Cleanup(srv.Close)
				wa := srv.AddChannel("whatsapp", "79000000000")
				opt := wazzup.Options{APIKey: srv.APIKey, BaseURL: srv.URL, MaxAttempts: 1}
				if tc.static {
					opt.Channels = map[channel.ID]channel.Kind{wa: channel.WhatsApp}
					opt.ChannelsRefresh = -1
				}
				s, err := wazzup.NewSender(opt)
				if err != nil {
					t.Fatal(err)
				}
				return channeltest.Harness{
					Sender:         s,
					Chat:           channel.Chat{Channel: wa, ChatID: "79161234567"},
					UnknownChannel: unknownChannel,
					FailNext:       srv.FailNext,
					Delivered:      srv.Delivered,
				}
			})
		})
	}
}
