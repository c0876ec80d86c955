"""The barometer report (issue 15): a period of the store turned into the forwarded study.

periods (which days) → figures (SQL over the store, read-only) → charts (vega-altair +
vl-convert, offline) → render (Jinja2 HTML, CSV files). Heavy imports live in charts and
render and load only when a report is written, never at `bluepulse --help`.
"""
