"""Document ingestion: the five-step pipeline, its Temporal workflow, the legacy path."""
