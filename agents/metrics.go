package agents

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bucket sizes of a metrics series. Buckets are UTC hours and days.
const (
	BucketHour = "hour"
	BucketDay  = "day"
)

// MaxBuckets bounds one series (e.g. 1,000 hours is about six weeks).
const MaxBuckets = 1000

// PercentileMethod says how p50/p95 are computed; every result and the README carry it, the tool
// description its bound.
const PercentileMethod = "estimated from merged log-scale histograms of durations (8 bins per doubling), with percentile_cont's definition: within 9.05% of the exact value (one bin), clamped to the observed min/max"

// Histogram bins (migrations/0004: cairn_duration_bin): bin 0 is 0 ms, bin i >= 1 covers
// [2^((i-1)/8), 2^(i/8)) ms, and the last bin everything above.
const (
	binsPerDoubling = 8
	lastBin         = 199
)

func binBounds(i int) (lo, hi float64) {
	if i == 0 {
		return 0, 0
	}
	return math.Exp2(float64(i-1) / binsPerDoubling), math.Exp2(float64(i) / binsPerDoubling)
}

// MetricsParams select a metrics series.
type MetricsParams struct {
	Template string
	AgentID  string
	// Since and Until bound the series; any time zone, converted to UTC. Since is rounded down
	// to the start of its bucket and Until up to the end of its bucket, so the series is whole
	// buckets. Defaults: Until now, Since 30 days (day) or 48 hours (hour) before Until.
	Since, Until time.Time
	Bucket       string // hour or day
}

// Stats are the figures of one bucket, or of the whole range.
type Stats struct {
	Executions int64   `json:"executions"`
	Successes  int64   `json:"successes"`
	Failures   int64   `json:"failures"`
	Timeouts   int64   `json:"timeouts"`
	Cancelled  int64   `json:"cancelled"`
	TokensIn   int64   `json:"tokens_in"`
	TokensOut  int64   `json:"tokens_out"`
	Tokens     int64   `json:"tokens"`
	CostUSD    float64 `json:"cost_usd"`
	// SuccessRate is successes / executions; null for a bucket without executions.
	SuccessRate   *float64 `json:"success_rate"`
	AvgDurationMS *float64 `json:"avg_duration_ms"`
	P50DurationMS *float64 `json:"p50_duration_ms"`
	P95DurationMS *float64 `json:"p95_duration_ms"`

	durSum, durMin, durMax int64
	hist                   []int64
}

// Point is one bucket of a series.
type Point struct {
	Start time.Time `json:"start"`
	Stats
}

// Metrics is a series of whole UTC buckets, empty ones included, and the totals over it.
type Metrics struct {
	Bucket     string    `json:"bucket"`
	TimeZone   string    `json:"time_zone"`
	Since      time.Time `json:"since"`
	Until      time.Time `json:"until"`
	Template   string    `json:"template,omitempty"`
	AgentID    string    `json:"agent_id,omitempty"`
	Series     []Point   `json:"series"`
	Totals     Stats     `json:"totals"`
	Percentile string    `json:"percentiles"`
}

