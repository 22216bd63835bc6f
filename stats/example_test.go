package stats_test

import (
	"fmt"
	"slices"
	"time"

	"github.com/switchboard/switchboard/stats"
)

func ExampleQuantile() {
	connect := []time.Duration{9, 2, 4, 7, 1, 3, 8, 6, 5, 10}
	for i := range connect {
		connect[i] *= time.Millisecond
	}
	slices.Sort(connect)
	fmt.Println("p50", stats.Quantile(connect, 0.50))
	fmt.Println("p90", stats.Quantile(connect, 0.90))
	fmt.Println("max", stats.Quantile(connect, 1))
	// Output:
	// p50 5ms
	// p90 9ms
	// max 10ms
}

func ExampleMaxMean() {
	perNode := []int{1250, 1250, 1250, 250}
	lo, hi := stats.Range(perNode)
	fmt.Printf("min %d max %d mean %.0f max/mean %.2f\n", lo, hi, stats.Mean(perNode), stats.MaxMean(perNode))
	// Output: min 250 max 1250 mean 1000 max/mean 1.25
}
