"""Stage 2, render: charts + layered values -> manifests through a sandboxed Jinja engine, Argo CD objects, atomic writes."""
