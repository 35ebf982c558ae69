"""Count (alias, target) pairs within a memory budget: sorted run files + k-way merge.

Pairs are summed in a dict; when its estimated size passes the budget it is
written, sorted, to a run file (``alias TAB target TAB value``) and cleared.
``merge`` streams every run at once (``heapq.merge``) and sums equal pairs,
so the whole pair table never has to fit in memory. A value packs a link
count and a flag: ``links << 1 | flag`` (flag: the pair also comes from a
label, alias or redirect, so it is kept whatever its count).
"""

import heapq
import os
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

# Estimated bytes of one dict entry besides its strings (tuple, two str, int, slot).
ENTRY_OVERHEAD = 240
# Runs merged at once; more runs are first merged into bigger runs.
MAX_FAN_IN = 64


def clean_text(text: str) -> str:
    """One line of text: tabs and newlines become spaces, runs of spaces one."""
    return " ".join(text.split())


class PairSorter:
    """Sum pair values in memory and spill sorted runs to ``folder``."""

    def __init__(self, folder: Path, prefix: str, memory_limit: int) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.memory_limit = max(int(memory_limit), 1)
        self.counts: Dict[Tuple[str, str], int] = {}
        self.size = 0
        self.runs: List[Path] = []
        self.spills = 0

    def add(self, alias: str, target: str, links: int, flag: int) -> None:
        key = (alias, target)
        value = links << 1 | flag
        old = self.counts.get(key)
        if old is None:
            self.counts[key] = value
            self.size += ENTRY_OVERHEAD + len(alias) + len(target)
            if self.size > self.memory_limit:
                self.spill()
        else:
            self.counts[key] = ((old >> 1) + links) << 1 | ((old | value) & 1)

    def add_counts(self, counts: Dict[Tuple[str, str], int], flag: int = 0) -> None:
        for (alias, target), links in counts.items():
            self.add(alias, target, links, flag)

    def spill(self) -> None:
        if not self.counts:
            return
        path = self.folder / f"{self.prefix}-{len(self.runs):05d}.tsv"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf8", newline="\n") as file:
            file.writelines(f"{a}\t{t}\t{v}\n" for (a, t), v in sorted(self.counts.items()))
        os.replace(tmp, path)
        self.runs.append(path)
        self.spills += 1
        self.counts = {}
        self.size = 0

    def finish(self) -> List[Path]:
        """Spill what is left; RETURNS the run files."""
        self.spill()
        return list(self.runs)


def _read_run(path: Path) -> Iterator[Tuple[str, str, int]]:
    with open(path, encoding="utf8", newline="\n") as file:
        for line in file:
            alias, target, value = line.rstrip("\n").split("\t")
            yield alias, target, int(value)


def _merge_sorted(streams) -> Iterator[Tuple[str, str, int]]:
    key = None
    total = 0
    for alias, target, value in heapq.merge(*streams):
        if (alias, target) != key:
            if key is not None:
                yield key[0], key[1], total
            key = (alias, target)
            total = value
        else:
            total = ((total >> 1) + (value >> 1)) << 1 | ((total | value) & 1)
    if key is not None:
        yield key[0], key[1], total


def merge_runs(runs: List[Path], scratch: Path) -> Iterator[Tuple[str, str, int, int]]:
    """(alias, target, links, flag) of all runs, summed, in (alias, target) order."""
    runs = list(runs)
    level = 0
    while len(runs) > MAX_FAN_IN:
        merged = []
        for start in range(0, len(runs), MAX_FAN_IN):
            group = runs[start:start + MAX_FAN_IN]
            path = Path(scratch) / f"merge-{level}-{start // MAX_FAN_IN:05d}.tsv"
            with open(path, "w", encoding="utf8", newline="\n") as file:
                file.writelines(f"{a}\t{t}\t{v}\n"
                                for a, t, v in _merge_sorted(_read_run(p) for p in group))
            merged.append(path)
        runs = merged
        level += 1
    for alias, target, value in _merge_sorted(_read_run(p) for p in runs):
        yield alias, target, value >> 1, value & 1
