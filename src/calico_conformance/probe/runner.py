"""The runner: a whole reachability matrix probed in rounds, every source in parallel, until it converges.

Why: the peers probe one pair per exec, count any failure as "blocked" and retry until the table looks
right. Here one round sends ONE batch per source (all of that source's flows, run concurrently by the
agent), every source's batch runs at the same time, and `convergence` decides what the round proves.

A round: the flows of `expected` become jobs grouped by source; each source's batch goes through the
executor in its own thread (at most `max_parallel_sources` at once, which also bounds concurrent execs
on a cluster); an executor that cannot run the agent turns that source's flows into `error`, never a
deny. Each result becomes an Observation (wrong identity -> `error`), then the positive control is
applied, then the round is recorded. Rounds repeat, no closer than `round_interval_s` apart, while the
matrix is not converged and `converge_timeout_s` has not passed.

Control jobs: a service (destination, port, protocol) that no flow of the matrix is expected to reach
gets one control job per round from `control_source`, a workload allowed to reach it (on a cluster: a
probe pod exempt from the policies under test; in the netns lab: a pod no rule drops). Without a
control source such a matrix is refused up front with ValueError: none of its denies could be believed.

Self controls (`self_control`, for clusters without a control tier such as Calico 3.27, where no pod may
be exempted from the policies under test): a service nobody may reach is vouched for by its own pod, which
probes its own address (that never leaves the pod's network namespace, so it proves the server listens
and nothing about policy), and only in a round in which that pod also reached the source control (so its
interface is programmed and carries traffic both ways). Both must hold for its denies to count.

Source-control jobs: with `source_control` (a service every pod may reach because a policy the run owns
says so: on a cluster the control pod, through the control tier), every source of the matrix sends one
job there per round, and a source that reached neither it nor any of its flows' servers in a round has
its denies of that round turned into `error` (`convergence.apply_source_control`). Live targets always
give one; the netns lab, whose interfaces exist before any probe, may leave it out.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from tenacity import Retrying, retry_if_result, stop_after_delay

from calico_conformance.probe.convergence import (
    Convergence,
    Service,
    Status,
    apply_positive_control,
    apply_source_control,
    describe_service,
    observe,
    service_of,
)
from calico_conformance.probe.executor import Executor, ExecutorError, Job, JobResult
from calico_conformance.probe.jobs import error_result, flow_job
from calico_conformance.reachability import (
    DEFAULT_DENY_VERDICTS,
    Comparison,
    ExpectedMatrix,
    Flow,
    Observation,
    ObservedMatrix,
    ProbeVerdict,
    compare,
)

DEFAULT_CONVERGE_TIMEOUT_S = 30.0
DEFAULT_REQUIRED_MATCHES = 3  # Gateway API's RequiredConsecutiveSuccesses
DEFAULT_ROUND_INTERVAL_S = 1.0  # consecutive matches must be spread in time to say anything about steadiness
BATCH_OVERHEAD_S = 20.0  # on top of the probe timeout: starting an exec and the interpreter on a busy node
AGENT_CONCURRENCY = 256  # the agent's MAX_CONCURRENT_JOBS: bigger batches run in waves


@dataclass(frozen=True)
class ProbeEndpoint:
    """A workload as the runner needs it: the executor's handle for it as a source, its IP as a
    destination, and its node (for the same-node / cross-node tag). `source_address`, when set, is the
    address its probes are sent from (bound), and every server it reaches must report having seen it."""

    handle: str
    ip: str
    node: str | None = None
    source_address: str | None = None
    dns_name: str | None = None  # a DNS server none of ours: probed with an A query for this name


@dataclass(frozen=True)
class PlannedProbe:
    job: Job
    flow: Flow | None  # None for a control job
    service: Service
    expected_server: str | None  # workload key that must answer; None for ICMP and external addresses
    same_node: bool | None
    sender: str | None = None  # for a source-control job: the source (workload key) it proves
    expected_peer: str | None = None  # the source address the server must report (a bound sender)
    self_check: bool = False  # a self control: the destination probing its own address


@dataclass(frozen=True)
class RoundPlan:
    """The jobs of one round, by source handle. The same plan is sent every round."""

    batches: Mapping[str, tuple[PlannedProbe, ...]]

    @property
    def probes(self) -> int:
        return sum(len(batch) for batch in self.batches.values())


@dataclass(frozen=True)
class RoundRecord:
    number: int
    started_s: float  # since the run began
    wall_s: float
    probes: int
    matched: bool  # every flow matched its expectation in this round
    observations: Mapping[Flow, Observation]
    controls: Mapping[Service, Observation]
    sent: Mapping[str, Observation] = field(default_factory=dict)  # source -> its source-control probe


@dataclass(frozen=True)
class RunResult:
    expected: ExpectedMatrix
    observed: ObservedMatrix
    rounds: tuple[RoundRecord, ...]
    converged: bool
    failure: str | None  # why the run did not pass: a leak after a match, or no convergence in time

    @property
    def ok(self) -> bool:
        return self.converged and self.failure is None

    def comparison(self, deny_verdicts: frozenset[ProbeVerdict] = DEFAULT_DENY_VERDICTS) -> Comparison:
        return compare(self.expected, self.observed, deny_verdicts)


def _destination(flow: Flow, endpoints: Mapping[str, ProbeEndpoint]) -> tuple[str, str | None]:
    """(address to probe, workload that must answer) for the flow's destination."""
    if flow.destination in endpoints:
        # ICMP is answered by the kernel, a foreign DNS server sends no identity: no server to name.
        anonymous = flow.protocol.upper() == "ICMP" or endpoints[flow.destination].dns_name is not None
        return endpoints[flow.destination].ip, None if anonymous else flow.destination
    try:
        return str(ipaddress.ip_address(flow.destination)), None
    except ValueError:
        raise ValueError(
            f"{flow}: destination {flow.destination!r} is neither a known workload nor an IP"
        ) from None


