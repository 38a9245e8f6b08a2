"""hello: the example service BetCycle deploys — a Hello World HTTP server on the standard library alone.

The modules follow the process's life: `config` (environment → settings), `logs` (JSON lines on stdout),
`metrics` (Prometheus text exposition), `server` (routes, probes, graceful stop) and `main` (the process
entry that `python -m hello` runs).
"""
