package wazzuptest_test

import (
	"testing"

	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
)

// receiptTable stands for your ReceiptStore, such as a database table with
// the key as primary key, where Store inserts, does nothing on conflict,
// and reads the row back. This toy embeds a MemoryReceipts so that the
// file compiles and passes the suite.
type receiptTable struct{ *wazzup.MemoryReceipts }

// testReceiptTable runs the conformance suite against receiptTable.
func testReceiptTable(t *testing.T) {
	table := receiptTable{wazzup.NewMemoryReceipts(0)}
	wazzuptest.TestReceiptStore(t, func(t *testing.T) wazzup.ReceiptStore {
		// Every subtest uses keys of its own, so one shared table serves
		// them all; a store opened per subtest is closed with t.Cleanup.
		return table
	})
}

// A ReceiptStore's tests run the conformance suite. In your package's
// tests, call wazzuptest.TestReceiptStore from a TestXxx function, as
// testReceiptTable does:
//
//	func TestReceiptTable(t *testing.T) { testReceiptTable(t) }
//
// and run it under -race: subtests store one key from many goroutines.
func ExampleTestReceiptStore() {
	var _ func(*testing.T) = testReceiptTable
}
