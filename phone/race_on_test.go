//go:build race

package phone

// raceEnabled shrinks the differential samples under -race, where the
// library runs tens of times slower; the race detector adds nothing to a
// comparison of values, which the plain run makes on the full samples.
const raceEnabled = true
