"""Summarise a py-spy speedscope profile of the gateway: CPU shares per library and function."""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# Frames up to and including these run the event loop; what the loop does is below them.
_LOOP_FILES = ("asyncio/runners.py", "asyncio/base_events.py")
EVENT_LOOP = "event loop itself (uvloop C code: sockets, callbacks)"
NATIVE = "no Python frame on the stack (native code: greenlet switches, GC, ...)"


@dataclass(frozen=True)
class Frame:
    function: str  # "name (file)" without the line: one entry per function
    area: str
    third_party: bool
    loop: bool
    root: bool


def _area(file: str) -> tuple[str, bool]:
    """(library or stdlib module of a frame's file, whether it is third-party or ours)."""
    path = file.replace("\\", "/")
    if "/smsgate/" in path and "site-packages" not in path:
        return "smsgate", True
    if "site-packages/" in path:
        top = path.split("site-packages/", 1)[1].split("/", 1)[0]
        return top.removesuffix(".py").split(".")[0], True
    if match := re.search(r"/lib/python3\.\d+/([^/]+)", path):
        return "stdlib " + match.group(1).removesuffix(".py"), False
    return NATIVE, False


@dataclass
class _Shares:
    total: float = 0.0
    by_area: Counter[str] = field(default_factory=Counter)
    self_time: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)


def _add_sample(shares: _Shares, stack: list[int], weight: float, frames: list[Frame]) -> None:
    shares.total += weight
    # py-spy --subprocesses puts a "process <pid>" pseudo-frame at the root of every stack.
    stack = [i for i in stack if not frames[i].root] or stack[-1:]
    loop_at = max((i for i, idx in enumerate(stack) if frames[idx].loop), default=-1)
    below_loop = stack[loop_at + 1 :]
    if loop_at >= 0 and not below_loop:
        area = EVENT_LOOP
    else:
        considered = below_loop or stack
        ours = [frames[i].area for i in considered if frames[i].third_party]
        area = ours[-1] if ours else frames[considered[-1]].area
    shares.by_area[area] += weight
    leaf = frames[stack[-1]]
    shares.self_time[NATIVE if leaf.root else leaf.function] += weight
    for function in {frames[i].function for i in below_loop if not frames[i].root}:
        shares.inclusive[function] += weight


def summarise_speedscope(path: Path, top: int = 20) -> str:
    """Shares of the gateway's sampled CPU time: per library and per function.

    A sample counts for the library of its innermost frame in a third-party package or in
    smsgate (standard-library helpers count for their caller: `re` under SQLAlchemy is
    SQLAlchemy). The event-loop thread and the other threads are reported separately.
    """
    data = json.loads(path.read_text())
    frames = []
    for raw in data["shared"]["frames"]:
        file = raw.get("file") or ""
        short = re.sub(r"^.*?(site-packages/|/lib/python3\.\d+/|/src/)", "", file)
        area, third_party = _area(file)
        loop = short.endswith(_LOOP_FILES)
        frames.append(Frame(f"{raw['name']} ({short})", area, third_party, loop, not file))
    main, others = _Shares(), _Shares()
    other_threads = 0
    for profile in data["profiles"]:
        is_main = '"MainThread"' in profile["name"]
        other_threads += not is_main
        shares = main if is_main else others
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if stack:
                _add_sample(shares, stack, weight, frames)
    if not main.total:
        return "the profile holds no samples of the main thread (was the gateway idle?)\n"

    def table(title: str, counts: Counter[str], total: float, limit: int) -> list[str]:
        lines = [title]
        lines += [
            f"  {100 * weight / total:5.1f}%  {label}"
            for label, weight in counts.most_common(limit)
        ]
        return [*lines, ""]

    busiest = [(f, w) for f, w in main.inclusive.most_common() if w < 0.95 * main.total]
    lines = [
        f"{path.name}: non-idle samples; main thread (event loop) {main.total:.2f} s, "
        f"{other_threads} other threads {others.total:.2f} s",
        "",
        *table("main thread, by library:", main.by_area, main.total, top),
        *table("main thread, self time (innermost frame):", main.self_time, main.total, top),
        *table(
            "main thread, inclusive time, smsgate functions:",
            Counter({f: w for f, w in main.inclusive.items() if "smsgate/" in f}),
            main.total,
            top,
        ),
        *table(
            "main thread, inclusive time, all functions below the event loop:",
            Counter(dict(busiest)),
            main.total,
            top + 10,
        ),
    ]
    if others.total:
        lines += table(
            "other threads (anyio worker threads running sync dependencies; py-spy counts some "
            "of their waiting as active, /proc CPU in run.py's table is the real cost), self time:",
            others.self_time,
            others.total,
            8,
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path, help="py-spy record --format speedscope output")
    parser.add_argument("--top", type=int, default=20, help="rows per table")
    args = parser.parse_args()
    print(summarise_speedscope(args.profile, args.top))


if __name__ == "__main__":
    main()
