"""Peak memory of the streaming members CSV import and export, for 1,000 and 100,000 rows.

    .venv/bin/python benchmarks/csv_memory.py [--rows 1000 100000] [--database-url URL]

Each size runs on a fresh SQLite file (or a fresh PostgreSQL database URL you give):
the CSV file is written to disk, imported through MemberService.import_csv (the code
the CLI and API use), then exported through MemberService.export_csv to a file.
Peak memory is Python's own allocations during each step (tracemalloc), so the
figures show what the code holds, not the interpreter's baseline. "Flat" means the
peak for 100,000 rows is about the peak for 1,000 rows. Throughput is measured under
tracemalloc, which slows allocation-heavy code several times (a run takes minutes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twofold.context import RequestContext
from twofold.core.notifier import NullNotifier
from twofold.settings import Settings
from twofold.store.migrate import upgrade
from twofold.wiring import build_services


def write_csv(path: Path, rows: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("email,name,role\n")
        for i in range(rows):
            handle.write(f"member{i:07d}@bench.example,Member {i:07d},{('staff', 'provider')[i % 2]}\n")


def measure(step) -> tuple[int, float, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    count = step()
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return count, elapsed, peak


def run(rows: int, workdir: Path) -> dict:
    settings = Settings(
        _env_file=None,
        var_dir=workdir / f"var-{rows}",
        secret_key="benchmark-secret-key-0123456789-abcdef",
        database_url=f"sqlite:///{workdir / f'bench-{rows}.db'}",
    )
    services = build_services(settings, notifier=NullNotifier())
    upgrade(services.db.engine)
    practice = services.accounts.create_practice(name=f"Bench {rows}", context=RequestContext.system("bench"))
    services.members.invited_password_hash()  # one argon2 hash, outside the measurement
    source = workdir / f"members-{rows}.csv"
    write_csv(source, rows)

    def do_import() -> int:
        with open(source, encoding="utf-8") as lines:
            results = services.members.import_csv(
                practice_id=practice.id,
                actor_id=None,
                lines=lines,
                context=RequestContext.system("bench"),
                send_setup_links=False,
                link_base=None,
            )
            return sum(result.status == "imported" for result in results)

    def do_export() -> int:
        count = -1
        with open(workdir / f"export-{rows}.csv", "w", encoding="utf-8") as out:
            for line in services.members.export_csv(
                practice_id=practice.id, actor_id=None, context=RequestContext.system("bench")
            ):
                out.write(line)
                count += 1
        return count

    imported, import_seconds, import_peak = measure(do_import)
    exported, export_seconds, export_peak = measure(do_export)
    services.close()
    assert imported == rows and exported == rows, (imported, exported)
    return {
        "rows": rows,
        "import_s": import_seconds,
        "import_peak": import_peak,
        "export_s": export_seconds,
        "export_peak": export_peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 100_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(rows, Path(tmp)) for rows in args.rows]
    print(
        f"{'rows':>8}  {'import peak':>12}  {'import':>14}  {'export peak':>12}  {'export':>14}   (rows/s under tracemalloc)"
    )
    for r in results:
        print(
            f"{r['rows']:>8,}  {r['import_peak'] / 2**20:>9.2f} MiB  {r['rows'] / r['import_s']:>8,.0f} rows/s  "
            f"{r['export_peak'] / 2**20:>9.2f} MiB  {r['rows'] / r['export_s']:>8,.0f} rows/s"
        )
    first, last = results[0], results[-1]
    print(
        f"peak at {last['rows']:,} rows / at {first['rows']:,} rows: import x{last['import_peak'] / first['import_peak']:.2f}, "
        f"export x{last['export_peak'] / first['export_peak']:.2f}"
    )


if __name__ == "__main__":
    main()
