package routing

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
)

var updateRotationGolden = flag.Bool("update-rotation-golden", false, "rewrite testdata/rotation_first100.golden")

// scenario is the fixed schedule behind the golden file and the restart
// test: who is on the channel, who receives, who is unavailable, by pick.
type scenario struct{}

func (scenario) table(t testing.TB, pick int) *roles.Table {
	as := []roles.Assignment{
		{User: "qc", Channel: "wa", Role: roles.QualityControl},
		{User: "9", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "23", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "7", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
		{User: "88", Channel: "wa", Role: roles.Manager, ReceivesNewClients: pick <= 40 || pick > 70},
		{User: "boss", Channel: "wa", Role: roles.Supervisor, ReceivesNewClients: pick > 50},
	}
	if pick <= 80 {
		as = append(as, roles.Assignment{User: "101", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true})
	}
	if pick > 60 {
		as = append(as, roles.Assignment{User: "5", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true})
	}
	tbl, err := roles.NewTable(as)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func (scenario) available(pick *int) Availability {
	return func(_ context.Context, _ channel.ID, u crm.UserID) bool {
		return !(u == "7" && *pick > 20 && *pick <= 45) && !(u == "23" && *pick%10 == 0)
	}
}

// runScenario makes picks from..to (1-based) and returns one line each.
func runScenario(t testing.TB, store *MemoryRotation, from, to int) []string {
	var sc scenario
	var pick int
	d := NewDistributor(DistributorOptions{Rotation: store, Available: sc.available(&pick)})
	var lines []string
	for pick = from; pick <= to; pick++ {
		dec, err := d.RoundRobin(context.Background(), sc.table(t, pick), "wa")
		if err != nil {
			t.Fatalf("pick %d: %v", pick, err)
		}
		lines = append(lines, dec.String())
	}
	return lines
}

// TestRotationGolden pins the first 100 picks of a schedule with joins,
// leaves, toggles and unavailability, explanations included.
func TestRotationGolden(t *testing.T) {
	got := strings.Join(runScenario(t, &MemoryRotation{}, 1, 100), "\n") + "\n"
	path := filepath.Join("testdata", "rotation_first100.golden")
	if *updateRotationGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestRotationGolden -update-rotation-golden to create it)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("pick %d differs from %s:\n got: %s\nwant: %s\n(if intended, rerun with -update-rotation-golden)", i+1, path, gl[i], wl[i])
			}
		}
		t.Fatalf("%s: %d lines, want %d", path, len(gl), len(wl))
	}
}

// TestRotationRestart: a new Distributor on the same store continues the
// sequence exactly as an uninterrupted one, and the picks stay fair.
func TestRotationRestart(t *testing.T) {
	whole := runScenario(t, &MemoryRotation{}, 1, 100)
	shared := &MemoryRotation{}
	var parts []string
	for _, r := range [][2]int{{1, 17}, {18, 50}, {51, 51}, {52, 100}} {
		parts = append(parts, runScenario(t, shared, r[0], r[1])...) // a new Distributor each time
	}
	if !slices.Equal(whole, parts) {
		for i := range whole {
			if whole[i] != parts[i] {
				t.Fatalf("pick %d after restarts:\n got: %s\nwant: %s", i+1, parts[i], whole[i])
			}
		}
	}
}

// fairness checks the pairwise bound: for any two employees while both are
// continuously eligible, their pick counts differ by at most one.
type fairness struct {
	eligible map[crm.UserID]bool
	pairs    map[[2]crm.UserID]*[2]int // counts since both became eligible
}

func newFairness() *fairness {
	return &fairness{eligible: map[crm.UserID]bool{}, pairs: map[[2]crm.UserID]*[2]int{}}
}

func pairKey(a, b crm.UserID) ([2]crm.UserID, int) {
	if a < b {
		return [2]crm.UserID{a, b}, 0
	}
	return [2]crm.UserID{b, a}, 1
}

