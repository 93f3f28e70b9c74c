package pgstore_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/routing/pgstore"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Every instance of a host opens the same database and builds its Engine
// on one account's view; the instances then share leases, client
// records, the journal, claims, rotation and streaks. A maintenance loop
// purges the journal in small batches.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	db, err := pgstore.Open(ctx, pool, pgstore.Options{}) // creates or migrates the schema
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	acme := db.Account("acme")
	e, err := engine.New(ctx, engine.Options{
		CRM:    crmtest.NewSeeded(nil),    // the host's amoCRM adapter
		Sender: channeltest.NewRecorder(), // the host's Wazzup sender
		State:  acme, Claims: acme, Rotation: acme, Streaks: acme.Streaks(),
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = e // feed it the webhooks' events

	go func() {
		for range time.Tick(time.Minute) {
			for {
				n, err := acme.Purge(ctx, time.Now().Add(-72*time.Hour), 1000)
				if err != nil || n == 0 {
					break
				}
			}
		}
	}()
}
