package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/routing/engine/enginetest"
	"github.com/crmbridge/crmbridge/routing/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestEngineState(t *testing.T) {
	enginetest.TestState(t, func(t *testing.T) enginetest.Backend {
		b := fresh(t)
		return func(account string) engine.State { return b(account) }
	})
}

func engineKey(chat channel.Chat, id string) engine.MessageKey {
	return engine.MessageKey{Chat: chat, Kind: 1, ID: id}
}

func doneRecord() engine.MessageRecord { return engine.MessageRecord{Done: true, Outcome: "x"} }

// TestLeasesAcrossInstances: two DB values on separate pools (two host
// instances) exclude each other on one chat, and a waiter on one is
// granted the lease soon after the other releases it.
func TestLeasesAcrossInstances(t *testing.T) {
	dsn := testPool(t).Config().ConnString()
	run := randomID()
	var states []*pgstore.Account
	for range 2 {
		pool, err := pgxpool.New(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		// A long poll: waiters across instances are woken by NOTIFY.
		db, err := pgstore.Open(t.Context(), pool, pgstore.Options{Schema: "crmbridge_test", LockPoll: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		states = append(states, db.Account(run))
	}
	chat := channel.Chat{Channel: "wa", ChatID: "1"}
	const workers, rounds = 8, 10
	var wg sync.WaitGroup
	for w := range workers {
		s := states[w%2]
		wg.Go(func() {
			for range rounds {
				l, err := s.Lock(t.Context(), chat, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				r, _, err := s.Client(t.Context(), chat)
				if err != nil {
					t.Error(err)
				}
				n, _ := strconv.Atoi(string(r.Contact))
				r.Contact = crm.ContactID(strconv.Itoa(n + 1))
				if err := s.PutClient(t.Context(), l, r); err != nil {
					t.Error(err)
				}
				if err := s.Unlock(t.Context(), l); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	r, _, _ := states[0].Client(t.Context(), chat)
	if r.Contact != crm.ContactID(strconv.Itoa(workers*rounds)) {
		t.Errorf("counter under leases from two instances = %q; want %d", r.Contact, workers*rounds)
	}
}

func TestMessageRetention(t *testing.T) {
	pool := testPool(t)
	db, err := pgstore.Open(t.Context(), pool, pgstore.Options{Schema: "crmbridge_test", Retention: time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := db.Account("retention-" + randomID())
	chat := channel.Chat{Channel: "wa", ChatID: "1"}
	l, err := s.Lock(t.Context(), chat, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unlock(t.Context(), l)
	k := engineKey(chat, "m")
	if err := s.PutMessage(t.Context(), l, k, doneRecord()); err != nil {
		t.Fatal(err)
	}
	// A statement later is more than a microsecond later.
	if _, found, err := s.Message(t.Context(), k); err != nil || found {
		t.Errorf("Message of a record older than Retention = %v, %v; want not found", found, err)
	}
}

// TestPurgeDoesNotBlockEvents: a journal row an event is writing (locked
// by its open transaction) is skipped by Purge, which neither waits for
// it nor deletes it.
func TestPurgeDoesNotBlockEvents(t *testing.T) {
	s := fresh(t)("acme")
	ctx := t.Context()
	chat := channel.Chat{Channel: "wa", ChatID: "1"}
	l, err := s.Lock(ctx, chat, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.PutMessage(ctx, l, engineKey(chat, fmt.Sprint("m", i)), doneRecord()); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := testPool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT 1 FROM crmbridge_test.messages WHERE account = $1 AND id = $2 FOR UPDATE`,
		[]byte(s.ID()), []byte("m1")); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := s.Purge(pctx, time.Now().Add(time.Hour), 10)
	if err != nil || n != 2 {
		t.Errorf("Purge beside a row being written = %d, %v; want the 2 other rows, without waiting", n, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.Message(ctx, engineKey(chat, "m1")); !found {
		t.Errorf("the row being written must survive the Purge")
	}
}

// TestFencingUnderExpiry: goroutines take leases so short that many expire
// before their write; each writes its own fence into the record. A
// trigger refuses any write whose fence is below the stored one, so a
// stale holder's write landing after a newer holder's would fail the
// statement: every write must either succeed in fence order or be refused
// with ErrLeaseLost.
func TestFencingUnderExpiry(t *testing.T) {
	pool := testPool(t)
	schema := freshSchema(t)
	db, err := pgstore.Open(t.Context(), pool, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	q := pgx.Identifier{schema}.Sanitize()
	if _, err := pool.Exec(t.Context(), `CREATE FUNCTION `+q+`.fence_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF convert_from(NEW.contact, 'UTF8')::bigint < convert_from(OLD.contact, 'UTF8')::bigint THEN
		RAISE EXCEPTION 'stale write: fence % after %', convert_from(NEW.contact, 'UTF8'), convert_from(OLD.contact, 'UTF8');
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER fence_order BEFORE UPDATE ON `+q+`.clients FOR EACH ROW EXECUTE FUNCTION `+q+`.fence_order()`); err != nil {
		t.Fatal(err)
	}
	s := db.Account("acme")
	chat := channel.Chat{Channel: "wa", ChatID: "1"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	written, lost := 0, 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				ttl := time.Duration(1+(g+i)%3*4) * time.Millisecond // 1, 5 or 9 ms
				l, err := s.Lock(t.Context(), chat, ttl)
				if err != nil {
					t.Error(err)
					return
				}
				err = s.PutClient(t.Context(), l, engine.ClientRecord{Contact: crm.ContactID(strconv.FormatUint(l.Fence, 10))})
				mu.Lock()
				switch {
				case err == nil:
					written++
				case errors.Is(err, engine.ErrLeaseLost):
					lost++
				default:
					t.Errorf("PutClient under fence %d: %v; want success or ErrLeaseLost", l.Fence, err)
				}
				mu.Unlock()
				_ = s.Unlock(t.Context(), l)
			}
		})
	}
	wg.Wait()
	t.Logf("%d writes, %d refused with ErrLeaseLost", written, lost)
	// A store refusing every write would pass the checks above.
	if written == 0 {
		t.Errorf("no write of %d succeeded; want the holders of unexpired leases to write", lost)
	}
}
