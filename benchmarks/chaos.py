"""`make chaos`: a fault campaign over the stages, against real components, with one table row per cell.

Every cell copies a run folder that holds everything upstream of one pipeline step, injects a fault while that
step runs (or before it), recovers the way a user would (re-run the same command), and compares what the step
wrote with an uninterrupted reference run of the same step:

- ``expected``: records the reference run wrote (by record key, per output file);
- ``out``: records after the fault and the recovery; ``lost`` / ``duplicated``: keys missing / written twice;
- ``resent``: requests the vLLM server answered more than once for the same (messages, seed) in the cell;
- ``recovered``: the recovery command exited 0 and the step's outputs match the reference's keys;
- ``message``: the first line of the error the user saw, for faults that must stop with one.

The ``run-folder-fuzz`` cell (chaos_run_folder.py) counts damaged run folders instead of records: ``expected``
cases, ``out`` cases with a correct outcome, ``lost`` violations; it needs no server and, run alone, starts none.

The steps run through ``cotforge run`` (the same edges as the stage commands), against one real vLLM server on
the tiny model behind the tests' fault proxy (which adds per-request latency so a kill lands mid-stage and counts
every request). The last line is ``cells: N lost: L duplicated: D``. See docs/reliability.md for the results.

Run: ``make chaos``; ``python benchmarks/chaos.py --list`` names the cells, ``--only kill-generate,teacher-429``
runs some of them (by cell name or stage), ``--seeds 3`` sets the SIGKILL seeds, and ``--keep DIR`` keeps the
work folder (the reference run in it is reused by the next invocation with the same ``--keep``); with a kept
reference, ``--no-server`` re-runs the cells that call no model (Argilla, release, Hub, corruption) without vLLM;
``--reference-until generate`` builds the reference only that far (the generate cells, the Ray executor's among
them: ``--only ray-kill-driver,ray-kill-worker``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from chaos_cells import KILL_CELLS, STEPS, Campaign, CellResult  # noqa: E402
from chaos_faults import FAULT_CELLS  # noqa: E402
from chaos_ray import RAY_CELLS  # noqa: E402
from chaos_run_folder import RUN_FOLDER_CELLS  # noqa: E402

COLUMNS = ("stage", "fault", "expected", "out", "lost", "duplicated", "resent", "recovered", "message")


def _row(result: CellResult) -> str:
    values = [
        result.stage,
        result.fault,
        str(result.expected),
        str(result.out),
        str(result.lost),
        str(result.duplicated),
        str(result.resent),
        "yes" if result.recovered else "NO",
        (result.message or "")[:90],
    ]
    return "| " + " | ".join(values) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="name the cells and exit")
    parser.add_argument(
        "--only", default=os.environ.get("CHAOS_ONLY", ""), help="cell names or stages, comma-separated"
    )
    parser.add_argument("--seeds", type=int, default=int(os.environ.get("CHAOS_SEEDS", "2")))
    keep = os.environ.get("CHAOS_KEEP")
    parser.add_argument(
        "--keep",
        type=Path,
        default=Path(keep) if keep else None,
        help="keep (and reuse) the work folder here",
    )
    parser.add_argument("--no-server", action="store_true", help="no vLLM server (cells that call no model)")
    parser.add_argument(
        "--reference-until", choices=STEPS, help="build the reference run only up to this step (early cells)"
    )
    args = parser.parse_args()
    cells = [*KILL_CELLS, *FAULT_CELLS, *RAY_CELLS, *RUN_FOLDER_CELLS]
    if args.list:
        for cell in cells:
            print(f"{cell.key:24} stage={cell.stage} seeded={cell.seeded}")
        return 0
    only = {s for s in args.only.split(",") if s}
    unknown = only - {c.key for c in cells} - {c.stage for c in cells}
    if unknown:
        parser.error(f"unknown cells: {sorted(unknown)} (see --list)")
    # SIGTERM becomes a normal exit, so the campaign's server and proxy are stopped by their context managers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    results: list[CellResult] = []
    selected = [c for c in cells if not only or c.key in only or c.stage in only]
    # Cells that need no server or reference run (the run-folder fuzz) run without starting the campaign.
    start = (
        contextlib.nullcontext(None)
        if all(c.standalone for c in selected)
        else Campaign.start(args.keep, serve=not args.no_server, until=args.reference_until)
    )
    with start as campaign:
        for cell in selected:
            for seed in range(args.seeds if cell.seeded else 1):
                result = cell.run(campaign, seed)
                results.append(result)
                print(_row(result), flush=True)
    lost = sum(r.lost for r in results)
    duplicated = sum(r.duplicated for r in results)
    failed = [r for r in results if not r.recovered]
    print(f"\nwall: {time.perf_counter() - started:.0f} s; not recovered: {len(failed)}")
    print(f"cells: {len(results)} lost: {lost} duplicated: {duplicated}")
    return 0 if lost == 0 and duplicated == 0 and not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
