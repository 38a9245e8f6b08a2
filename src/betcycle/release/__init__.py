"""Stage 6, release: set-image, promote and rollback, editing values files in place and re-rendering."""
