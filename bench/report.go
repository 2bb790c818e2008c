package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// report is the markdown document the bench prints: sections of notes and
// tables, in the order they were measured.
type report struct {
	sections []*section
}

type section struct {
	title  string
	notes  []string
	tables []*table
}

type table struct {
	header []string
	rows   [][]string
}

func (r *report) section(title string) *section {
	s := &section{title: title}
	r.sections = append(r.sections, s)
	return s
}

func (s *section) note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

func (s *section) table(header ...string) *table {
	t := &table{header: header}
	s.tables = append(s.tables, t)
	return t
}

func (t *table) row(cells ...string) {
	t.rows = append(t.rows, cells)
}

func (r *report) write(w io.Writer, header string) {
	fmt.Fprintf(w, "%s\n", header)
	for _, s := range r.sections {
		fmt.Fprintf(w, "\n## %s\n", s.title)
		for _, t := range s.tables {
			fmt.Fprintf(w, "\n| %s |\n", strings.Join(t.header, " | "))
			seps := make([]string, len(t.header))
			for i := range seps {
				seps[i] = "---"
			}
			fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
			for _, row := range t.rows {
				cells := slices.Clone(row)
				for len(cells) < len(t.header) {
					cells = append(cells, "")
				}
				for i, c := range cells {
					cells[i] = strings.ReplaceAll(c, "|", `\|`)
				}
				fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
			}
		}
		if len(s.notes) > 0 {
			fmt.Fprintln(w)
			for _, n := range s.notes {
				fmt.Fprintf(w, "- %s\n", n)
			}
		}
	}
}

// verdict renders a target check.
func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// dur formats a duration with a precision that suits its size.
func dur(d time.Duration) string {
	switch a := max(d, -d); {
	case a == 0:
		return "0"
	case a < 10*time.Microsecond:
		return fmt.Sprintf("%.2f µs", float64(d)/1e3)
	case a < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	case a < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case a < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func mib(kib int64) string {
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

// percentile returns the p-th percentile (0..100) of ds by the nearest-rank
// method; ds is sorted in place.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }
