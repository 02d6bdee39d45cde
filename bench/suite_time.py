"""Is `make test` slower than it was? Compares two runs of the suite test by test (issue 26).

The suite's wall time grows with every test an issue adds, so the total alone cannot say
whether a change made the existing tests slower. This reads two pytest JUnit XML reports (each
test's setup + call + teardown), matches the tests by module file name and test name (tests
moved into folders keep both), and prints the summed time of the tests found in both runs
(old, new and the ratio), what the new tests add, and the largest changes either way. Run
both suites the same way in the same hour (this host's timings move by a third between
hours), e.g. an old commit in a worktree:

    git worktree add /tmp/old 0a07508 && ln -sfn "$PWD/../shared" /tmp/shared  # its data
    py=$PWD/.venv/bin/python
    (cd /tmp/old && $py -m pytest -q -n 2 --dist loadfile --junitxml=/tmp/old.xml)
    $py -m pytest -q -n 2 --dist loadfile --junitxml=/tmp/new.xml
    .venv/bin/python bench/suite_time.py /tmp/old.xml /tmp/new.xml

A module's first test also pays for its module-scoped fixtures, so single tests move when a
module's order changes; the sum over matched tests does not. Writes bench/results/suite_time.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "suite_time.json"
Key = tuple[str, str]  # (the module's file name, the test's name with its parameters)


def read_report(path: Path) -> tuple[dict[Key, float], float]:
    """Each test's seconds, keyed by its module's last dotted name and its own name, and the
    run's wall time."""
    times: dict[Key, float] = {}
    tree = ET.parse(path)
    wall = sum(float(suite.get("time", 0.0)) for suite in tree.iter("testsuite"))
    for case in tree.iter("testcase"):
        key = (case.get("classname", "").split(".")[-1], case.get("name", ""))
        times[key] = times.get(key, 0.0) + float(case.get("time", 0.0))
    return times, wall


def match(old: dict[Key, float], new: dict[Key, float]) -> dict[Key, Key]:
    """Old key -> new key: the same module file and name, else the one new test of that name
    (a module renamed while moving into a folder)."""
    by_name: dict[str, list[Key]] = collections.defaultdict(list)
    for key in new:
        by_name[key[1]].append(key)
    pairs = {}
    for key in old:
        if key in new:
            pairs[key] = key
        elif len(by_name[key[1]]) == 1:
            pairs[key] = by_name[key[1]][0]
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old", type=Path, help="the baseline run's JUnit XML")
    parser.add_argument("new", type=Path, help="this run's JUnit XML")
    parser.add_argument("--top", type=int, default=8, help="largest changes to list each way")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the figures go (JSON)")
    args = parser.parse_args()
    (old, old_wall), (new, new_wall) = read_report(args.old), read_report(args.new)
    pairs = match(old, new)
    old_s = sum(old[k] for k in pairs)
    new_s = sum(new[v] for v in pairs.values())
    matched = set(pairs.values())
    added = sum(t for k, t in new.items() if k not in matched)
    print(f"tests: old {len(old)}, new {len(new)}, in both {len(pairs)}, "
          f"old ones not found {len(old) - len(pairs)}; wall: old {old_wall:.0f} s, "
          f"new {new_wall:.0f} s")
    print(f"tests in both, summed: old {old_s:.1f} s (baseline), new {new_s:.1f} s, "
          f"ratio {new_s / old_s:.2f}x")
    print(f"new tests add {added:.1f} s; whole suites summed: old {sum(old.values()):.1f} s, "
          f"new {sum(new.values()):.1f} s")
    args.out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "old": str(args.old),
        "new": str(args.new), "tests_old": len(old), "tests_new": len(new),
        "tests_in_both": len(pairs), "wall_old_s": round(old_wall),
        "wall_new_s": round(new_wall), "in_both_old_s": round(old_s, 1),
        "in_both_new_s": round(new_s, 1), "ratio": round(new_s / old_s, 3),
        "new_tests_s": round(added, 1)}, indent=2) + "\n")
    changes = sorted(((new[v] - old[k], k) for k, v in pairs.items()), reverse=True)
    for title, rows in (("slower", changes[:args.top]), ("faster", changes[::-1][:args.top])):
        print(f"largest changes, {title}:")
        for delta, key in rows:
            print(f"  {delta:+7.1f} s  {old[key]:6.1f} -> {new[pairs[key]]:6.1f}  "
                  f"{key[0]}::{key[1]}")


if __name__ == "__main__":
    main()
