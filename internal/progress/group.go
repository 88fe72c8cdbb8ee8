package progress

import "io"

// Group is a bar per part of a task that reports its parts one after another (a reindex's
// entities, then its episodes): each part's bar starts when it first reports.
type Group struct {
	w     io.Writer
	label func(part string) string
	unit  Unit
	bars  map[string]*Bar
}

// NewGroup reports to w, labelling each part's bar with label(part).
func NewGroup(w io.Writer, label func(part string) string, unit Unit) *Group {
	return &Group{w: w, label: label, unit: unit, bars: map[string]*Bar{}}
}

// Set moves part's bar to done of total, starting the bar on the part's first report.
func (g *Group) Set(part string, done, total int64) {
	b, ok := g.bars[part]
	if !ok {
		b = New(g.w, g.label(part), total, g.unit)
		g.bars[part] = b
	}
	b.SetTotal(total)
	b.Set(done)
}

// Done ends part's bar, if it has one.
func (g *Group) Done(part string) {
	if b, ok := g.bars[part]; ok {
		b.Done()
	}
}

// DoneAll ends every bar; bars already done are left as they are.
func (g *Group) DoneAll() {
	for _, b := range g.bars {
		b.Done()
	}
}
