package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestPostgres runs the bridge on PostgreSQL (CRMBRIDGE_PG_DSN), stops it,
// starts a new one on the same database and account, and checks that the
// restarted bridge remembers: a redelivered message is a duplicate, and the
// round-robin rotation continues where it was.
func TestPostgres(t *testing.T) {
	dsn := os.Getenv(envPGDSN)
	if dsn == "" {
		t.Skip("set " + envPGDSN + " or run: bash ../../.ci/postgres.sh go test -run TestPostgres ./...")
	}
	f := newFakes(t)
	f.env[envPGDSN] = dsn
	f.env[envAccount] = fmt.Sprintf("bridge-test-%d", time.Now().UnixNano())
	ctx := t.Context()

	s, err := loadSettings(nil, envOf(f.env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	startOne := func() (*bridge, *output) {
		logs := newOutput()
		b, err := startWith(ctx, s, testLogger(logs), io.Discard, startOptions{batchWindow: demoBatchWindow})
		if err != nil {
			t.Fatal(err)
		}
		return b, logs
	}

	b, _ := startOne()
	if err := f.wazzup.PostMessages(ctx, b.baseURL+wazzupPath, f.message("m-1", "79161234567", "Hello")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(b.baseURL + healthPath)
	if err != nil {
		t.Fatal(err)
	}
	var health map[string]any
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || health["store"] != "postgres" {
		t.Errorf("health = %d %v, want 200 on postgres", resp.StatusCode, health)
	}
	if err := b.shutdown(); err != nil {
		t.Fatal(err)
	}

	b, logs := startOne()
	defer b.shutdown()
	hook := b.baseURL + wazzupPath
	if err := f.wazzup.PostMessages(ctx, hook, f.message("m-1", "79161234567", "Hello")); err != nil {
		t.Fatal(err)
	}
	if err := f.wazzup.PostMessages(ctx, hook, f.message("m-2", "79161234568", "Hi")); err != nil {
		t.Fatal(err)
	}
	recs := logs.records(t, "client message")
	if len(recs) != 2 || recs[0]["duplicate"] != true || recs[1]["responsible"] != "502" {
		t.Errorf("after the restart: %v, want m-1 a duplicate and the next new client 502's (the rotation went on)", recs)
	}
	if leads := f.amo.Leads(); len(leads) != 2 {
		t.Errorf("leads = %+v, want 2", leads)
	}
}
