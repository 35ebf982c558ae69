"""Every code block of README.md is executed or checked here (issue 14).

README.md is parsed at test time, so a block added or changed there is tested
as it stands:

- ```python blocks run in a temporary working directory, cumulatively within
  their README section ("## ..."): a block sees the names the section's
  earlier blocks define, as a reader following the section would.
- ```bash blocks: each command (``&&`` chains split) is run in a subprocess,
  through the installed ``entity-linker`` script, in a temporary directory
  holding the small input files the README names; it must exit with 0.
  Commands that cannot run here (installing, a Dask scheduler, GeoNames dumps,
  training data) are skipped by an explicit rule in SKIPPED_COMMANDS, with the
  reason; a command matching no rule and not an ``entity-linker`` command fails.
- plain ``` blocks show the output of the closest code block above them in
  the same section (of its last command): every non-blank line shown must be a
  line of the real output (whitespace-normalised).
- ```ini blocks must parse as thinc configs, name sections of the ``nel``
  config template, use registered functions, and build a pipeline when merged
  into the template.

The GeoNames KB comes from the session's ``real_geonames`` fixture
(ENTITY_LINKER_CACHE), so it is built once.
"""

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BIN_DIR = Path(sys.executable).parent
COMMAND_TIMEOUT = 120

# Shell commands of the README that are not run, each with its reason. A
# pattern is searched (re.search) in one command of an && chain.
SKIPPED_COMMANDS: List[Tuple[str, str]] = [
    (r"^python3? -m venv\b", "creates a virtualenv: the tests run in the dev venv"),
    (r"^(\.|source) \S*activate$", "activates the virtualenv made by the skipped venv command"),
    (r"^pip install\b", "installs the package: the tests run against the installed package"),
    (r"^pytest\b", "runs the test suite this test is part of"),
    (r"--scheduler tcp://host:", "needs a running Dask scheduler (host is a placeholder)"),
    (r"allCountries\.zip", "needs GeoNames dumps (allCountries.zip, admin2Codes.txt) that are "
                           "not shipped; tests/test_geonames_dump.py builds from small dumps"),
    (r"^entity-linker kb build --geonames$",
     "rebuilds the 287k-place GeoNames KB (~15 s) into the cache; the real_geonames session "
     "fixture builds the same KB with the same build_geonames_kb, and tests/cli/test_kb_cli.py "
     "runs `kb build --geonames` on a small stand-in"),
    (r"--wikidata latest-all|--wikipedia enwiki-latest",
     "needs the Wikidata and Wikipedia dumps (hundreds of GB); tests/wikidata builds a KB and "
     "a corpus from small dumps in the same formats"),
    (r"^entity-linker serve\b", "starts a server that runs until stopped; tests/serve starts "
                                "one and queries every endpoint with a real HTTP client"),
    (r"^curl .*localhost:8080", "queries the server of the skipped serve command (tests/serve "
                                "sends the same request)"),
    (r"^entity-linker train\b", "needs .spacy training data and trains for the config's "
                                "epochs; tests/cli/test_train_evaluate_cli.py trains a pipeline"),
    (r"^entity-linker evaluate training/", "evaluates the model of the skipped train command"),
]

# Python blocks whose names are not defined in the README section they sit in
# get them from this prelude, run before the section's first block. The
# "Candidates beyond exact match" snippet shows how to switch an existing
# pipeline's generator, so it needs a `kb` and an `nlp` with a `nel`: the
# prelude supplies the small KB of "The knowledge base" and such a pipeline.
PRELUDES: Dict[str, str] = {
    "Candidates beyond exact match": """
import spacy
from entity_linker import InMemoryLookupKB
nlp = spacy.blank("en")
kb = InMemoryLookupKB(nlp.vocab, entity_vector_length=3)
kb.add_entity("Q90", freq=120, entity_vector=[1.0, 0.0, 0.0])
kb.add_entity("Q830149", freq=8, entity_vector=[0.0, 1.0, 0.0])
kb.add_alias("Paris", ["Q90", "Q830149"], [0.9, 0.1])
nlp.add_pipe("nel", config={"entity_vector_length": 3}).set_kb(lambda vocab: kb)
""",
}

# Modules of optional extras: a python block importing one that is not
# installed is skipped (none of the current blocks does).
OPTIONAL_MODULES = {"sentence_transformers": "minilm", "torch": "minilm",
                    "dask": "dask", "distributed": "dask"}


