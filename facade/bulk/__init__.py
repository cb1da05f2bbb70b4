"""Bulk Data 2.0.0 `$export`: persisted export jobs, the planner that picks the cheapest vendor
listings, the checkpointed worker that streams mapped resources to NDJSON files, the files
and the operator/vendor Groups. Nothing here speaks HTTP except `routes` and `client`."""
