package sim

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/switchboard/switchboard/pick"
)

// exactMaxLoad is the expected largest bin after n balls into n bins,
// computed by enumerating every outcome with its probability: with one
// choice each ball lands in each bin with probability 1/n; with two, each
// ordered pair of distinct bins has probability 1/(n(n-1)) and the ball
// lands in the emptier one, a tie going either way with probability 1/2.
func exactMaxLoad(n, choices int) float64 {
	var walk func(loads []int, left int) float64
	walk = func(loads []int, left int) float64 {
		if left == 0 {
			return float64(slices.Max(loads))
		}
		sum := 0.0
		put := func(i int, p float64) {
			loads[i]++
			sum += p * walk(loads, left-1)
			loads[i]--
		}
		if choices == 1 {
			for i := range n {
				put(i, 1/float64(n))
			}
			return sum
		}
		pair := 1 / float64(n*(n-1))
		for i := range n {
			for j := range n {
				switch {
				case i == j:
				case loads[i] < loads[j]:
					put(i, pair)
				case loads[j] < loads[i]:
					put(j, pair)
				default:
					put(i, pair/2)
					put(j, pair/2)
				}
			}
		}
		return sum
	}
	return walk(make([]int, n), n)
}

// TestExactMaxLoad checks the enumeration against expectations worked out
// by hand. Two balls, two bins, one choice: both in one bin with
// probability 1/2, so 1.5. Two choices: the second ball always sees the
// first bin fuller, so 1. Three into three, one choice: 6 of the 27
// outcomes are one each, 3 all in one bin, 18 two in one bin: 51/27. Two
// choices: the second ball goes to an empty bin; the third meets two bins
// of one ball (and ties) with probability 1/3: 1 + 1/3.
func TestExactMaxLoad(t *testing.T) {
	got := map[string]float64{}
	for _, n := range []int{2, 3} {
		for _, c := range []int{1, 2} {
			got[fmt.Sprintf("n=%d choices=%d", n, c)] = exactMaxLoad(n, c)
		}
	}
	want := map[string]float64{
		"n=2 choices=1": 1.5,
		"n=2 choices=2": 1,
		"n=3 choices=1": 51.0 / 27,
		"n=3 choices=2": 4.0 / 3,
	}
	if diff := cmp.Diff(got, want, approx); diff != "" {
		t.Errorf("exact expectations (-got +want):\n%s", diff)
	}
}

// TestBallsAgainstExact runs the real choosers many times on tiny inputs
// and checks the mean largest bin against the exact expectation, within
// five standard errors (the largest bin's standard deviation is at most 1
// here, so the bound is 5/sqrt(trials)).
func TestBallsAgainstExact(t *testing.T) {
	const trials = 40_000
	tol := 5 / math.Sqrt(trials)
	for _, n := range []int{2, 3, 4} {
		for _, choices := range []int{1, 2} {
			t.Run(fmt.Sprintf("n=%d choices=%d", n, choices), func(t *testing.T) {
				want := exactMaxLoad(n, choices)
				r := pick.NewRand(uint64(10*n + choices))
				sum := 0
				for range trials {
					most, err := Balls(n, choices, r)
					if err != nil {
						t.Fatal(err)
					}
					sum += most
				}
				got := float64(sum) / trials
				if math.Abs(got-want) > tol {
					t.Errorf("mean largest bin %.4f, exact %.4f (tolerance %.4f)", got, want, tol)
				}
			})
		}
	}
}

func TestBallsErrors(t *testing.T) {
	if _, err := Balls(0, 1, pick.NewRand(1)); err == nil {
		t.Error("Balls into 0 bins: no error")
	}
	if _, err := Balls(3, 3, pick.NewRand(1)); err == nil {
		t.Error("Balls with 3 choices: no error")
	}
}

func TestRunBalls(t *testing.T) {
	row, err := RunBalls(context.Background(), 1000, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	ln := math.Log(1000)
	// Γ(7.174176717188655) = 1000, computed independently.
	if diff := cmp.Diff([]float64{row.TheoryOne, row.TheoryTwo, row.Gonnet}, []float64{ln / math.Log(ln), math.Log(ln) / math.Ln2, 7.174176717188655 - 1.5}, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("theory (-got +want):\n%s", diff)
	}
	// Gonnet's expectation is within half a ball of the measured mean.
	if math.Abs(row.One-row.Gonnet) > 0.5 {
		t.Errorf("one choice: measured %.2f, Gonnet %.2f", row.One, row.Gonnet)
	}
	// Two choices are far better than one at n = 1000: the largest bin is
	// 3 or 4 against 4 to 8 with one choice.
	if row.N != 1000 || row.Trials != 20 || row.Two >= row.One || row.TwoMax > 4 || row.OneMin < 4 || row.OneMin > row.OneMax {
		t.Errorf("row %+v", row)
	}
	again, _ := RunBalls(context.Background(), 1000, 20, 1)
	if diff := cmp.Diff(again, row); diff != "" {
		t.Errorf("same seed, different row (-got +want):\n%s", diff)
	}
	if small, _ := RunBalls(context.Background(), 2, 3, 1); small.TheoryOne != 0 || small.TheoryTwo != 0 || small.Gonnet != 0 {
		t.Errorf("theory for n=2: %+v", small)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RunBalls(ctx, 1000, 5, 1); err == nil {
		t.Error("RunBalls with a cancelled context: no error")
	}
}

func TestBallsTrials(t *testing.T) {
	got := []int{BallsTrials(0), BallsTrials(1000), BallsTrials(100_000), BallsTrials(1_000_000), BallsTrials(10_000_000)}
	if diff := cmp.Diff(got, []int{200, 200, 10, 1, 1}); diff != "" {
		t.Errorf("BallsTrials (-got +want):\n%s", diff)
	}
}