# ------------------------------------------------------------------ parsing


@dataclass
class Block:
    index: int
    line: int  # 1-based line of the opening fence
    lang: str  # "python", "bash", "ini" or "" (shown output)
    code: str
    section: str  # the enclosing "## " heading
    heading: str  # the closest heading ("#", "##" or "###")

    @property
    def name(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.heading).strip("-")
        return f"{self.index:02d}-{self.lang or 'output'}-L{self.line}-{slug}"


def parse_readme(text: str) -> List[Block]:
    blocks: List[Block] = []
    section = heading = ""
    fence: Optional[Tuple[int, str]] = None
    body: List[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if fence is None:
            match = re.match(r"^```\s*(\w*)\s*$", line)
            if match:
                fence, body = (number, match.group(1)), []
            elif line.startswith("#"):
                heading = line.lstrip("#").strip()
                if re.match(r"^##? ", line):
                    section = heading
        elif line.strip() == "```":
            blocks.append(Block(len(blocks), fence[0], fence[1], "\n".join(body) + "\n",
                                section, heading))
            fence = None
        else:
            body.append(line)
    assert fence is None, f"README.md: the fence opened on line {fence[0]} is never closed"
    return blocks


BLOCKS = parse_readme(README.read_text(encoding="utf8"))
KNOWN_LANGS = {"python", "bash", "ini", ""}


def _outside_quotes(text: str):
    """Yield (position, char) of the characters of a shell line outside quotes."""
    quote = None
    escaped = False
    for position, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        else:
            yield position, char


def shell_commands(code: str) -> List[str]:
    """The commands of a bash block: continuation lines joined, comments
    dropped, && chains split."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        for position, char in _outside_quotes(line):
            if char == "#" and (position == 0 or line[position - 1].isspace()):
                line = line[:position]
                break
        cuts = [p for p, _ in _outside_quotes(line) if line.startswith("&&", p)]
        for start, end in zip([-2] + cuts, cuts + [len(line)]):
            part = " ".join(line[start + 2:end].split())
            if part:
                commands.append(part)
    return commands


def skip_reason(command: str) -> Optional[str]:
    for pattern, reason in SKIPPED_COMMANDS:
        if re.search(pattern, command):
            return reason
    return None


def _is_entity_linker(command: str) -> bool:
    return any(part.split()[:1] == ["entity-linker"] for part in command.split("|"))


BASH_CASES = [(block, i, command) for block in BLOCKS if block.lang == "bash"
              for i, command in enumerate(shell_commands(block.code))]


def producer_of(output: Block) -> Optional[Block]:
    """The code block whose output a plain block shows: the closest python or
    bash block above it in the same section."""
    for block in reversed(BLOCKS[:output.index]):
        if block.section != output.section:
            return None
        if block.lang in ("python", "bash"):
            return block
    return None


# ------------------------------------------------------------------ running


def write_inputs(folder: Path) -> None:
    """The small input files the README's commands name."""
    (folder / "entities.csv").write_text(
        "id,freq,name,description\n"
        "Q90,120,Paris,capital of France\n"
        "Q830149,8,Paris,city in Lamar County Texas\n", encoding="utf8")
    (folder / "aliases.tsv").write_text(
        "alias\tentity\tcount\nParis\tQ90\t90\nParis\tQ830149\t10\n", encoding="utf8")
    (folder / "article.txt").write_text(
        "The company moved from Springfield, Illinois to Paris, Texas.\n", encoding="utf8")
    (folder / "docs.txt").write_text(
        "They met in Boston.\n\nFlights leave Dallas daily.\n", encoding="utf8")
    news = folder / "news"
    news.mkdir()
    (news / "a.jsonl").write_text(
        json.dumps({"id": 1, "text": "We drove to Dallas."}) + "\n"
        + json.dumps({"id": 2, "text": "Paris, Texas"}) + "\n", encoding="utf8")
    (news / "b.jsonl").write_text(
        json.dumps({"id": 3, "text": "Springfield, Illinois"}) + "\n", encoding="utf8")
    # "any pipeline with a nel component": a copy of the embedded one.
    from entity_linker.geonames import geo_pipeline_path

    shutil.copytree(geo_pipeline_path(), folder / "my_pipeline")


@pytest.fixture(scope="module")
def shell(real_geonames, tmp_path_factory):
    """run(block, i) -> the CompletedProcess of the block's i-th command, run
    once per module in the block's own folder, after the block's earlier
    commands (so `kb info my_kb` finds the KB `kb build` wrote)."""
    env = dict(os.environ, ENTITY_LINKER_CACHE=str(real_geonames["cache"]), NO_COLOR="1",
               PATH=f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
    folders: Dict[int, Path] = {}
    results: Dict[Tuple[int, int], subprocess.CompletedProcess] = {}

    def run(block: Block, i: int) -> subprocess.CompletedProcess:
        if block.index not in folders:
            folders[block.index] = tmp_path_factory.mktemp(f"readme-{block.index:02d}")
            write_inputs(folders[block.index])
        for j, command in enumerate(shell_commands(block.code)[:i + 1]):
            if (block.index, j) in results or skip_reason(command):
                continue
            result = subprocess.run(["bash", "-c", command], cwd=folders[block.index], env=env,
                                    capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
            assert result.returncode == 0, (
                f"README.md line {block.line}: `{command}` exited with {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
            results[block.index, j] = result
        return results.get((block.index, i))

    return run


@pytest.fixture
def geo_env(real_geonames, monkeypatch, tmp_path):
    """A temporary working directory, with the session's GeoNames KB cache."""
    monkeypatch.setenv("ENTITY_LINKER_CACHE", str(real_geonames["cache"]))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_python(block: Block) -> Tuple[str, Dict[str, object]]:
    """Run the block after its section's earlier python blocks (and prelude),
    in a fresh namespace; returns what the block printed, and the namespace."""
    earlier = [b for b in BLOCKS[:block.index]
               if b.lang == "python" and b.section == block.section]
    namespace: Dict[str, object] = {"__name__": "__readme__"}
    prelude = PRELUDES.get(block.section)
    steps = ([("prelude", prelude)] if prelude else []) + [
        (f"README.md:{b.line}", b.code) for b in earlier + [block]]
    out = io.StringIO()
    for filename, code in steps:
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, filename, "exec"), namespace)
        except ModuleNotFoundError as err:
            extra = OPTIONAL_MODULES.get((err.name or "").split(".")[0])
            if extra is None:
                raise
            pytest.skip(f"needs the optional extra [{extra}] ({err.name} is not installed)")
    return out.getvalue(), namespace


def _normalised_lines(text: str) -> List[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------ tests


def test_readme_has_only_known_block_kinds():
    unknown = [(b.line, b.lang) for b in BLOCKS if b.lang not in KNOWN_LANGS]
    assert not unknown, f"README.md blocks this test does not know how to check: {unknown}"
    assert {b.lang for b in BLOCKS} >= {"python", "bash", "ini", ""}


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "python"],
                         ids=lambda b: b.name)
def test_python_block_runs(block, geo_env):
    run_python(block)


@pytest.mark.parametrize("block, i, command", BASH_CASES,
                         ids=[f"{b.name}-cmd{i}" for b, i, _ in BASH_CASES])
def test_shell_command_runs(block, i, command, shell):
    reason = skip_reason(command)
    if reason:
        pytest.skip(f"`{command}`: {reason}")
    assert _is_entity_linker(command), (
        f"README.md line {block.line}: `{command}` is neither an entity-linker command nor "
        "skipped by a rule of SKIPPED_COMMANDS: run it here or add a rule with its reason")
    assert shell(block, i).returncode == 0


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == ""], ids=lambda b: b.name)
def test_shown_output_is_the_real_output(block, shell, geo_env):
    producer = producer_of(block)
    assert producer is not None, (
        f"README.md line {block.line}: an output block with no code block above it in its "
        "section")
    if producer.lang == "python":
        real, _ = run_python(producer)
    else:
        commands = shell_commands(producer.code)
        i = max(j for j, command in enumerate(commands) if not skip_reason(command))
        real = shell(producer, i).stdout
    real_lines = set(_normalised_lines(real))
    missing = [line for line in _normalised_lines(block.code) if line not in real_lines]
    assert not missing, (
        f"README.md line {block.line} shows lines the code above it does not print:\n"
        + "\n".join(missing) + f"\n--- real output:\n{real}")


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "ini"], ids=lambda b: b.name)
def test_ini_block_is_a_valid_config_fragment(block):
    import spacy
    from spacy.util import load_model_from_config, registry
    from thinc.api import Config

    import entity_linker

    # thinc wants a section's parents defined: give the fragment's missing ones
    # (e.g. [components] and [components.nel] above [components.nel.model]).
    defined = re.findall(r"^\[([^\]]+)\]", block.code, flags=re.M)
    assert defined, f"README.md line {block.line}: no [section] in the ini block"
    parents = dict.fromkeys(".".join(name.split(".")[:n]) for name in defined
                            for n in range(1, name.count(".") + 1))
    headers = "".join(f"[{name}]\n" for name in parents if name not in defined)
    fragment = Config().from_str(headers + block.code, interpolate=False)
    template_path = Path(entity_linker.__file__).parent / "data" / "nel_config.cfg"
    template = Config().from_str(template_path.read_text(encoding="utf8"), interpolate=False)

    def sections(node, prefix=()):
        for key, value in node.items():
            if isinstance(value, dict):
                yield prefix + (key,), value
                yield from sections(value, prefix + (key,))

    for path, values in sections(fragment):
        node = template
        for key in path[:-1]:
            assert key in node, f"[{'.'.join(path)}]: no [{'.'.join(path[:-1])}] in the template"
            node = node[key]
        for key, value in values.items():
            if key.startswith("@"):
                registry.get(key[1:], value)  # raises when the name is not registered
    # Merged into the template, the fragment must build a pipeline (which
    # checks every setting against the registered functions' signatures).
    config = template.merge(fragment)
    config["paths"]["kb"] = "my_kb"  # validated as a Path, never read here
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    assert isinstance(nlp, spacy.Language) and "nel" in nlp.pipe_names
    for path, values in sections(fragment):  # the pipeline has the fragment's settings
        node = nlp.config
        for key in path:
            node = node[key]
        for key, value in values.items():
            if not isinstance(value, dict):
                assert node[key] == value, f"[{'.'.join(path)}] {key}: {node[key]!r}"


