package sim

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/pick"
)

// Balls throws n balls, one after another, into n bins and returns the
// most balls in one bin. Each ball is placed by a real chooser of package
// pick over the bins as nodes (users = balls so far, all of capacity n),
// seeing the current counts: with choices 1, pick.Random (one uniform
// choice); with choices 2, pick.P2C (two distinct bins, the less loaded one,
// a tie broken at random). Only the choosers run, not the status filter of
// the named policies, so that a ball costs O(1) and not O(n).
func Balls(n, choices int, r pick.Rand) (int, error) {
	bins, err := newBins(n)
	if err != nil {
		return 0, err
	}
	return bins.throw(choices, r)
}

// bins is a reusable set of n bins.
type bins struct {
	nodes []directory.Node
	users []int
}

func newBins(n int) (*bins, error) {
	if n < 1 {
		return nil, fmt.Errorf("sim: balls into %d bins", n)
	}
	b := &bins{nodes: make([]directory.Node, n), users: make([]int, n)}
	for i := range b.nodes {
		b.nodes[i] = directory.Node{ID: strconv.Itoa(i), Status: directory.Up, Capacity: n}
	}
	return b, nil
}

// throw empties the bins, throws len(bins) balls and returns the most in one bin.
func (b *bins) throw(choices int, r pick.Rand) (int, error) {
	var p pick.Policy
	switch choices {
	case 1:
		p = pick.Random(r)
	case 2:
		p = pick.P2C(r)
	default:
		return 0, fmt.Errorf("sim: balls with %d choices (want 1 or 2)", choices)
	}
	for i := range b.nodes {
		b.nodes[i].Users = 0
	}
	most := 0
	for range b.nodes {
		res, err := p.Pick(b.nodes, pick.Request{})
		if err != nil {
			return 0, err
		}
		i, err := strconv.Atoi(res.Node.ID)
		if err != nil {
			return 0, fmt.Errorf("sim: chooser returned bin %q: %w", res.Node.ID, err)
		}
		b.nodes[i].Users++
		most = max(most, b.nodes[i].Users)
	}
	return most, nil
}

// BallsRow is one line of the balls-into-bins table: n balls into n bins,
// the mean over Trials runs of the largest bin, for one uniform choice and
// for the better of two, next to the leading terms of the theory.
type BallsRow struct {
	// N is the number of balls and of bins.
	N int `json:"n"`
	// Trials is the number of runs averaged.
	Trials int `json:"trials"`
	// One is the mean largest bin with one random choice; OneMin and
	// OneMax its range over the trials.
	One    float64 `json:"one"`
	OneMin int     `json:"one_min"`
	OneMax int     `json:"one_max"`
	// Two is the mean largest bin with the better of two choices; TwoMin
	// and TwoMax its range over the trials.
	Two    float64 `json:"two"`
	TwoMin int     `json:"two_min"`
	TwoMax int     `json:"two_max"`
	// TheoryOne is ln n / ln ln n, the leading term for one choice
	// (Gonnet 1981; Raab and Steger 1998): the largest bin is
	// (1+o(1)) ln n / ln ln n with high probability.
	TheoryOne float64 `json:"theory_one"`
	// Gonnet is Γ⁻¹(n) - 3/2, where Γ⁻¹ is the inverse of the gamma
	// function: Gonnet (1981) showed the expected largest bin with one
	// choice is Γ⁻¹(n) - 3/2 + o(1), which is much closer at these n than
	// the leading term TheoryOne.
	Gonnet float64 `json:"gonnet"`
	// TheoryTwo is ln ln n / ln 2, the leading term for two choices
	// (Azar, Broder, Karlin and Upfal 1994): the largest bin is
	// ln ln n / ln 2 + O(1) with high probability. The three are 0 for
	// n < 3, where ln ln n is not positive.
	TheoryTwo float64 `json:"theory_two"`
}

// BallsTrials is the number of trials RunBalls uses for n when asked for
// none: enough for about a million balls per choice, between 1 and 200.
func BallsTrials(n int) int {
	return min(max(1_000_000/max(n, 1), 1), 200)
}

// RunBalls measures one row of the balls-into-bins table with n balls and
// bins, over trials runs (BallsTrials(n) if trials <= 0) drawn from a
// source seeded with seed. It checks ctx between trials.
func RunBalls(ctx context.Context, n, trials int, seed uint64) (BallsRow, error) {
	if trials <= 0 {
		trials = BallsTrials(n)
	}
	b, err := newBins(n)
	if err != nil {
		return BallsRow{}, err
	}
	row := BallsRow{N: n, Trials: trials}
	if ln := math.Log(float64(n)); ln > 1 {
		row.TheoryOne = ln / math.Log(ln)
		row.TheoryTwo = math.Log(ln) / math.Ln2
		row.Gonnet = invGamma(ln) - 1.5
	}
	r := pick.NewRand(seed ^ uint64(n)*0x9e3779b97f4a7c15)
	for _, c := range []struct {
		choices  int
		mean     *float64
		min, max *int
	}{{1, &row.One, &row.OneMin, &row.OneMax}, {2, &row.Two, &row.TwoMin, &row.TwoMax}} {
		sum := 0
		for t := range trials {
			if err := ctx.Err(); err != nil {
				return row, err
			}
			most, err := b.throw(c.choices, r)
			if err != nil {
				return row, err
			}
			sum += most
			if t == 0 {
				*c.min, *c.max = most, most
			}
			*c.min, *c.max = min(*c.min, most), max(*c.max, most)
		}
		*c.mean = float64(sum) / float64(trials)
	}
	return row, nil
}

// invGamma returns the x >= 2 with ln Γ(x) = lnY, by bisection (ln Γ
// increases from 0 at x = 2); lnY must be in [0, ln Γ(200)].
func invGamma(lnY float64) float64 {
	lo, hi := 2.0, 200.0
	for range 100 {
		mid := (lo + hi) / 2
		if lg, _ := math.Lgamma(mid); lg < lnY {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}
