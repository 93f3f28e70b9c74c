package pgstore

import "time"

// SetTokenClock makes the token lock's statements on db read the
// database's clock plus d: a suite whose callers share a fake clock sets
// d to that clock minus the real one before each Lock.
func SetTokenClock(db *DB, d time.Duration) { db.tokenClock.Store(int64(d)) }
