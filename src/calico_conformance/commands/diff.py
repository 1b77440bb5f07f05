"""`calico-conformance diff`: what a policy change opens and closes, per cluster, before it merges.

`diff BASE HEAD` compares two policy sets (files or directories of manifests); `diff --git-base REV PATH`
compares PATH in the working tree (HEAD) with PATH at the git revision REV (BASE). For every cluster of
the register the layout's workloads are placed in the cluster's pod subnet and every flow the suites
probe is judged under both sets; the flows whose verdict changes are listed, grouped by the object change
that explains them, with the deciding policy, rule and `file:line` before and after (`impact/`).

With `--layout`, the change is also judged against the layout's requirements: exit 1 when HEAD breaks one
BASE met (the CI gate), 0 otherwise. Without it the default layout (policies/tenancy.yaml) only provides
the workloads, and the exit status is 0. Bad input exits 2 with `file:line: why`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from calico_conformance.cli import EXIT_FINDINGS, EXIT_OK, Command, UsageFailure
from calico_conformance.config import DEFAULT_KIND_CONFIGS, DEFAULT_LAYOUT
from calico_conformance.impact.clusters import compute_impact
from calico_conformance.impact.git_base import extract_revision
from calico_conformance.impact.render import RENDERERS
from calico_conformance.oracle.loader import ManifestReader, manifest_files
from calico_conformance.oracle.loader_document import parse_calico_version, version_text
from calico_conformance.oracle.loader_staged import promote_staged
from calico_conformance.oracle.model import DEFAULT_CALICO_VERSION, ResourceSet
from calico_conformance.oracle.yamlsrc import load_documents
from calico_conformance.tenancy.layout import load_layout
from calico_conformance.tenancy.register import load_register


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="BASE HEAD",
        help="the policy sets before and after (files or directories); with --git-base, only the one PATH",
    )
    parser.add_argument(
        "--git-base",
        metavar="REV",
        help="read BASE from the git revision REV (e.g. origin/main) at the same path as HEAD in the working tree",
    )
    parser.add_argument(
        "--layout",
        metavar="FILE",
        help=(
            f"judge the change against this tenancy layout: exit 1 when HEAD breaks a requirement BASE met "
            f"(without it the workloads come from {DEFAULT_LAYOUT} and nothing is judged)"
        ),
    )
    parser.add_argument(
        "--clusters", metavar="NAME[,NAME]", help="clusters of the register to compare in (default: all)"
    )
    parser.add_argument(
        "--kind-configs",
        metavar="DIR",
        default=str(DEFAULT_KIND_CONFIGS),
        help=f"the cluster register (default: {DEFAULT_KIND_CONFIGS})",
    )
    parser.add_argument(
        "--calico-version",
        metavar="X.Y",
        default=DEFAULT_CALICO_VERSION,
        help=f"the Calico version the policies are for (default: {DEFAULT_CALICO_VERSION})",
    )
    parser.add_argument(
        "--promote-staged",
        action="store_true",
        help="evaluate staged policies (Staged*NetworkPolicy) as if they were enforced (Calico 3.30+)",
    )
    parser.add_argument("--format", choices=tuple(RENDERERS), default="text", help="output format (default: text)")


def run(args: argparse.Namespace) -> int:
    calico_version = version_text(parse_calico_version(args.calico_version))
    layout_path = Path(args.layout) if args.layout else DEFAULT_LAYOUT
    if not layout_path.is_file():
        where = "--layout" if args.layout else f"the default layout {DEFAULT_LAYOUT} (give --layout FILE)"
        raise UsageFailure(f"{layout_path}: {where} is not a file")
    layout = load_layout(layout_path)
    register = load_register(Path(args.kind_configs))
    clusters = _clusters(args.clusters, tuple(spec.name for spec in register), args.kind_configs)
    with tempfile.TemporaryDirectory(prefix="calico-conformance-diff-") as scratch:
        (base, base_label), (head, head_label) = _policy_sets(args, calico_version, Path(scratch))
        impact = compute_impact(
            base,
            head,
            layout=layout,
            register=register,
            clusters=clusters,
            calico_version=calico_version,
            judge_layout=args.layout is not None,
            labels=(base_label, head_label),
        )
    output = RENDERERS[args.format](impact)
    sys.stdout.write(output if output.endswith("\n") else output + "\n")
    sys.stdout.flush()
    return EXIT_FINDINGS if impact.broken else EXIT_OK


def _clusters(option: str | None, registered: tuple[str, ...], register: str) -> tuple[str, ...]:
    if option is None:
        return registered
    names = tuple(name.strip() for name in option.split(","))
    for name in names:
        if name not in registered:
            raise UsageFailure(
                f"--clusters: {name!r} is not in the register {register}; choose from: {', '.join(registered)}"
            )
    if len(set(names)) != len(names):
        raise UsageFailure(f"--clusters {option!r} names a cluster twice")
    return names


def _policy_sets(
    args: argparse.Namespace, calico_version: str, scratch: Path
) -> tuple[tuple[ResourceSet, str], tuple[ResourceSet, str]]:
    paths = [Path(path) for path in args.paths]
    if args.git_base is None:
        if len(paths) != 2:
            raise UsageFailure(f"diff takes BASE and HEAD (two paths), not {len(paths)}; or --git-base REV PATH")
        base_path, head_path = paths
        base = _load(base_path, calico_version, args.promote_staged)
        return (base, str(base_path)), (_load(head_path, calico_version, args.promote_staged), str(head_path))
    if len(paths) != 1:
        raise UsageFailure(f"with --git-base REV, diff takes one PATH (HEAD in the working tree), not {len(paths)}")
    (head_path,) = paths
    head = _load(head_path, calico_version, args.promote_staged)
    extracted = extract_revision(head_path, args.git_base, scratch)
    label = f"{args.git_base}:{head_path}"
    if extracted is None:
        return (ResourceSet(), f"{label} (absent)"), (head, str(head_path))
    base = _load(extracted, calico_version, args.promote_staged, shown_as=(extracted, f"{args.git_base}:{head_path}"))
    return (base, label), (head, str(head_path))


def _load(path: Path, calico_version: str, promote: bool, shown_as: tuple[Path, str] | None = None) -> ResourceSet:
    """The policy set at `path`; `shown_as` (extracted root, display name) makes locations read
    `REV:policies/x.yaml:3` instead of naming a temporary directory."""
    reader = ManifestReader(calico_version)
    if shown_as is None:
        reader.add_paths([path])
    else:
        root, shown = shown_as
        for file in manifest_files([path]):
            relative = file.relative_to(root).as_posix()
            source = shown if relative == "." else f"{shown.rstrip('/')}/{relative}"
            reader.add_documents(load_documents(file.read_text(encoding="utf-8"), source), source)
    resources = reader.resource_set()
    return promote_staged(resources) if promote else resources


COMMAND = Command(
    name="diff",
    help="flows whose verdict a policy change alters, per cluster, with the deciding rule before and after",
    configure=configure,
    run=run,
)
