"""The project's exceptions: what went wrong, and whose mistake it was."""


class KerasJobsError(Exception):
    """Base of every error the CLI turns into one line and an exit code.

    The message must say what was expected, what was received and what to do.
    """

    exit_code = 1


class InputError(KerasJobsError):
    """The user's input is wrong (a bad option, data file or search space)."""

    exit_code = 2


class RunError(KerasJobsError):
    """The job could not run although its input was valid."""

    exit_code = 1


class PreemptedError(RunError):
    """SIGTERM arrived (Kubernetes preemption or eviction); progress is saved."""

    # 128 + SIGTERM, the code a process killed by SIGTERM reports.
    exit_code = 143