def _same_node(source: str, destination: str, endpoints: Mapping[str, ProbeEndpoint]) -> bool | None:
    here, there = endpoints[source].node, endpoints.get(destination, ProbeEndpoint("", "")).node
    return None if here is None or there is None else here == there


def plan_round(
    endpoints: Mapping[str, ProbeEndpoint],
    expected: ExpectedMatrix,
    *,
    timeout_s: float,
    control_source: str | None = None,
    source_control: Service | None = None,
    self_control: bool = False,
) -> RoundPlan:
    """Group the matrix's flows by source, and add the control jobs it needs (see the module docstring)."""
    if not expected:
        raise ValueError("the expected matrix is empty: there is nothing to probe")
    planned: list[tuple[str, PlannedProbe]] = []
    for flow in expected:
        if flow.source not in endpoints:
            raise ValueError(f"{flow}: source {flow.source!r} has no endpoint to run probes from")
        ip, server = _destination(flow, endpoints)
        probe = PlannedProbe(
            {}, flow, service_of(flow), server, _same_node(flow.source, flow.destination, endpoints)
        )
        planned.append((endpoints[flow.source].handle, _with_job(probe, flow, ip, timeout_s, endpoints)))
    reached = {service_of(flow) for flow in expected if expected[flow].allowed}
    uncontrolled = sorted({service_of(flow) for flow in expected} - reached, key=str)
    if uncontrolled and control_source is None and self_control:
        planned.extend(_self_controls(endpoints, uncontrolled, source_control, timeout_s))
        uncontrolled = []
    if uncontrolled and control_source is None:
        listed = ", ".join(describe_service(service) for service in uncontrolled[:5])
        raise ValueError(
            f"no flow is expected to reach {listed}: give a control_source allowed to reach them"
        )
    for service in uncontrolled:
        assert control_source is not None
        destination, port, protocol = service
        if control_source not in endpoints or control_source == destination:
            raise ValueError(
                f"control source {control_source!r} must be a known workload other than {destination}"
            )
        control = Flow(control_source, destination, port, protocol)
        ip, server = _destination(control, endpoints)
        probe = PlannedProbe({}, None, service, server, _same_node(control_source, destination, endpoints))
        planned.append((endpoints[control_source].handle, _with_job(probe, control, ip, timeout_s, endpoints)))
    if source_control is not None:
        senders = {flow.source for flow in expected} | {
            probe.service[0] for _handle, probe in planned if probe.self_check
        }
        planned.extend(_source_controls(endpoints, senders, source_control, timeout_s))
    batches: dict[str, list[PlannedProbe]] = {}
    for handle, probe in planned:
        batch = batches.setdefault(handle, [])
        batch.append(PlannedProbe({**probe.job, "id": str(len(batch))}, probe.flow, probe.service,
                                  probe.expected_server, probe.same_node, probe.sender,
                                  probe.expected_peer, probe.self_check))  # fmt: skip
    return RoundPlan({handle: tuple(batch) for handle, batch in batches.items()})


