"""The one exception family the CLI turns into a one-line ``error:`` message."""


class XdimoError(Exception):
    """A user-facing error: the message is one line that says what is wrong and where."""


class ConfigError(XdimoError):
    """A cluster or matrix file is missing, malformed, or breaks a rule."""


class RuleError(XdimoError):
    """A run breaks a site rule (CPU slots, cards, pending limit)."""


class SchedulerError(XdimoError):
    """The scheduler's command failed or answered something we cannot read."""


class SubmitRefused(SchedulerError):
    """The scheduler definitely did NOT take the job (it said so). Any other SchedulerError during a submit
    (a timeout, garbage output) leaves it unknown whether the job exists, and the ledger keeps the run as
    SUBMITTING rather than risk a duplicate."""


class CommandNotRun(SchedulerError):
    """The scheduler's command could not be started (not on PATH, not executable): nothing reached the
    scheduler, so a submission that fails this way is a definite no, like SubmitRefused."""


class SchedulerTimeout(SchedulerError):
    """The scheduler's command did not answer in time, on every try: the scheduler hangs. Another command to it
    in the same moment would hang too (`submit` asks for cards only if its poll did not time out)."""


class PendingLimitError(SubmitRefused):
    """The site refused the submission because the user already has the maximum of pending jobs."""


class KillUnconfirmed(SchedulerError):
    """The kill command ran but did not answer as it does when it acts (`Job <N> is being terminated`): the kill
    may not have been sent. The ledger keeps the request (if the job ends by it, it ends KILLED)."""


class NotFoundError(XdimoError):
    """A run id or job id that the ledger does not know."""


class RunIdCollision(ConfigError):
    """Two different specs share a run id (8 hex digits of a hash): the ledger's run is not this one."""


class StopSignal(KeyboardInterrupt):
    """SIGTERM or SIGHUP (an ssh drop) that a submit held until its hand-over was recorded: stopped like Ctrl-C,
    with the report of what went through, and the signal's exit code (128 + signum)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
