package chart

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// doc is what a structural test looks at in a rendered chart.
type doc struct {
	root    string
	classes map[string]int // elements counted by class attribute
	texts   []string       // character data of every <text>
	titles  []string       // character data of every <title>
}

// parse checks that svg is well-formed XML with an <svg> root in the SVG
// namespace, and collects its classes and texts.
func parse(t *testing.T, svg []byte) doc {
	t.Helper()
	d := doc{classes: map[string]int{}}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var stack []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 {
				d.root = tok.Name.Local
				if tok.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root namespace %q", tok.Name.Space)
				}
			}
			stack = append(stack, tok.Name.Local)
			for _, a := range tok.Attr {
				if a.Name.Local == "class" {
					for _, c := range strings.Fields(a.Value) {
						d.classes[tok.Name.Local+"."+c]++
					}
				}
				if strings.Contains(a.Value, "NaN") || strings.Contains(a.Value, "Inf") {
					t.Errorf("attribute %s=%q of <%s>", a.Name.Local, a.Value, tok.Name.Local)
				}
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				continue
			}
			switch stack[len(stack)-1] {
			case "text":
				d.texts = append(d.texts, string(tok))
			case "title":
				d.titles = append(d.titles, string(tok))
			}
		}
	}
	if d.root != "svg" {
		t.Errorf("root element %q, want svg", d.root)
	}
	if bytes.Contains(svg, []byte("NaN")) {
		t.Error("output contains NaN")
	}
	for _, bad := range []string{"<script", "href=", "@import", "url("} {
		if bytes.Contains(svg, []byte(bad)) {
			t.Errorf("output contains %q: not standalone", bad)
		}
	}
	return d
}

func render(t *testing.T, c interface{ Render(io.Writer) error }) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := c.Render(&b); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := c.Render(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), again.Bytes()) {
		t.Error("two renders of the same chart differ")
	}
	return b.Bytes()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestLine(t *testing.T) {
	ts := []float64{0, 1, 2, 3, 4}
	tests := []struct {
		name       string
		chart      Line
		wantSeries int
		wantTexts  []string
	}{
		{
			name: "three series with labels",
			chart: Line{
				Title: "users per node", XLabel: "time (s)", YLabel: "users",
				Series: []Series{
					{Name: "max", X: ts, Y: []float64{0, 10, 20, 30, 40}},
					{Name: "mean", X: ts, Y: []float64{0, 5, 10, 15, 20}},
					{Name: "min", X: ts, Y: []float64{0, 1, 2, 3, 4}},
				},
			},
			wantSeries: 3,
			wantTexts:  []string{"users per node", "time (s)", "users", "max", "mean", "min", "0", "40"},
		},
		{
			name: "NaN and Inf points are skipped",
			chart: Line{
				Title: "gaps", XLabel: "x", YLabel: "y",
				Series: []Series{{Name: "s", X: []float64{0, 1, math.NaN(), 3}, Y: []float64{1, math.Inf(1), 2, 3}}},
			},
			wantSeries: 1,
			wantTexts:  []string{"gaps", "s"},
		},
		{
			name:       "no series at all",
			chart:      Line{Title: "empty <&> chart", XLabel: "x", YLabel: "y"},
			wantSeries: 0,
			wantTexts:  []string{"empty <&> chart"},
		},
		{
			name: "a flat series",
			chart: Line{
				Title: "flat", XLabel: "x", YLabel: "y",
				Series: []Series{{Name: "one", X: []float64{5}, Y: []float64{7}}},
			},
			wantSeries: 1,
			wantTexts:  []string{"flat", "one"},
		},
		{
			name: "large values get k and M",
			chart: Line{
				Title: "big", XLabel: "sessions", YLabel: "users",
				Series: []Series{{Name: "s", X: []float64{0, 3e6}, Y: []float64{0, 20000}}},
			},
			wantSeries: 1,
			wantTexts:  []string{"1M", "3M", "20k"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := parse(t, render(t, tt.chart))
			if got := d.classes["g.series"]; got != tt.wantSeries {
				t.Errorf("series groups = %d, want %d", got, tt.wantSeries)
			}
			if got := d.classes["g.legend-item"]; got != tt.wantSeries {
				t.Errorf("legend items = %d, want %d", got, tt.wantSeries)
			}
			for _, s := range tt.wantTexts {
				if !contains(d.texts, s) {
					t.Errorf("no text %q in %q", s, d.texts)
				}
			}
			if d.classes["text.tick"] < 4 {
				t.Errorf("only %d tick labels", d.classes["text.tick"])
			}
		})
	}
}