// set records the new eligible set; pairs broken by the change restart.
func (f *fairness) set(eligible []crm.UserID) {
	now := map[crm.UserID]bool{}
	for _, u := range eligible {
		now[u] = true
	}
	for k := range f.pairs {
		if !now[k[0]] || !now[k[1]] {
			delete(f.pairs, k)
		}
	}
	for _, a := range eligible {
		for _, b := range eligible {
			if a < b {
				if _, ok := f.pairs[[2]crm.UserID{a, b}]; !ok {
					f.pairs[[2]crm.UserID{a, b}] = new([2]int)
				}
			}
		}
	}
	f.eligible = now
}

func (f *fairness) picked(u crm.UserID) error {
	if !f.eligible[u] {
		return fmt.Errorf("picked %s, who is not eligible", u)
	}
	for v := range f.eligible {
		if v == u {
			continue
		}
		k, i := pairKey(u, v)
		c := f.pairs[k]
		c[i]++
		if d := c[0] - c[1]; d > 1 || d < -1 {
			return fmt.Errorf("%s and %s continuously eligible: counts %d and %d", k[0], k[1], c[0], c[1])
		}
	}
	return nil
}

// TestRotationFairnessRandom is a randomized state-machine test: random
// sequences of picks, joins, leaves, role changes, "receives new clients"
// toggles and availability changes, with the pairwise bound checked after
// every pick.
func TestRotationFairnessRandom(t *testing.T) {
	seeds, steps := 200, 400
	if testing.Short() {
		seeds = 40
	}
	users := []crm.UserID{"a", "b", "c", "d", "e", "f", "g", "h"}
	roleChoices := []roles.Role{roles.NoRole, roles.QualityControl, roles.Manager, roles.Manager, roles.Supervisor}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 99))
		role := map[crm.UserID]roles.Role{}
		recv := map[crm.UserID]bool{}
		away := map[crm.UserID]bool{}
		for _, u := range users {
			role[u] = roleChoices[rng.IntN(len(roleChoices))]
			recv[u] = role[u].MayWrite() && rng.IntN(4) > 0
		}
		d := NewDistributor(DistributorOptions{
			Available: func(_ context.Context, _ channel.ID, u crm.UserID) bool { return !away[u] },
		})
		f := newFairness()
		var tbl *roles.Table
		rebuild := func() {
			var as []roles.Assignment
			var eligible []crm.UserID
			for _, u := range users {
				if role[u] == roles.NoRole {
					continue
				}
				as = append(as, roles.Assignment{User: u, Channel: "wa", Role: role[u], ReceivesNewClients: recv[u]})
				if recv[u] && !away[u] {
					eligible = append(eligible, u)
				}
			}
			var err error
			if tbl, err = roles.NewTable(as); err != nil {
				t.Fatal(err)
			}
			f.set(eligible)
		}
		rebuild()
		var log []string
		for step := range steps {
			u := users[rng.IntN(len(users))]
			switch op := rng.IntN(10); {
			case op < 6: // most steps are picks
				dec, err := d.RoundRobin(t.Context(), tbl, "wa")
				if len(f.eligible) == 0 {
					if _, ok := err.(*NoEligibleError); !ok {
						t.Fatalf("seed %d step %d: nobody eligible but RoundRobin = %v, %v", seed, step, dec, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("seed %d step %d: %v", seed, step, err)
				}
				log = append(log, "pick "+string(dec.User))
				if err := f.picked(dec.User); err != nil {
					t.Fatalf("seed %d step %d: %v\nlast ops: %s", seed, step, err, strings.Join(log[max(0, len(log)-20):], "; "))
				}
			case op == 6: // join or leave
				if role[u] == roles.NoRole {
					role[u], recv[u] = roles.Manager, true
					log = append(log, "join "+string(u))
				} else {
					role[u], recv[u] = roles.NoRole, false
					log = append(log, "leave "+string(u))
				}
			case op == 7: // toggle "receives new clients"
				if role[u].MayWrite() {
					recv[u] = !recv[u]
					log = append(log, fmt.Sprintf("receives %s=%v", u, recv[u]))
				}
			case op == 8: // availability
				away[u] = !away[u]
				log = append(log, fmt.Sprintf("away %s=%v", u, away[u]))
			case op == 9: // role change
				role[u] = roleChoices[1+rng.IntN(len(roleChoices)-1)]
				recv[u] = recv[u] && role[u].MayWrite()
				log = append(log, fmt.Sprintf("role %s=%v", u, role[u]))
			}
			rebuild()
		}
	}
}

