package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// Chart geometry of the timeline, in SVG units.
const (
	chartW     = 960
	chartLeft  = 90 // room for the panel's label and scale
	chartRight = 10
	panelH     = 70
	panelGap   = 22
)

// timeline draws a source's sets on a time axis as an SVG: one panel each
// for the stored size, the changed paths and the duration, a bar per set
// (fulls blue, differentials green) with its numbers as a tooltip.
func timeline(sets []SetRow) template.HTML {
	if len(sets) == 0 {
		return ""
	}
	type point struct {
		t                time.Time
		full             bool
		stored, changed  float64
		d                time.Duration
		id, title, class string
	}
	pts := make([]point, len(sets))
	var maxS, maxC, maxD float64
	for i, s := range sets {
		d := s.Duration
		p := point{t: s.Started, full: s.Kind == "full", stored: float64(s.Stats.StoredBytes),
			changed: float64(s.Stats.Changed), d: d, id: s.ID}
		if p.full {
			p.changed = float64(s.Stats.Files)
			p.class = "full"
		} else {
			p.class = "diff"
		}
		p.title = fmt.Sprintf("%s (%s): stored %s, %d changed paths, %d files %s, %s", s.ID, s.Kind,
			humanBytes(s.Stats.StoredBytes), s.Stats.Changed, s.Stats.Files, humanBytes(s.Stats.Bytes), d.Round(100*time.Millisecond))
		maxS, maxC, maxD = max(maxS, p.stored), max(maxC, p.changed), max(maxD, d.Seconds())
		pts[i] = p
	}
	t0, t1 := pts[0].t, pts[len(pts)-1].t
	span := t1.Sub(t0).Seconds()
	plotW := float64(chartW - chartLeft - chartRight)
	bw := min(max(plotW/float64(len(pts))*0.7, 1), 14)
	x := func(t time.Time) float64 {
		if span == 0 {
			return chartLeft + plotW/2
		}
		return chartLeft + bw/2 + (plotW-bw)*t.Sub(t0).Seconds()/span
	}
	height := 3*(panelH+panelGap) + 20
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="timeline of %d sets">`, chartW, height, len(pts))
	panels := []struct {
		label, scale string
		max          float64
		v            func(p point) float64
	}{
		{"stored", humanBytes(int64(maxS)), maxS, func(p point) float64 { return p.stored }},
		{"changed", fmt.Sprintf("%.0f paths", maxC), maxC, func(p point) float64 { return p.changed }},
		{"duration", (time.Duration(maxD * float64(time.Second))).Round(100 * time.Millisecond).String(), maxD, func(p point) float64 { return p.d.Seconds() }},
	}
	for i, pn := range panels {
		top := float64(i*(panelH+panelGap) + 6)
		fmt.Fprintf(&b, `<text class="label" x="4" y="%.0f">%s</text>`, top+12, pn.label)
		fmt.Fprintf(&b, `<text class="scale" x="4" y="%.0f">%s</text>`, top+28, template.HTMLEscapeString(pn.scale))
		fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, chartLeft, top+panelH, chartW-chartRight, top+panelH)
	}
	// One group per set, its bar in each panel, its numbers as the tooltip.
	for _, p := range pts {
		fmt.Fprintf(&b, `<g class="set %s" data-set="%s"><title>%s</title>`, p.class, p.id, template.HTMLEscapeString(p.title))
		for i, pn := range panels {
			base := float64(i*(panelH+panelGap)+6) + panelH
			h := 0.0
			if pn.max > 0 {
				h = max(pn.v(p)/pn.max*panelH, 1)
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x(p.t)-bw/2, base-h, bw, h)
		}
		b.WriteString(`</g>`)
	}
	y := float64(3*(panelH+panelGap) + 10)
	fmt.Fprintf(&b, `<text class="tick" x="%d" y="%.0f">%s</text>`, chartLeft, y, showTime(t0))
	if span > 0 {
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%.0f" text-anchor="end">%s</text>`, chartW-chartRight, y, showTime(t1))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
