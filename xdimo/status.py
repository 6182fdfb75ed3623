"""Where ``refresh`` lived before it moved down to xdimo.poll (below submit, which refreshes before each batch),
kept for the callers that still import it from here (xdimo.cli.logs, collect's ledger source): new code imports
xdimo.poll, and this module can go once they do."""

from xdimo.poll import ENDED_BY_KILL, LOST_RECHECK_S, Change, Refresh, poll_cluster, recheck_lost, refresh

__all__ = ["ENDED_BY_KILL", "LOST_RECHECK_S", "Change", "Refresh", "poll_cluster", "recheck_lost", "refresh"]
