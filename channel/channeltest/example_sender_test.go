package channeltest_test

import (
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
)

// mySender stands for your adapter. A real one calls its provider's API;
// this toy embeds a Recorder so that the file compiles and passes the suite.
type mySender struct{ *channeltest.Recorder }

// testMySender runs the conformance suite against mySender, on a fresh
// backend per subtest.
func testMySender(t *testing.T) {
	channeltest.TestSender(t, func(t *testing.T) channeltest.Harness {
		// The backend: a sandbox account or a fake of your provider's API
		// (wazzuptest.Server for Wazzup), with one channel. Register its
		// teardown with t.Cleanup.
		backend := channeltest.NewRecorder("wa-1")
		return channeltest.Harness{
			Sender:         mySender{backend},
			Chat:           channel.Chat{Channel: "wa-1", ChatID: "79161234567"},
			UnknownChannel: "wa-404",
			// Make the backend fail the next n sends the way your adapter
			// must report as want (429 for channel.ErrRateLimited…).
			FailNext: backend.FailNext,
			// How many messages reached the backend, repeats excluded.
			Delivered: func() int { return len(backend.Sent()) },
		}
	})
}

// A Sender's tests run the conformance suite. In your package's tests,
// call channeltest.TestSender from a TestXxx function, as testMySender does:
//
//	func TestMySender(t *testing.T) { testMySender(t) }
//
// and run it under -race: subtests send from many goroutines. Leave
// UnknownChannel, FailNext or Delivered empty to skip the subtests that
// need them.
func ExampleTestSender() {
	var _ func(*testing.T) = testMySender
}