// Metrics returns executions, tokens, cost, success rate and p50/p95 duration per bucket and in
// total. It reads only rollups — per template and hour, per template and day, or per agent and
// hour when AgentID is given — so a 30-day query reads at most hundreds of rows per template
// however many executions there were, and raw-execution retention does not change it.
func (s *Store) Metrics(ctx context.Context, p MetricsParams) (*Metrics, error) {
	var step time.Duration
	switch p.Bucket {
	case BucketHour:
		step = time.Hour
	case BucketDay:
		step = 24 * time.Hour
	case "":
		return nil, inputErrorf("bucket is required: \"hour\" or \"day\" (UTC)")
	default:
		return nil, inputErrorf("bucket %q: use \"hour\" or \"day\" (UTC)", p.Bucket)
	}
	if p.AgentID != "" {
		if err := checkID("agent_id", p.AgentID); err != nil {
			return nil, err
		}
	}
	if len(p.Template) > MaxIDLen {
		return nil, inputErrorf("template may be at most %d bytes", MaxIDLen)
	}
	until := p.Until
	if until.IsZero() {
		until = time.Now()
	}
	since := p.Since
	if since.IsZero() {
		if step == time.Hour {
			since = until.Add(-48 * time.Hour)
		} else {
			since = until.AddDate(0, 0, -30)
		}
	}
	// UTC days are exactly 24 hours, so Truncate on UTC times gives UTC bucket starts.
	since = since.UTC().Truncate(step)
	end := until.UTC().Truncate(step)
	if end.Before(until.UTC()) {
		end = end.Add(step)
	}
	if !end.After(since) {
		return nil, inputErrorf("until (%s) must be after since (%s)", until.UTC().Format(time.RFC3339), since.Format(time.RFC3339))
	}
	n := int(end.Sub(since) / step)
	if n > MaxBuckets {
		return nil, inputErrorf("%d %s buckets from %s to %s: at most %d; narrow since/until or use bucket \"day\"",
			n, p.Bucket, since.Format(time.RFC3339), end.Format(time.RFC3339), MaxBuckets)
	}

	var rows pgx.Rows
	var err error
	switch {
	case p.AgentID != "":
		rows, err = s.pool.Query(ctx, agentHourlyStatsSQL, p.AgentID, p.Template, since, end)
	case step == time.Hour:
		rows, err = s.pool.Query(ctx, hourlyStatsSQL, p.Template, since, end)
	default:
		rows, err = s.pool.Query(ctx, dailyStatsSQL, p.Template, since, end)
	}
	if err != nil {
		return nil, fmt.Errorf("agent metrics: %w", err)
	}
	m := &Metrics{Bucket: p.Bucket, TimeZone: "UTC", Since: since, Until: end, Template: p.Template, AgentID: p.AgentID,
		Series: make([]Point, n), Percentile: PercentileMethod}
	for i := range m.Series {
		m.Series[i].Start = since.Add(time.Duration(i) * step)
	}
	var (
		b       time.Time
		r       Stats
		h       []int32
		scanned int
	)
	_, err = pgx.ForEachRow(rows, []any{&b, &r.Executions, &r.Successes, &r.Failures, &r.Timeouts, &r.Cancelled, &r.TokensIn,
		&r.TokensOut, &r.Tokens, &r.CostUSD, &r.durSum, &r.durMin, &r.durMax, &h}, func() error {
		i := int(b.UTC().Truncate(step).Sub(since) / step)
		if i < 0 || i >= n {
			return fmt.Errorf("rollup row at %s is outside the range", b)
		}
		m.Series[i].add(&r, h)
		m.Totals.add(&r, h)
		scanned++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("agent metrics: %w", err)
	}
	if scanned == 0 {
		if err := s.checkFilters(ctx, p); err != nil {
			return nil, err
		}
	}
	for i := range m.Series {
		m.Series[i].finish()
	}
	m.Totals.finish()
	return m, nil
}

// checkFilters turns an empty result for a filter that names nothing into an error, so that a
// misspelt template or agent is not read as "no executions".
func (s *Store) checkFilters(ctx context.Context, p MetricsParams) error {
	if p.AgentID != "" {
		var known bool
		err := s.pool.QueryRow(ctx, agentKnownSQL, p.AgentID).Scan(&known)
		if err != nil {
			return fmt.Errorf("agent metrics: %w", err)
		}
		if !known {
			return &NotFoundError{AgentID: p.AgentID}
		}
	}
	if p.Template != "" {
		var known bool
		err := s.pool.QueryRow(ctx, templateKnownSQL, p.Template).Scan(&known)
		if err != nil {
			return fmt.Errorf("agent metrics: %w", err)
		}
		if !known {
			return inputErrorf("no agent has template %q and none had executions under it (agent_list shows the agents and their templates)", p.Template)
		}
	}
	return nil
}

func (s *Stats) add(r *Stats, h []int32) {
	if s.Executions == 0 || r.durMin < s.durMin {
		s.durMin = r.durMin
	}
	s.durMax = max(s.durMax, r.durMax)
	s.Executions += r.Executions
	s.Successes += r.Successes
	s.Failures += r.Failures
	s.Timeouts += r.Timeouts
	s.Cancelled += r.Cancelled
	s.TokensIn += r.TokensIn
	s.TokensOut += r.TokensOut
	s.Tokens += r.Tokens
	s.CostUSD += r.CostUSD
	s.durSum += r.durSum
	if len(h) > len(s.hist) {
		s.hist = append(s.hist, make([]int64, len(h)-len(s.hist))...)
	}
	for i, c := range h {
		s.hist[i] += int64(c)
	}
}

func (s *Stats) finish() {
	// Sums of numeric cost as float8 pick up binary noise; cents to a millionth are plenty.
	s.CostUSD = math.Round(s.CostUSD*1e8) / 1e8
	if s.Executions == 0 {
		return
	}
	rate := float64(s.Successes) / float64(s.Executions)
	avg := float64(s.durSum) / float64(s.Executions)
	p50 := percentile(s.hist, 0.50, s.durMin, s.durMax)
	p95 := percentile(s.hist, 0.95, s.durMin, s.durMax)
	s.SuccessRate, s.AvgDurationMS, s.P50DurationMS, s.P95DurationMS = &rate, &avg, &p50, &p95
}

// percentile estimates the p-quantile of the durations in a histogram with percentile_cont's
// definition: the value at rank p·(n-1) among the sorted durations, interpolated linearly
// between its two neighbours. Each neighbour is estimated inside the bin that holds it (by its
// place among the bin's samples, geometrically, as the bins are log-scale) and clamped to the
// observed min/max; both lie in their bins, so the estimate is within one bin's width —
// 2^(1/8)-1 = 9.05% — of the exact value (except in the open-ended last bin, above ~7.7 hours).
func percentile(hist []int64, p float64, lo, hi int64) float64 {
	var n int64
	for _, c := range hist {
		n += c
	}
	if n == 0 {
		return 0
	}
	r := p * float64(n-1)
	k := int64(math.Floor(r))
	v := sampleAt(hist, k, lo, hi)
	if f := r - float64(k); f > 0 && k+1 < n {
		v += f * (sampleAt(hist, k+1, lo, hi) - v)
	}
	return math.Round(v*100) / 100
}

// sampleAt estimates the k-th smallest duration (from 0) of a histogram.
func sampleAt(hist []int64, k, lo, hi int64) float64 {
	var cum int64
	for i, c := range hist {
		if c == 0 {
			continue
		}
		if k < cum+c {
			if i == 0 {
				return 0
			}
			blo, bhi := binBounds(i)
			if i == lastBin {
				bhi = math.Max(blo, float64(hi))
			}
			v := blo * math.Pow(bhi/blo, (float64(k-cum)+0.5)/float64(c))
			return math.Max(float64(lo), math.Min(float64(hi), v))
		}
		cum += c
	}
	return float64(hi)
}

// TemplateTotals are one template's all-time figures. The fields and their order match
// mcp.TemplateTotals, so the metrics endpoint converts them directly.
type TemplateTotals struct {
	Template   string
	Executions int64
	Tokens     int64
	CostUSD    float64
	// Failures counts executions that did not succeed (outcome failure, timeout or cancelled).
	Failures int64
}

// Totals returns every template's all-time totals from the daily rollups (one row per template
// and day), cheap enough for a metrics scrape; raw-execution retention does not change them.
func (s *Store) Totals(ctx context.Context) ([]TemplateTotals, error) {
	rows, err := s.pool.Query(ctx, totalsSQL)
	if err != nil {
		return nil, fmt.Errorf("agent totals: %w", err)
	}
	ts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[TemplateTotals])
	if err != nil {
		return nil, fmt.Errorf("agent totals: %w", err)
	}
	return ts, nil
}
