package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/switchboard/switchboard/internal/chart"
	"github.com/switchboard/switchboard/wire"
)

func decodeDirectory(r io.Reader) (*wire.Directory, error) {
	var m wire.Message
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return nil, err
	}
	if m.Op != wire.OpDirectory {
		return nil, errors.New("no directory in the answer")
	}
	return m.Directory(), nil
}

// table prints rows of cells aligned in columns.
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// writeTargets prints the targets with met / NOT MET.
func writeTargets(w io.Writer, targets []Target) {
	if len(targets) == 0 {
		return
	}
	fmt.Fprintln(w)
	var rows [][]string
	for _, t := range targets {
		verdict := "met"
		if !t.Met {
			verdict = "NOT MET"
		}
		rows = append(rows, []string{t.What, t.Want, t.Got, verdict})
	}
	table(w, []string{"target", "want", "got", ""}, rows)
}

// perNode formats counts as "n1=1000 n2=998".
func perNode(m map[string]int) string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", id, m[id]))
	}
	return strings.Join(parts, " ")
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
func f3(v float64) string { return fmt.Sprintf("%.3f", v) }
func pct(v float64) string {
	return fmt.Sprintf("%.1f%%", 100*v)
}

// nodeIDs lists the node IDs of several count maps, sorted.
func nodeIDs(maps_ ...map[string]int) []string {
	seen := map[string]bool{}
	for _, m := range maps_ {
		for k := range m {
			seen[k] = true
		}
	}
	ids := slices.Collect(maps.Keys(seen))
	slices.SortFunc(ids, compareIDs)
	return ids
}

// compareIDs orders "n2" before "n10".
func compareIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// usersBars is a grouped bar chart of users per node (one series per
// node) for each policy.
func usersBars(title string, policies []string, counts []map[string]int) chart.Bars {
	b := chart.Bars{Title: title, YLabel: "sessions", Categories: policies}
	for _, id := range nodeIDs(counts...) {
		s := chart.BarSeries{Name: id}
		for _, m := range counts {
			v, ok := m[id]
			if !ok {
				s.Values = append(s.Values, math.NaN())
				continue
			}
			s.Values = append(s.Values, float64(v))
		}
		b.Series = append(b.Series, s)
	}
	return b
}

// valueBars is a bar chart of one or more measures per policy.
func valueBars(title, ylabel string, policies []string, series ...chart.BarSeries) chart.Bars {
	return chart.Bars{Title: title, YLabel: ylabel, Categories: policies, Series: series, ShowValues: true}
}

// runsCell lists the key figures of repeated runs, "-" for one run.
func runsCell(v []float64, format string) string {
	if len(v) == 0 {
		return "-"
	}
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, " ")
}

// worst is the largest of v and runs: a target on max/mean must hold in
// every run, not only in the median one.
func worst(v float64, runs []float64) float64 {
	for _, r := range runs {
		v = max(v, r)
	}
	return v
}

// withWorst formats a max/mean and, for repeated runs, the worst run's.
func withWorst(v float64, runs []float64) string {
	if len(runs) < 2 {
		return f3(v)
	}
	return fmt.Sprintf("%s (worst of %d runs: %s)", f3(v), len(runs), f3(worst(v, runs)))
}
