package agents

// The SQL metrics.go runs.
const (
	// statsCols is the select list Metrics reads from a rollup table: a bucket's figures.
	statsCols = `bucket, executions, successes, failures, timeouts, cancelled, tokens_in, tokens_out, tokens_used,
	cost_usd::float8, duration_sum, duration_min, duration_max, hist`

	// agentHourlyStatsSQL reads the hourly rollups of agent $1 under template $2 ('': any) from
	// $3 until before $4.
	agentHourlyStatsSQL = `SELECT ` + statsCols + ` FROM agent_stats_agent_hourly
	WHERE agent_id = $1 AND ($2 = '' OR template_name = $2) AND bucket >= $3 AND bucket < $4`

	// hourlyStatsSQL reads the hourly rollups of template $1 ('': all) from $2 until before $3.
	hourlyStatsSQL = `SELECT ` + statsCols + ` FROM agent_stats_hourly
	WHERE ($1 = '' OR template_name = $1) AND bucket >= $2 AND bucket < $3`

	// dailyStatsSQL reads the daily rollups of template $1 ('': all) from $2 until before $3.
	dailyStatsSQL = `SELECT ` + statsCols + ` FROM agent_stats_daily
	WHERE ($1 = '' OR template_name = $1) AND bucket >= $2 AND bucket < $3`

	// agentKnownSQL reads whether agent $1 is registered or has executions in the rollups.
	agentKnownSQL = `SELECT EXISTS (SELECT 1 FROM agents WHERE agent_id = $1)
	OR EXISTS (SELECT 1 FROM agent_stats_agent_hourly WHERE agent_id = $1)`

	// templateKnownSQL reads whether an agent has template $1 or executions under it are in the
	// rollups.
	templateKnownSQL = `SELECT EXISTS (SELECT 1 FROM agents WHERE template_name = $1)
	OR EXISTS (SELECT 1 FROM agent_stats_daily WHERE template_name = $1)`

	// totalsSQL sums each template's daily rollups: executions, tokens, cost and the executions
	// that did not succeed, by template.
	totalsSQL = `SELECT template_name, sum(executions)::bigint, sum(tokens_used)::bigint, sum(cost_usd)::float8,
	(sum(failures) + sum(timeouts) + sum(cancelled))::bigint
	FROM agent_stats_daily GROUP BY template_name ORDER BY template_name`
)
