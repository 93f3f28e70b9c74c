//go:build !race

package crmindex_test

const raceEnabled = false