def _self_controls(
    endpoints: Mapping[str, ProbeEndpoint],
    services: Sequence[Service],
    source_control: Service | None,
    timeout_s: float,
) -> list[tuple[str, PlannedProbe]]:
    """One self-probe per service, from its own pod to its own address (see the module docstring)."""
    if source_control is None:
        raise ValueError("self controls need a source_control: a self-probe alone never leaves its pod")
    planned = []
    for service in services:
        destination, port, protocol = service
        if destination not in endpoints:
            raise ValueError(
                f"no flow is expected to reach {describe_service(service)}, and {destination} has no pod to "
                "vouch for its own server: give a control_source allowed to reach it"
            )
        check = Flow(destination, destination, port, protocol)
        ip, server = _destination(check, endpoints)
        probe = PlannedProbe({}, None, service, server, True, self_check=True)
        planned.append((endpoints[destination].handle, _with_job(probe, check, ip, timeout_s, endpoints, bind=False)))
    return planned


def _source_controls(
    endpoints: Mapping[str, ProbeEndpoint], senders: set[str], control: Service, timeout_s: float
) -> list[tuple[str, PlannedProbe]]:
    """One job per sender to the source-control service (not from that service's own pod)."""
    destination, port, protocol = control
    if destination not in endpoints:
        raise ValueError(f"source control {describe_service(control)}: {destination!r} is not a known workload")
    planned = []
    for source in sorted(senders - {destination}):
        check = Flow(source, destination, port, protocol)
        ip, server = _destination(check, endpoints)
        probe = PlannedProbe({}, None, control, server, _same_node(source, destination, endpoints), source)
        planned.append((endpoints[source].handle, _with_job(probe, check, ip, timeout_s, endpoints)))
    return planned


def _with_job(
    probe: PlannedProbe,
    flow: Flow,
    ip: str,
    timeout_s: float,
    endpoints: Mapping[str, ProbeEndpoint],
    *,
    bind: bool = True,
) -> PlannedProbe:
    source = endpoints[flow.source].source_address if bind else None
    resolver = endpoints[flow.destination].dns_name if flow.destination in endpoints else None
    job = flow_job("", flow, ip, timeout_s=timeout_s, bind=source, dns_name=resolver)
    return PlannedProbe(job, probe.flow, probe.service, probe.expected_server, probe.same_node, probe.sender,
                        source, probe.self_check)  # fmt: skip


def _run_batch(executor: Executor, source: str, jobs: Sequence[Job], deadline_s: float) -> list[JobResult]:
    try:
        return executor.run_batch(source, jobs, deadline_s=deadline_s)
    except ExecutorError as exc:  # the agent never ran: every job is unproven, none is a deny
        return [error_result(job, f"executor: {exc}") for job in jobs]


def run_round(
    executor: Executor, plan: RoundPlan, *, deadline_s: float, max_parallel_sources: int = 32
) -> tuple[dict[Flow, Observation], dict[Service, Observation]]:
    """One batch per source, all sources in parallel: observations of the flows and of the controls,
    with the positive control (and, where the plan has them, the source controls) applied."""
    flows, controls, _sent = run_checked_round(
        executor, plan, deadline_s=deadline_s, max_parallel_sources=max_parallel_sources
    )
    return flows, controls


