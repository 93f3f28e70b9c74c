package wazzup

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzFastMatchesSlow: whenever the one-pass decoder accepts a body, the
// item-by-item decoder decodes it to the same Webhook.
func FuzzFastMatchesSlow(f *testing.F) {
	for _, seed := range []string{
		`{"messages":[{"messageId":"m","channelId":"c","chatType":"whatsapp","chatId":"7999","text":"hi","dateTime":"2025-05-06T14:16:00.002Z"}]}`,
		`{"Messages":[{"messageId":"m","channelId":"c","chatId":"1"}],"messages":[{"messageId":"n","channelId":"c","chatId":"1"}]}`,
		`{"meſſages":[{"messageId":"m","channelId":"c","chatId":"1"}],"messages":[]}`,
		`{"mess\u0061ges":[{"messageId":"m","channelId":"c","chatId":"1"}],"messages":[]}`,
		`{"statuses":[{"messageId":"s","status":"read","timestamp":1746540960002}],"test":true}`,
		`{"test":false,"TEST":true}`, `{"messages":null}`, `{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		body = bytes.TrimSpace(body)
		if len(body) == 0 || body[0] != '{' { // DecodeWebhook refuses those first
			return
		}
		fast, ok := decodeFast(body)
		if !ok {
			return
		}
		slow, err := decodeSlow(body)
		if err != nil {
			t.Fatalf("fast path accepted %q, slow path refused: %v", body, err)
		}
		if d := cmp.Diff(slow, fast); d != "" {
			t.Fatalf("fast and slow paths differ on %q (-slow +fast):\n%s", body, d)
		}
	})
}