// TestRotationFairnessConcurrent: pickers run concurrently while a mutator
// keeps changing other employees' membership, switch and availability. The
// core employees are eligible throughout, so (in the store's sequence
// order) their counts differ by at most one, and between two picks of
// anyone each core employee is picked at least once.
func TestRotationFairnessConcurrent(t *testing.T) {
	pickers, perPicker := 8, 1000
	if testing.Short() {
		perPicker = 200
	}
	core := []crm.UserID{"c1", "c2", "c3", "c4"}
	churn := []crm.UserID{"x1", "x2", "x3", "x4"}
	var away [4]atomic.Bool
	var tbl atomic.Pointer[roles.Table]
	build := func(member, recv [4]bool) *roles.Table {
		var as []roles.Assignment
		for _, u := range core {
			as = append(as, roles.Assignment{User: u, Channel: "wa", Role: roles.Manager, ReceivesNewClients: true})
		}
		for i, u := range churn {
			if member[i] {
				as = append(as, roles.Assignment{User: u, Channel: "wa", Role: roles.Supervisor, ReceivesNewClients: recv[i]})
			}
		}
		tb, err := roles.NewTable(as)
		if err != nil {
			panic(err)
		}
		return tb
	}
	tbl.Store(build([4]bool{true, true, true, true}, [4]bool{true, true, true, true}))
	d := NewDistributor(DistributorOptions{
		Available: func(_ context.Context, _ channel.ID, u crm.UserID) bool {
			if i := slices.Index(churn, u); i >= 0 {
				return !away[i].Load()
			}
			return true
		},
	})

	stop := make(chan struct{})
	mutated := make(chan int)
	go func() {
		rng := rand.New(rand.NewPCG(7, 7))
		var member, recv [4]bool
		n := 0
		for {
			select {
			case <-stop:
				mutated <- n
				return
			default:
			}
			i := rng.IntN(4)
			switch rng.IntN(3) {
			case 0:
				member[i] = !member[i]
			case 1:
				recv[i] = !recv[i]
			case 2:
				away[i].Store(!away[i].Load())
			}
			tbl.Store(build(member, recv))
			n++
		}
	}()

	start := make(chan struct{})
	var wg sync.WaitGroup
	results := make([][]Decision, pickers)
	errs := make(chan error, pickers)
	for p := range pickers {
		wg.Go(func() {
			<-start
			for range perPicker {
				dec, err := d.RoundRobin(t.Context(), tbl.Load(), "wa")
				if err != nil {
					errs <- err
					return
				}
				results[p] = append(results[p], dec)
			}
		})
	}
	close(start)
	wg.Wait()
	close(stop)
	t.Logf("%d state changes during %d picks", <-mutated, pickers*perPicker)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	total := pickers * perPicker
	seq := make([]crm.UserID, total+1)
	for _, rs := range results {
		for _, dec := range rs {
			pos := dec.Why.Position
			if pos < 1 || pos > uint64(total) || seq[pos] != "" {
				t.Fatalf("position %d out of range or given twice", pos)
			}
			seq[pos] = dec.User
		}
	}
	counts := map[crm.UserID]int{}
	lastPick := map[crm.UserID]int{}
	for pos := 1; pos <= total; pos++ {
		u := seq[pos]
		if prev, ok := lastPick[u]; ok {
			for _, c := range core {
				if c != u && lastPick[c] < prev {
					t.Fatalf("%s picked at #%d and #%d without %s in between", u, prev, pos, c)
				}
			}
		}
		lastPick[u] = pos
		counts[u]++
		lo, hi := counts[core[0]], counts[core[0]]
		for _, c := range core {
			lo, hi = min(lo, counts[c]), max(hi, counts[c])
		}
		if hi-lo > 1 {
			t.Fatalf("after #%d core counts %v differ by %d", pos, counts, hi-lo)
		}
	}
	t.Logf("counts: %v", counts)
}
