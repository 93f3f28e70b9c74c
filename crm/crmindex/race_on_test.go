//go:build race

package crmindex_test

// raceEnabled shrinks the comparison with the Fake under -race, where
// the Fake's phone matching runs about ten times slower.
const raceEnabled = true