def run_checked_round(
    executor: Executor, plan: RoundPlan, *, deadline_s: float, max_parallel_sources: int = 32
) -> tuple[dict[Flow, Observation], dict[Service, Observation], dict[str, Observation]]:
    """`run_round`, also returning each source's source-control observation (source key -> observation)."""
    sources = list(plan.batches)
    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel_sources, len(sources)))) as pool:
        futures = {
            source: pool.submit(
                _run_batch, executor, source, [p.job for p in plan.batches[source]], deadline_s
            )
            for source in sources
        }
        results = {source: future.result() for source, future in futures.items()}
    flows: dict[Flow, Observation] = {}
    controls: dict[Service, Observation] = {}
    sent: dict[str, Observation] = {}
    self_checked: list[Service] = []
    for source in sources:
        for probe, result in zip(plan.batches[source], results[source], strict=True):
            seen = observe(result, probe.expected_server, probe.same_node, probe.expected_peer)
            if probe.sender is not None:
                sent[probe.sender] = seen
            elif probe.flow is None:
                controls[probe.service] = seen
                if probe.self_check:
                    self_checked.append(probe.service)
            else:
                flows[probe.flow] = seen
    for service in self_checked:  # a self-probe counts only if its pod also reached the source control
        pod = service[0]
        reached = sent.get(pod)
        if controls[service].verdict is ProbeVerdict.ALLOWED and (
            reached is None or reached.verdict is not ProbeVerdict.ALLOWED
        ):
            controls[service] = replace(
                controls[service],
                verdict=ProbeVerdict.ERROR,
                detail=f"{pod} answered itself but did not reach the source control in this round",
            )
    checked = apply_positive_control(flows, controls)
    if any(probe.sender is not None for batch in plan.batches.values() for probe in batch):
        checked = apply_source_control(checked, sent)
    return checked, controls, sent


def run_matrix(
    executor: Executor,
    endpoints: Mapping[str, ProbeEndpoint],
    expected: ExpectedMatrix,
    *,
    timeout_s: float,
    converge_timeout_s: float = DEFAULT_CONVERGE_TIMEOUT_S,
    required_matches: int = DEFAULT_REQUIRED_MATCHES,
    round_interval_s: float = DEFAULT_ROUND_INTERVAL_S,
    control_source: str | None = None,
    source_control: Service | None = None,
    self_control: bool = False,
    deny_verdicts: frozenset[ProbeVerdict] = DEFAULT_DENY_VERDICTS,
    batch_deadline_s: float | None = None,
    max_parallel_sources: int = 32,
    on_round: Callable[[RoundRecord], None] | None = None,
) -> RunResult:
    """Probe `expected` in rounds until it converges (see `convergence`), a leak after a match fails it,
    or `converge_timeout_s` passes. `on_round` sees each round as it is recorded (progress, tests)."""
    plan = plan_round(
        endpoints,
        expected,
        timeout_s=timeout_s,
        control_source=control_source,
        source_control=source_control,
        self_control=self_control,
    )
    largest_batch = max(len(batch) for batch in plan.batches.values())
    waves = -(-largest_batch // AGENT_CONCURRENCY)
    deadline_s = batch_deadline_s or timeout_s * waves + BATCH_OVERHEAD_S
    tracker = Convergence(expected, required_matches, deny_verdicts)
    rounds: list[RoundRecord] = []
    began = time.monotonic()

    def one_round() -> Status:
        started = time.monotonic()
        flows, controls, sent = run_checked_round(
            executor, plan, deadline_s=deadline_s, max_parallel_sources=max_parallel_sources
        )
        status = tracker.record(started - began, flows)
        record = RoundRecord(
            number=len(rounds) + 1,
            started_s=round(started - began, 3),
            wall_s=round(time.monotonic() - started, 3),
            probes=plan.probes,
            matched=tracker.matching_rounds > 0,
            observations=flows,
            controls=controls,
            sent=sent,
        )
        rounds.append(record)
        if on_round is not None:
            on_round(record)
        return status

    def pace(_state: object) -> float:
        return max(0.0, round_interval_s - (time.monotonic() - began - rounds[-1].started_s))

    Retrying(
        stop=stop_after_delay(converge_timeout_s),
        wait=pace,
        retry=retry_if_result(lambda status: status is Status.PENDING),
        retry_error_callback=lambda _state: Status.PENDING,
    )(one_round)
    failure = tracker.failure
    if failure is None and not tracker.converged:
        unsteady = tracker.unsteady()
        failure = (
            f"did not converge within {converge_timeout_s:g}s ({len(rounds)} rounds): {len(unsteady)} flow(s) never "
            f"matched {required_matches} rounds in a row, e.g. "
            + "; ".join(str(flow) for flow in unsteady[:3])
        )
    return RunResult(expected, tracker.observed(), tuple(rounds), tracker.converged, failure)
