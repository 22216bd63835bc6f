package chart

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Default canvas size, in SVG user units (pixels).
const (
	DefaultWidth  = 760
	DefaultHeight = 420
)

// palette is the fixed series colours (Tableau 10), used in series order.
var palette = []string{
	"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
	"#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
}

// Color returns the colour of the i-th series, as used in every chart.
func Color(i int) string { return palette[((i%len(palette))+len(palette))%len(palette)] }

// Series is one line of a Line chart: the points (X[i], Y[i]).
type Series struct {
	// Name labels the line in the legend.
	Name string
	// X and Y are the coordinates; only the first min(len(X), len(Y))
	// points are drawn, and points with a NaN or infinite coordinate are
	// skipped.
	X, Y []float64
}

// Line is a line chart of one or more series.
type Line struct {
	// Title is drawn above the plot.
	Title string
	// XLabel and YLabel name the axes, with their units.
	XLabel, YLabel string
	// Series are drawn in order, each in its palette colour.
	Series []Series
	// Width and Height are the canvas size; zero means DefaultWidth and
	// DefaultHeight.
	Width, Height int
}

// Render writes the chart as a standalone SVG document.
func (c Line) Render(w io.Writer) error {
	xs, ys := bounds(c.Series)
	f := newFrame(c.Width, c.Height, c.Title, c.XLabel, c.YLabel, names(c.Series))
	f.xAxis = newAxis(xs.lo, xs.hi).tight(xs.lo, xs.hi)
	f.yAxis = newAxis(min(ys.lo, 0), ys.hi)
	b := f.begin()
	for i, s := range c.Series {
		f.polyline(b, i, s)
	}
	f.legend(b, false)
	return f.end(b, w)
}

// BarSeries is one measure of a Bars chart: one value per category.
type BarSeries struct {
	// Name labels the measure in the legend.
	Name string
	// Values holds one value per category, in the order of
	// Bars.Categories; a NaN or infinite value draws no bar.
	Values []float64
}

// Bars is a grouped bar chart: for each category (a policy, say) one bar
// per series (a measure, say), side by side.
type Bars struct {
	// Title is drawn above the plot.
	Title string
	// YLabel names the value axis, with its unit.
	YLabel string
	// Categories label the groups along the horizontal axis.
	Categories []string
	// Series are the bars of each group, in order.
	Series []BarSeries
	// ShowValues prints each bar's value above it.
	ShowValues bool
	// Width and Height are the canvas size; zero means DefaultWidth and
	// DefaultHeight.
	Width, Height int
}

