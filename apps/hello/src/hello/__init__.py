"""hello: Hello World HTTP service, the reference for every service on the golden path.

An HTTP server on the standard library alone, stamped from BetCycle's service template. The modules follow the
process's life: `config` (environment → settings), `logs` (JSON lines on stdout), `metrics` (Prometheus text
exposition), `server` (routes, probes, graceful stop) and `main` (the process entry `python -m hello` runs).
"""