func TestBars(t *testing.T) {
	policies := []string{"default", "p2c", "random", "dns-only"}
	c := Bars{
		Title: "max/mean per policy", YLabel: "max/mean",
		Categories: policies,
		Series: []BarSeries{
			{Name: "at the end", Values: []float64{1.02, 1.1, 1.2, 1.3}},
			{Name: "worst over time", Values: []float64{1.05, 1.2, math.NaN(), 1.5}},
		},
		ShowValues: true,
	}
	d := parse(t, render(t, c))
	got := map[string]int{
		"rect.bar": d.classes["rect.bar"], "g.bars": d.classes["g.bars"],
		"g.legend-item": d.classes["g.legend-item"], "text.value": d.classes["text.value"],
	}
	want := map[string]int{"rect.bar": 7, "g.bars": 2, "g.legend-item": 2, "text.value": 7}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("element counts (-got +want):\n%s", diff)
	}
	for _, s := range append(policies, "max/mean per policy", "max/mean", "at the end", "worst over time", "1.02", "1.50") {
		if !contains(d.texts, s) {
			t.Errorf("no text %q", s)
		}
	}
	if !contains(d.titles, "p2c, worst over time: 1.20") {
		t.Errorf("bar tooltips %q", d.titles)
	}
}

func TestBarsNegativeAndEmpty(t *testing.T) {
	for _, c := range []Bars{
		{Title: "neg", Categories: []string{"a", "b"}, Series: []BarSeries{{Name: "s", Values: []float64{-1, 2}}}},
		{Title: "none"},
		{Title: "short values", Categories: []string{"a", "b", "c"}, Series: []BarSeries{{Name: "s", Values: []float64{1}}}},
	} {
		d := parse(t, render(t, c))
		if !contains(d.texts, c.Title) {
			t.Errorf("%s: title missing", c.Title)
		}
	}
}

func TestHistogramSeries(t *testing.T) {
	h := Histogram{Bins: 2, Samples: []Sample{
		{Name: "a", Values: []float64{0, 1, 1, 2, math.NaN()}},
		{Name: "b", Values: []float64{2}},
	}}
	// Bins [0,1) and [1,2]: a has 1 then 3 of its 4 values; b 0 then 1.
	want := []Series{
		{Name: "a", X: []float64{0, 0, 1, 1, 2, 2}, Y: []float64{0, 0.25, 0.25, 0.75, 0.75, 0}},
		{Name: "b", X: []float64{0, 0, 1, 1, 2, 2}, Y: []float64{0, 0, 0, 1, 1, 0}},
	}
	if diff := cmp.Diff(h.Series(), want); diff != "" {
		t.Errorf("Series (-got +want):\n%s", diff)
	}
	d := parse(t, render(t, Histogram{Title: "latency", XLabel: "ms", Samples: h.Samples}))
	if d.classes["g.series"] != 2 || !contains(d.texts, "fraction of observations") || !contains(d.texts, "ms") {
		t.Errorf("histogram: classes %v texts %q", d.classes, d.texts)
	}
}

func TestCDF(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want Series
	}{
		{"empty", nil, Series{Name: "x"}},
		{"unsorted with NaN", []float64{3, math.NaN(), 1, 2, 2}, Series{Name: "x", X: []float64{1, 1, 2, 2, 3}, Y: []float64{0, 0.25, 0.5, 0.75, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(CDF("x", tt.in), tt.want); diff != "" {
				t.Errorf("CDF (-got +want):\n%s", diff)
			}
		})
	}
	big := make([]float64, 10_000)
	for i := range big {
		big[i] = float64(len(big) - i)
	}
	s := CDF("big", big)
	if len(s.X) != maxCDFPoints+1 || s.X[1] != 1 || s.X[len(s.X)-1] != 10_000 || s.Y[len(s.Y)-1] != 1 {
		t.Errorf("thinned CDF: %d points, first %v, last %v/%v", len(s.X), s.X[1], s.X[len(s.X)-1], s.Y[len(s.Y)-1])
	}
	parse(t, render(t, Line{Title: "cdf", Series: []Series{s}}))
}

func TestTightAxis(t *testing.T) {
	a := newAxis(21, 101).tight(21, 101)
	if diff := cmp.Diff(a.ticks(), []float64{40, 60, 80, 100}); diff != "" {
		t.Errorf("ticks (-got +want):\n%s", diff)
	}
	if a.lo != 21 || a.hi != 101 {
		t.Errorf("range [%v, %v], want the data's [21, 101]", a.lo, a.hi)
	}
	// A time axis ends where the data does, not at the next nice number.
	d := parse(t, render(t, Line{Title: "t", Series: []Series{{Name: "s", X: []float64{21, 101}, Y: []float64{1, 2}}}}))
	if contains(d.texts, "120") || !contains(d.texts, "100") {
		t.Errorf("tick labels %q", d.texts)
	}
}

func TestAxis(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   []string
	}{
		{0, 1, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{0, 7, []string{"0", "2", "4", "6", "8"}},
		{3, 3, []string{"1", "2", "3", "4", "5"}},
		{0, 0, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{-1, 1, []string{"-1.0", "-0.5", "0.0", "0.5", "1.0"}},
		{0, 12000, []string{"0", "5k", "10k", "15k"}},
		{0, 1.2e6, []string{"0", "0.5M", "1.0M", "1.5M"}},
		{0, 4000, []string{"0", "1000", "2000", "3000", "4000"}},
	}
	for _, tt := range tests {
		a := newAxis(tt.lo, tt.hi)
		var got []string
		for _, v := range a.ticks() {
			got = append(got, a.label(v))
		}
		if diff := cmp.Diff(got, tt.want); diff != "" {
			t.Errorf("newAxis(%v, %v) ticks (-got +want):\n%s", tt.lo, tt.hi, diff)
		}
	}
}