// Render writes the chart as a standalone SVG document.
func (c Bars) Render(w io.Writer) error {
	var ns []string
	lo, hi := 0.0, math.Inf(-1)
	for _, s := range c.Series {
		ns = append(ns, s.Name)
		for i, v := range s.Values {
			if i < len(c.Categories) && finite(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if math.IsInf(hi, -1) {
		hi = 1
	}
	f := newFrame(c.Width, c.Height, c.Title, "", c.YLabel, ns)
	f.yAxis = newAxis(lo, hi)
	b := f.begin()
	// Category axis: labels centred under each group.
	n := max(len(c.Categories), 1)
	slot := f.pw / float64(n)
	fmt.Fprintf(b, `<g class="axis x">`+"\n")
	fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333"/>`+"\n", num(f.px), num(f.py+f.ph), num(f.px+f.pw), num(f.py+f.ph))
	for i, cat := range c.Categories {
		x := f.px + slot*(float64(i)+0.5)
		fmt.Fprintf(b, `<text class="tick" x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", num(x), num(f.py+f.ph+18), esc(cat))
	}
	fmt.Fprintf(b, "</g>\n")
	group := slot * 0.8
	bw := group / float64(max(len(c.Series), 1))
	zero := f.y(0)
	for si, s := range c.Series {
		fmt.Fprintf(b, `<g class="bars" fill="%s">`+"\n", Color(si))
		for ci := range c.Categories {
			if ci >= len(s.Values) || !finite(s.Values[ci]) {
				continue
			}
			v := s.Values[ci]
			x := f.px + slot*float64(ci) + (slot-group)/2 + bw*float64(si)
			top, bottom := min(f.y(v), zero), max(f.y(v), zero)
			fmt.Fprintf(b, `<rect class="bar" x="%s" y="%s" width="%s" height="%s"><title>%s, %s: %s</title></rect>`+"\n",
				num(x+1), num(top), num(max(bw-2, 1)), num(bottom-top), esc(c.Categories[ci]), esc(s.Name), esc(value(v)))
			if c.ShowValues {
				fmt.Fprintf(b, `<text class="value" x="%s" y="%s" text-anchor="middle" font-size="9" fill="#333">%s</text>`+"\n",
					num(x+bw/2), num(top-3), esc(value(v)))
			}
		}
		fmt.Fprintf(b, "</g>\n")
	}
	f.legend(b, true)
	return f.end(b, w)
}

// Sample is a named set of observations for a Histogram.
type Sample struct {
	// Name labels the sample in the legend.
	Name string
	// Values are the observations; NaN and infinite values are ignored.
	Values []float64
}

// Histogram draws the distribution of one or more samples over common
// bins, each as a step outline of the fraction of its observations per bin
// (so samples of different sizes compare).
type Histogram struct {
	// Title is drawn above the plot.
	Title string
	// XLabel names the observed quantity, with its unit.
	XLabel string
	// Samples are drawn in order, each in its palette colour.
	Samples []Sample
	// Bins is the number of bins; zero means 30.
	Bins int
	// Width and Height are the canvas size; zero means DefaultWidth and
	// DefaultHeight.
	Width, Height int
}

// Render writes the chart as a standalone SVG document.
func (h Histogram) Render(w io.Writer) error {
	return Line{
		Title: h.Title, XLabel: h.XLabel, YLabel: "fraction of observations",
		Series: h.Series(), Width: h.Width, Height: h.Height,
	}.Render(w)
}

// Series returns the step outlines Render draws, one per sample: for each
// bin [a, b) with fraction f the points (a, f) and (b, f), closed to zero at
// both ends. The last bin includes its upper edge.
func (h Histogram) Series() []Series {
	bins := h.Bins
	if bins <= 0 {
		bins = 30
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range h.Samples {
		for _, v := range s.Values {
			if finite(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if lo > hi {
		lo, hi = 0, 1
	}
	if hi == lo {
		hi = lo + 1
	}
	width := (hi - lo) / float64(bins)
	out := make([]Series, 0, len(h.Samples))
	for _, s := range h.Samples {
		counts := make([]int, bins)
		total := 0
		for _, v := range s.Values {
			if !finite(v) {
				continue
			}
			i := min(int((v-lo)/width), bins-1)
			counts[i]++
			total++
		}
		ser := Series{Name: s.Name, X: []float64{lo}, Y: []float64{0}}
		for i, c := range counts {
			frac := 0.0
			if total > 0 {
				frac = float64(c) / float64(total)
			}
			a, b := lo+width*float64(i), lo+width*float64(i+1)
			ser.X = append(ser.X, a, b)
			ser.Y = append(ser.Y, frac, frac)
		}
		ser.X = append(ser.X, hi)
		ser.Y = append(ser.Y, 0)
		out = append(out, ser)
	}
	return out
}

// maxCDFPoints bounds the points of a CDF series.
const maxCDFPoints = 512

// CDF returns the empirical cumulative distribution of values as a series
// to draw in a Line: X are the observations in increasing order and Y the
// fraction of observations at or below each. Large samples are thinned to
// at most 512 evenly spaced ranks (always keeping the smallest and the
// largest). NaN and infinite values are dropped; values is not modified.
func CDF(name string, values []float64) Series {
	v := make([]float64, 0, len(values))
	for _, x := range values {
		if finite(x) {
			v = append(v, x)
		}
	}
	slices.Sort(v)
	s := Series{Name: name}
	n := len(v)
	if n == 0 {
		return s
	}
	s.X = append(s.X, v[0])
	s.Y = append(s.Y, 0)
	m := min(n, maxCDFPoints)
	for j := range m {
		r := j
		if m < n {
			r = int(math.Round(float64(j) * float64(n-1) / float64(m-1)))
		}
		s.X = append(s.X, v[r])
		s.Y = append(s.Y, float64(r+1)/float64(n))
	}
	return s
}

// range1 is an interval of data values.
type range1 struct{ lo, hi float64 }

// bounds returns the ranges of the finite points of the series, [0, 1]
// for an axis without any.
func bounds(series []Series) (xs, ys range1) {
	xs = range1{math.Inf(1), math.Inf(-1)}
	ys = xs
	for _, s := range series {
		for i := range min(len(s.X), len(s.Y)) {
			if finite(s.X[i]) && finite(s.Y[i]) {
				xs.lo, xs.hi = min(xs.lo, s.X[i]), max(xs.hi, s.X[i])
				ys.lo, ys.hi = min(ys.lo, s.Y[i]), max(ys.hi, s.Y[i])
			}
		}
	}
	if xs.lo > xs.hi {
		xs = range1{0, 1}
		ys = range1{0, 1}
	}
	return xs, ys
}

func names(series []Series) []string {
	out := make([]string, len(series))
	for i, s := range series {
		out[i] = s.Name
	}
	return out
}

// axis maps data values to a nicely rounded range with ticks.
type axis struct {
	lo, hi, step float64
}

// newAxis extends [lo, hi] to multiples of a 1-2-5 step giving about five
// ticks. A degenerate range is widened.
func newAxis(lo, hi float64) axis {
	if !finite(lo) || !finite(hi) || lo > hi {
		lo, hi = 0, 1
	}
	if hi == lo {
		if lo == 0 {
			hi = 1
		} else {
			lo, hi = lo-math.Abs(lo)/2, hi+math.Abs(hi)/2
		}
	}
	step := niceStep((hi - lo) / 5)
	a := axis{lo: math.Floor(lo/step+1e-9) * step, hi: math.Ceil(hi/step-1e-9) * step, step: step}
	if a.hi <= a.lo {
		a.hi = a.lo + step
	}
	return a
}

// tight narrows the axis to the data range [lo, hi] (when it is not
// degenerate), keeping the ticks that fall inside: a time axis should end
// where the data does.
func (a axis) tight(lo, hi float64) axis {
	if finite(lo) && finite(hi) && lo < hi {
		a.lo, a.hi = lo, hi
	}
	return a
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch f := raw / mag; {
	case f <= 1:
		return mag
	case f <= 2:
		return 2 * mag
	case f <= 5:
		return 5 * mag
	}
	return 10 * mag
}

// ticks returns the multiples of the step from lo to hi.
func (a axis) ticks() []float64 {
	var out []float64
	eps := a.step * 1e-9
	first := math.Ceil(a.lo/a.step-1e-9) * a.step
	for i := 0; ; i++ {
		v := first + float64(i)*a.step
		if v > a.hi+eps {
			break
		}
		if math.Abs(v) < eps {
			v = 0
		}
		out = append(out, v)
	}
	return out
}

// label prints a tick value with as many decimals as the step needs; on an
// axis reaching 10,000 it counts in thousands (k), and on one reaching a
// million in millions (M).
func (a axis) label(v float64) string {
	div, suffix := 1.0, ""
	switch big := max(math.Abs(a.lo), math.Abs(a.hi)); {
	case big >= 1e6:
		div, suffix = 1e6, "M"
	case big >= 1e4:
		div, suffix = 1e3, "k"
	}
	step := a.step / div
	dec := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	s := strconv.FormatFloat(v/div, 'f', dec, 64)
	if strings.Trim(s, "-0.") == "" {
		if suffix != "" {
			return "0"
		}
		s = strings.TrimPrefix(s, "-")
	}
	return s + suffix
}

// frame is the layout shared by the charts: canvas, plot area, axes.
type frame struct {
	w, h           float64
	px, py, pw, ph float64 // plot area
	title          string
	xlabel, ylabel string
	legendNames    []string
	xAxis, yAxis   axis
}

func newFrame(width, height int, title, xlabel, ylabel string, legendNames []string) *frame {
	if width <= 0 {
		width = DefaultWidth
	}
	if height <= 0 {
		height = DefaultHeight
	}
	longest := 0
	for _, n := range legendNames {
		longest = max(longest, len([]rune(n)))
	}
	right := 24.0
	if len(legendNames) > 0 {
		right = 52 + 7*float64(min(longest, 28))
	}
	f := &frame{w: float64(width), h: float64(height), title: title, xlabel: xlabel, ylabel: ylabel, legendNames: legendNames}
	f.px, f.py = 72, 40
	f.pw = max(f.w-f.px-right, 50)
	f.ph = max(f.h-f.py-56, 50)
	return f
}

func (f *frame) x(v float64) float64 {
	return f.px + (v-f.xAxis.lo)/(f.xAxis.hi-f.xAxis.lo)*f.pw
}

func (f *frame) y(v float64) float64 {
	return f.py + f.ph - (v-f.yAxis.lo)/(f.yAxis.hi-f.yAxis.lo)*f.ph
}

// begin writes the document head, title, grid and axes.
func (f *frame) begin() *strings.Builder {
	b := &strings.Builder{}
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="sans-serif" font-size="11">`+"\n",
		num(f.w), num(f.h), num(f.w), num(f.h))
	fmt.Fprintf(b, "<title>%s</title>\n", esc(f.title))
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	fmt.Fprintf(b, `<text class="title" x="%s" y="22" text-anchor="middle" font-size="14" font-weight="bold">%s</text>`+"\n", num(f.px+f.pw/2), esc(f.title))
	// Value axis, with grid lines.
	fmt.Fprintf(b, `<g class="axis y">`+"\n")
	for _, t := range f.yAxis.ticks() {
		y := f.y(t)
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e5e5e5"/>`+"\n", num(f.px), num(y), num(f.px+f.pw), num(y))
		fmt.Fprintf(b, `<text class="tick" x="%s" y="%s" text-anchor="end">%s</text>`+"\n", num(f.px-6), num(y+4), esc(f.yAxis.label(t)))
	}
	fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333"/>`+"\n", num(f.px), num(f.py), num(f.px), num(f.py+f.ph))
	fmt.Fprintf(b, `<text class="label" transform="translate(16 %s) rotate(-90)" text-anchor="middle">%s</text>`+"\n", num(f.py+f.ph/2), esc(f.ylabel))
	fmt.Fprintf(b, "</g>\n")
	if f.xAxis.step > 0 {
		fmt.Fprintf(b, `<g class="axis x">`+"\n")
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333"/>`+"\n", num(f.px), num(f.py+f.ph), num(f.px+f.pw), num(f.py+f.ph))
		for _, t := range f.xAxis.ticks() {
			x := f.x(t)
			fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333"/>`+"\n", num(x), num(f.py+f.ph), num(x), num(f.py+f.ph+5))
			fmt.Fprintf(b, `<text class="tick" x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", num(x), num(f.py+f.ph+18), esc(f.xAxis.label(t)))
		}
		fmt.Fprintf(b, `<text class="label" x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", num(f.px+f.pw/2), num(f.h-12), esc(f.xlabel))
		fmt.Fprintf(b, "</g>\n")
	}
	return b
}

// polyline draws series s in colour i, splitting it where a point is not
// finite; a lone point is drawn as a dot. Every other series is dashed, so
// that one drawn over an identical one leaves it visible.
func (f *frame) polyline(b *strings.Builder, i int, s Series) {
	fmt.Fprintf(b, `<g class="series" stroke="%s" fill="none" stroke-width="1.8"%s><title>%s</title>`+"\n", Color(i), dash(i), esc(s.Name))
	var pts []string
	flush := func() {
		switch len(pts) {
		case 0:
		case 1:
			xy := strings.Split(pts[0], ",")
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`+"\n", xy[0], xy[1], Color(i))
		default:
			fmt.Fprintf(b, `<polyline points="%s"/>`+"\n", strings.Join(pts, " "))
		}
		pts = pts[:0]
	}
	for j := range min(len(s.X), len(s.Y)) {
		if !finite(s.X[j]) || !finite(s.Y[j]) {
			flush()
			continue
		}
		pts = append(pts, num(f.x(s.X[j]))+","+num(f.y(s.Y[j])))
	}
	flush()
	fmt.Fprintf(b, "</g>\n")
}

// legend lists the series names with their colours, right of the plot.
func (f *frame) legend(b *strings.Builder, boxes bool) {
	if len(f.legendNames) == 0 {
		return
	}
	x := f.px + f.pw + 16
	fmt.Fprintf(b, `<g class="legend">`+"\n")
	for i, name := range f.legendNames {
		y := f.py + 8 + 18*float64(i)
		fmt.Fprintf(b, `<g class="legend-item">`)
		if boxes {
			fmt.Fprintf(b, `<rect x="%s" y="%s" width="12" height="10" fill="%s"/>`, num(x), num(y-8), Color(i))
		} else {
			fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2.5"%s/>`, num(x), num(y-3), num(x+18), num(y-3), Color(i), dash(i))
		}
		fmt.Fprintf(b, `<text x="%s" y="%s">%s</text></g>`+"\n", num(x+24), num(y+1), esc(name))
	}
	fmt.Fprintf(b, "</g>\n")
}

func (f *frame) end(b *strings.Builder, w io.Writer) error {
	b.WriteString("</svg>\n")
	bw := bufio.NewWriter(w)
	if _, err := bw.WriteString(b.String()); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}

// dash is the stroke pattern attribute of line series i: solid for even
// i, dashed for odd.
func dash(i int) string {
	if i%2 == 1 {
		return ` stroke-dasharray="6 3"`
	}
	return ""
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// num prints a coordinate with one decimal.
func num(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// value prints a bar's value with three significant figures or so.
func value(v float64) string {
	switch a := math.Abs(v); {
	case a < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case a < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
