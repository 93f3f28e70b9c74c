package wazzup_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/crmbridge/crmbridge/channel/wazzup"
)

// webhookBody is a realistic batch: 20 inbound messages and 20 statuses.
var webhookBody = func() []byte {
	var msgs, sts []string
	for i := range 20 {
		msgs = append(msgs, fmt.Sprintf(`{"messageId":"6a2087e8-e0f4-9999-b968-9d99999%05d","dateTime":"2025-05-06T14:16:00.002Z",`+
			`"channelId":"b96a353b-9999-4cac-8413-ba99999f9810","chatType":"whatsapp","chatId":"7999999%04d","type":"text",`+
			`"isEcho":false,"contact":{"name":"Client %d","avatarUri":"https://store.wazzup24.com/x"},"text":"Hello, how much is it?","status":"inbound"}`, i, i, i))
		sts = append(sts, fmt.Sprintf(`{"messageId":"be3dc577-60c4-4fc8-83a5-8c358e0%05d","timestamp":"2025-02-05T06:01:07.499Z","status":"delivered"}`, i))
	}
	return []byte(`{"messages":[` + strings.Join(msgs, ",") + `],"statuses":[` + strings.Join(sts, ",") + `]}`)
}()

// poisonBody is webhookBody with one malformed message: it takes the
// item-by-item path.
var poisonBody = []byte(strings.Replace(string(webhookBody), `"isEcho":false`, `"isEcho":"no"`, 1))

// BenchmarkDecodeWebhook compares DecodeWebhook (a valid body, and one
// with a malformed item, which is decoded item by item) with the floor
// of any decoder: encoding/json into generic maps.
func BenchmarkDecodeWebhook(b *testing.B) {
	b.Run("DecodeWebhook-one-bad-item", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(poisonBody)))
		for b.Loop() {
			if wh, err := wazzup.DecodeWebhook(poisonBody); err != nil || len(wh.Events.Rejected) != 1 {
				b.Fatal(err, wh.Events.Rejected)
			}
		}
	})
	b.Run("DecodeWebhook", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(webhookBody)))
		for b.Loop() {
			if _, err := wazzup.DecodeWebhook(webhookBody); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-json-map", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(webhookBody)))
		for b.Loop() {
			var v map[string]any
			if err := json.Unmarshal(webhookBody, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
