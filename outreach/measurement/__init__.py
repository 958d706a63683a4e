"""Measurement: what the outreach collected and what works (issue 16).

KPIs from the ledger, the day's account snapshots, payments, promises and arrangements
(``kpis``); the report model every output renders from (``report_model``) and its renderings
(HTML with SVG charts, JSON, CSV); the glass-box score (``score``); champion-challenger
experiments (``experiments``). Planning reads the score band and the experiment arm from here;
nothing here decides a contact: the gates still do.
"""
