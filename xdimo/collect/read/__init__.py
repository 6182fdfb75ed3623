"""read: the runs' files (logs/<run_id>/, legacy logs, the ledger, a matrix's plan) -> RunRecords, cached per run."""
