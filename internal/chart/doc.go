// Package chart writes small, standalone SVG charts: line charts of series
// over time, histograms and CDFs of samples (latencies), and grouped bar
// charts. It exists so that `switchboard bench` and `switchboard sim` can
// draw their results without any outside tool or asset.
//
// # Walk-through
//
// Build a chart value and render it to any io.Writer:
//
//	c := chart.Line{
//		Title:  "users per node, policy default",
//		XLabel: "time (s)",
//		YLabel: "users",
//		Series: []chart.Series{
//			{Name: "max", X: ts, Y: maxes},
//			{Name: "mean", X: ts, Y: means},
//		},
//	}
//	err := c.Render(w)
//
// A latency distribution is a Line of chart.CDF series (one per policy), or
// a Histogram of the raw samples. Per-policy figures are a Bars chart: one
// category per policy, one bar series per measure.
//
// # Output
//
// Every chart is one <svg> element with an xmlns, a title, axes with ticks
// and labels, and a legend; it uses no script, font file, stylesheet or
// image, so it displays as an <img> in Markdown. The same input gives the
// same bytes: numbers are printed with fixed precision, colours come from
// a fixed palette in series order. Points that are NaN or infinite are
// skipped, so the output never contains "NaN". Text is XML-escaped.
//
// # Caller's duties
//
//   - Give each Series X and Y of the same length (extra values of the
//     longer one are ignored), and each BarSeries one value per category.
//   - Render does not block other than on w, keeps nothing, and may be
//     called from any goroutine; chart values are not modified.
package chart
