"""How a corpus is cut into tasks: inputs, partitions, their statistics and the input errors.

``expand_inputs`` (paths, globs, folders -> files), ``make_partitions`` (one
per file or per N lines), ``Partition``/``PartitionStats``/``CorpusSummary``,
and the errors a run raises for bad inputs, pipelines or KBs.
"""

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..errors import CorpusError

PathLike = Union[str, Path]

DEFAULT_BATCH_SIZE = 256
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
TEXT_SUFFIXES = (".txt", ".text")
KB_FROM_FILE = "entity_linker.KBFromFile.v1"
NEL_FACTORY = "nel"
TMP_SUFFIX = ".tmp"


# ------------------------------------------------------------------- errors


class InputFormatError(CorpusError):
    """An input line is not valid UTF-8, or a JSONL line is not an object with a "text"."""


# FileNotFoundError first: its __new__ must build these (Dask's tblib pickling
# calls the first base's __new__, and ValueError's cannot make an OSError).
class PipelineNotFoundError(FileNotFoundError, CorpusError):
    """A worker cannot find the pipeline folder at the path it was given."""


class KBNotFoundError(FileNotFoundError, CorpusError):
    """A worker cannot find the KB file that a pipeline's ``nel`` component maps."""


# ------------------------------------------------------------ partitions


@dataclass(frozen=True)
class Partition:
    """A slice of one input file: the unit of work and of output.

    path (str): The input file, as the workers see it.
    is_jsonl (bool): JSONL records (else one text per line).
    output_name (str): File name of the partition's output in the output folder.
    first_line (int): 0-based index of the partition's first line in the file.
    offset (int): Byte offset of that line.
    n_lines (Optional[int]): Number of lines; None reads to the end of the file.
    """

    path: str
    is_jsonl: bool
    output_name: str
    first_line: int = 0
    offset: int = 0
    n_lines: Optional[int] = None


@dataclass
class PartitionStats:
    """What linking one partition did (returned by ``link_partition``)."""

    output_name: str
    documents: int = 0
    mentions: int = 0
    linked: int = 0
    seconds: float = 0.0
    startup_seconds: float = 0.0  # pipeline load time if this task loaded it, else 0
    worker: str = ""
    reused_output: bool = False  # the file was already complete when the task started
    skipped: int = 0  # invalid lines skipped (skip_invalid)
    skipped_examples: List[str] = field(default_factory=list)  # the first few, file:line


@dataclass
class CorpusSummary:
    """The result of ``link_corpus``: counts for the partitions linked in this run.

    Partitions skipped because their output already existed are counted in
    ``partitions_skipped`` only.
    """

    output_dir: Path
    documents: int = 0
    mentions: int = 0
    linked: int = 0
    nil: int = 0
    seconds: float = 0.0
    partitions: int = 0
    partitions_skipped: int = 0
    workers: int = 1
    startup_seconds: float = 0.0
    skipped: int = 0  # invalid lines skipped (skip_invalid)
    skipped_examples: List[str] = field(default_factory=list)  # the first few, file:line
    partition_stats: List[PartitionStats] = field(default_factory=list, repr=False)

    @property
    def docs_per_second(self) -> float:
        """Documents linked per second of wall time (0 when nothing ran)."""
        return self.documents / self.seconds if self.seconds > 0 else 0.0

    def rows(self) -> List[Tuple[str, str]]:
        """The summary as (name, value) rows for printing."""
        return [
            ("documents", f"{self.documents:,}"),
            ("mentions", f"{self.mentions:,}"),
            ("linked", f"{self.linked:,}"),
            ("NIL", f"{self.nil:,}"),
            ("docs/s", f"{self.docs_per_second:,.1f}"),
            ("seconds", f"{self.seconds:.2f}"),
            ("partitions linked", f"{self.partitions:,}"),
            ("partitions skipped", f"{self.partitions_skipped:,}"),
            ("invalid lines skipped", f"{self.skipped:,}"),
            ("workers", f"{self.workers}"),
            ("pipeline start-up (s)", f"{self.startup_seconds:.2f}"),
            ("output", str(self.output_dir)),
        ]


def expand_inputs(inputs: Union[PathLike, Sequence[PathLike]]) -> List[Path]:
    """The input files named by paths, globs and folders, in order, without repeats.

    inputs (Union[PathLike, Sequence[PathLike]]): Files, glob patterns (``**``
        allowed) or folders (their ``.txt``, ``.jsonl``, ``.ndjson`` and ``.json`` files).
    RETURNS (List[Path]): The files.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    files: List[Path] = []
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            matches = sorted(
                p for p in path.iterdir()
                if p.is_file() and p.suffix in JSONL_SUFFIXES + TEXT_SUFFIXES
            )
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True)
                             if Path(p).is_file())
        else:
            matches = []
        if not matches:
            raise FileNotFoundError(f"No input file matches {text!r}.")
        files.extend(matches)
    unique: Dict[Path, None] = {}
    for path in files:
        unique.setdefault(path.resolve(), None)
    return list(unique)


def _output_names(files: Sequence[Path]) -> List[str]:
    """Stems, with as many parent folder names prefixed as needed to make them unique."""
    depth = [1] * len(files)

    def name(i: int) -> str:
        parts = files[i].with_suffix("").parts
        return "_".join(parts[-depth[i]:]).lstrip("/_") or "input"

    while True:
        groups: Dict[str, List[int]] = {}
        for i in range(len(files)):
            groups.setdefault(name(i), []).append(i)
        clashes = [ids for ids in groups.values() if len(ids) > 1]
        if not clashes:
            return [name(i) for i in range(len(files))]
        for ids in clashes:
            for i in ids:
                depth[i] += 1


def _line_offsets(path: Path, every: int) -> List[Tuple[int, int]]:
    """(first line, byte offset) of each block of ``every`` lines of a file."""
    starts = [(0, 0)]
    position = 0
    count = 0
    with path.open("rb") as file:
        for line in file:
            position += len(line)
            count += 1
            if count % every == 0:
                starts.append((count, position))
    if len(starts) > 1 and starts[-1][1] == position:
        starts.pop()  # the file ends exactly at a block boundary
    return starts


def make_partitions(files: Sequence[Path], partition_size: Optional[int] = None
                    ) -> List[Partition]:
    """Cut the input files into partitions (see the module docstring).

    files (Sequence[Path]): Input files (e.g. from ``expand_inputs``).
    partition_size (Optional[int]): Lines per partition; None for one per file.
    RETURNS (List[Partition]): The partitions, in input order.
    """
    if partition_size is not None and partition_size < 1:
        raise ValueError(f"partition_size must be >= 1 or None, got {partition_size}.")
    partitions = []
    for path, name in zip(files, _output_names(files)):
        is_jsonl = path.suffix.lower() in JSONL_SUFFIXES
        if partition_size is None:
            partitions.append(Partition(str(path), is_jsonl, f"{name}.jsonl"))
            continue
        for index, (first_line, offset) in enumerate(_line_offsets(path, partition_size)):
            partitions.append(Partition(str(path), is_jsonl, f"{name}-{index:05d}.jsonl",
                                        first_line, offset, partition_size))
    return partitions
