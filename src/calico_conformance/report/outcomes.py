"""What became of a test: the outcome vocabulary of the reports and how a pytest report maps onto it.

pytest knows passed, failed, skipped and (for setup and teardown) error. A conformance run must say more:

* a **failed** test proved a defect: an assertion about reachability, the register or the Installation
  did not hold;
* an **error** proved nothing: setup, teardown or collection broke, a probe could not run (`error`
  verdicts), the environment raised (`InfrastructureError`, a timeout, an OS or API error) or the test
  raised something other than an assertion. It is never a pass, and never mistaken for a defect;
* **not supported** is a skip with a reason the suite chose (`not_supported("tiers need Calico >= 3.29")`),
  recorded apart from ordinary skips, as the Gateway API conformance report does.

Suites call `not_supported(reason)`; anything that gives up because the world around the
test is broken raises `InfrastructureError` (or lets an `OSError`/`TimeoutError` through).
"""

from __future__ import annotations

import enum
from typing import NoReturn

import pytest

from calico_conformance.probe.executor import ExecutorError

NOT_SUPPORTED_PREFIX = "NOT_SUPPORTED: "


class Outcome(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"  # an assertion failed: a defect of the policy set or the cluster, proven
    ERROR = "error"  # nothing proven: infrastructure, input or harness trouble
    SKIPPED = "skipped"
    NOT_SUPPORTED = "not_supported"  # a deliberate, recorded skip: the target lacks the feature

    def __str__(self) -> str:
        return self.value


class FailureKind(str, enum.Enum):
    """Why a test that pytest calls "failed" failed: the line between FAILED and ERROR."""

    ASSERTION = "assertion"  # a requirement did not hold
    INFRASTRUCTURE = "infrastructure"  # the test could not reach a verdict

    def __str__(self) -> str:
        return self.value


class InfrastructureError(RuntimeError):
    """The environment, not the policy, broke: the test errors instead of failing.

    Raise it when a cluster cannot be created, a probe pod never becomes ready or the agent cannot run;
    the report counts it apart from failed assertions and the run exits with `EXIT_INFRASTRUCTURE_ERROR`
    when nothing else failed.
    """


def not_supported(reason: str) -> NoReturn:
    """Skip the running test as NOT_SUPPORTED (e.g. tier semantics on Calico below 3.29).

    It is an ordinary pytest skip whose reason starts with `NOT_SUPPORTED: `, so the terminal shows it
    as such and the collector files it apart; `pytest.mark.skip(reason="NOT_SUPPORTED: ...")` works too.
    """
    __tracebackhide__ = True  # the skip location shown is the caller's, not this helper's
    pytest.skip(NOT_SUPPORTED_PREFIX + reason)


# Exceptions that mean "the test could not reach a verdict". Everything that is neither an assertion
# (`AssertionError`, `pytest.fail`) nor listed here also counts as an error: an unexpected exception in a
# test is a broken test, not a proven defect (the distinction Allure draws between BROKEN and FAILED).
INFRASTRUCTURE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    InfrastructureError,
    ExecutorError,
    TimeoutError,
    OSError,
)
ASSERTION_EXCEPTIONS: tuple[type[BaseException], ...] = (AssertionError, pytest.fail.Exception)


def failure_kind(exception: BaseException) -> FailureKind:
    """Classify the exception that failed a test's call phase."""
    if isinstance(exception, ASSERTION_EXCEPTIONS) and not isinstance(exception, INFRASTRUCTURE_EXCEPTIONS):
        return FailureKind.ASSERTION
    return FailureKind.INFRASTRUCTURE


def skip_reason(longrepr: object) -> str:
    """The reason of a skipped pytest report (its longrepr is `(path, line, "Skipped: reason")`)."""
    is_location_tuple = isinstance(longrepr, tuple) and len(longrepr) == 3
    message = str(longrepr[2]) if is_location_tuple else str(longrepr or "")  # type: ignore[index]
    return message.removeprefix("Skipped: ")


def is_not_supported(reason: str) -> bool:
    """Whether a skip reason marks a NOT_SUPPORTED skip (raised by `not_supported` or written by hand)."""
    return reason.startswith(NOT_SUPPORTED_PREFIX.split(":")[0])


def not_supported_reason(reason: str) -> str:
    """`NOT_SUPPORTED: why` -> `why`."""
    return reason.removeprefix("NOT_SUPPORTED").lstrip(":").strip()
