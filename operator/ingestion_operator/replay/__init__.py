"""What-if replay: the operator's analysis and decisions run over past Prometheus data.

`kubectl ingestionrollout replay` asks what the operator would have done over a range of
history with a given spec (thresholds, judge, steps): the same queries (read in a
handful of range requests: history.py), the same analysis and `next_action` at every
instant (engine.py, through handlers.decide), shown as a timeline, a per-rule summary,
JSON or a chart (report.py, chart.py), or compared with another spec. promql.py computes
the sequential judge's increase() since the replayed step began from raw samples;
inputs.py checks what the user typed; command.py is the subcommand.
"""
