//go:build race

package phone

// raceEnabled shrinks the differential samples under -race, where the
// library runs about ten times slower; the race detector adds nothing to
// a comparison of values.
const raceEnabled = true