# The README says how "ST. LOUIS" and its variants are linked (a user reported
# the earlier claims were false): check the claims as they are written, for
# `entity-linker link` (Quick start) and the kb_spotter ("Link without an NER model").
LINK_CLAIM = ('so "Saint Louis", "ST LOUIS" and "ZURICH" find St.\n'
              'Louis, Missouri and Zürich. "ST. LOUIS" does not')
SPOTTER_CLAIM = 'so the spotter\nfinds only "ST" (São Tomé and Príncipe\'s code)'
ST_LOUIS, ZURICH, SETE, SAO_TOME = "4407066", "2657896", "2974733", "2410758"


def test_readme_st_louis_claims_hold(real_geonames, geo_env):
    readme = README.read_text(encoding="utf8")
    assert LINK_CLAIM in readme and SPOTTER_CLAIM in readme
    (spotter_block,) = [b for b in BLOCKS if b.lang == "python" and "kb_spotter" in b.code]
    _, namespace = run_python(spotter_block)
    doc = namespace["nlp"]("They flew from ST. LOUIS to ZURICH.")
    assert [(ent.text, ent.kb_id_) for ent in doc.ents] == [("ST", SAO_TOME), ("ZURICH", ZURICH)]
    texts = ["The team flew from Saint Louis to ZURICH.",
             "The team flew from ST LOUIS to Zurich.",
             "The team flew from ST. LOUIS to Zurich."]
    env = dict(os.environ, ENTITY_LINKER_CACHE=str(real_geonames["cache"]), NO_COLOR="1")
    result = subprocess.run([str(BIN_DIR / "entity-linker"), "link", "--format", "jsonl",
                             *texts], env=env, capture_output=True, text=True,
                            timeout=COMMAND_TIMEOUT)
    assert result.returncode == 0, result.stderr
    links = [{ent["text"]: ent["kb_id"] for ent in json.loads(line)["ents"]}
             for line in result.stdout.splitlines()]
    assert links[0] == {"Saint Louis": ST_LOUIS, "ZURICH": ZURICH}
    assert links[1] == {"ST LOUIS": ST_LOUIS, "Zurich": ZURICH}
    assert links[2] == {"ST.": SETE, "Zurich": ZURICH}
