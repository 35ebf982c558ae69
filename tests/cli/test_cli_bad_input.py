"""Bad input to the CLI: one clear message on stderr, a non-zero exit, only data on stdout.

Issue 14: `link --format jsonl` must be safe to pipe (data on stdout, messages on
stderr, colours only on a terminal, one output line per input line), and bad
input (invalid UTF-8, lone surrogates, invalid JSON, missing folders and files,
truncated .gz) must give a message, never a traceback. CliRunner keeps stdout
and stderr apart (result.stdout, result.stderr); a few checks run the real
command in a subprocess, with pipes and with a pseudo-terminal.
"""

import gzip
import json
import os
import subprocess
import sys
import tempfile

import pytest
import spacy
from typer.testing import CliRunner

from entity_linker.cli import app, sets_ents
from entity_linker.corpora import decode_line, text_problem

runner = CliRunner()
DALLAS = "4684888"
ANSI = "\x1b["


@pytest.fixture
def geo_cache(real_geonames, monkeypatch):
    """The embedded pipeline maps the GeoNames KB from this (session) cache."""
    monkeypatch.setenv("ENTITY_LINKER_CACHE", str(real_geonames["cache"]))
    return real_geonames


def invoke(args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def _records(stdout):
    return [json.loads(line) for line in stdout.splitlines()]


def assert_clean_failure(result, *expected, code=1):
    """A non-zero exit with one message line on stderr naming *expected; no traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert ANSI not in result.stderr  # not a terminal: no colours
    for text in expected:
        assert text in lines[0], lines[0]


# ------------------------------------------------------------------- helpers


def test_text_problem_and_decode_line():
    assert text_problem("Paris") is None
    assert "byte 0xff" in text_problem("Paris \udcff")
    assert "lone surrogate" in text_problem("a \ud800")
    assert decode_line(b"Paris\r\n") == ("Paris", None)
    line, problem = decode_line(b"Paris \xff\n")
    assert line == "Paris \ufffd" and "not valid UTF-8 (byte 0xff at column 7)" in problem
    assert decode_line("caf\udce9\n")[1].startswith("the line is not valid UTF-8")


def test_sets_ents_is_shared_by_link_and_evaluate():
    from entity_linker.cli import evaluate, link

    assert evaluate.sets_ents is sets_ents is link.sets_ents
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("entity_ruler")
    assert sets_ents(nlp, "entity_ruler") is False
    nlp.add_pipe("sentencizer", name="after")
    assert sets_ents(nlp, "after") is True


# ------------------------------------------------ link: fails before loading


@pytest.mark.parametrize("args,expected", [
    (["Paris \udcff"], ["argument 1 is not valid UTF-8", "0xff"]),
    (["fine", "a \ud800"], ["argument 2", "lone surrogate"]),
    (["--html", "{tmp}/no/such/folder/o.html", "Dallas"], ["--html", "does not exist"]),
    (["--html", "{tmp}", "Dallas"], ["--html", "is a folder"]),
    (["-f", "{tmp}/missing.txt"], ["No such file", "missing.txt"]),
    (["--pipeline", "{tmp}/no_pipeline", "Dallas"], ["No pipeline at"]),
])
def test_link_usage_problems_fail_before_linking(tmp_path, args, expected):
    # No pipeline is loaded for these (no GeoNames cache is needed).
    result = invoke(["link", *[a.replace("{tmp}", str(tmp_path)) for a in args]])
    assert_clean_failure(result, *expected)
    assert result.stdout == ""


# ------------------------------------------------------------ link: line input


def test_link_jsonl_gives_one_line_per_input_line_blank_lines_too(geo_cache):
    result = invoke(["link", "--format", "jsonl", "-f", "-"],
                    input="We drove to Dallas.\n\n   \nFlights leave Dallas daily.\n")
    assert result.exit_code == 0, result.stderr
    records = _records(result.stdout)
    assert [r["text"] for r in records] == [
        "We drove to Dallas.", "", "", "Flights leave Dallas daily."]
    assert records[1] == {"text": "", "ents": []} == records[2]
    assert records[0]["ents"][0]["kb_id"] == DALLAS


def test_link_bad_jsonl_line_writes_the_documents_before_it_then_fails(geo_cache, tmp_path):
    path = tmp_path / "docs.jsonl"
    good = [{"text": f"Trip {i} to Dallas."} for i in range(70)]  # more than a batch (64)
    path.write_text("".join(json.dumps(r) + "\n" for r in good) + "\n" + "not json\n"
                    + json.dumps({"text": "after"}) + "\n", encoding="utf8")
    result = invoke(["link", "--format", "jsonl", "-f", path])
    assert_clean_failure(result, f"{path}:72:", "invalid JSON", "--skip-invalid")
    records = _records(result.stdout)
    assert [r["text"] for r in records] == [r["text"] for r in good] + [""]
    assert all(r["ents"][0]["kb_id"] == DALLAS for r in records[:70])


@pytest.mark.parametrize("content,location,problem", [
    (b'{"text": "Dallas"}\n{"id": 3}\n', ":2:", "'text' string"),
    (b'{"text": "Dallas"}\n["x"]\n', ":2:", "'text' string"),
    (b'{"text": "Dallas"}\n{"text": "caf\xe9"}\n', ":2:", "not valid UTF-8 (byte 0xe9"),
    (b'{"text": "Dallas"}\n{"text": "x \\udcff"}\n', ":2:", "not valid UTF-8 (byte 0xff"),
])
def test_link_bad_jsonl_lines_name_file_and_line(geo_cache, tmp_path, content, location,
                                                 problem):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(content)
    result = invoke(["link", "--format", "jsonl", "-f", path])
    assert_clean_failure(result, f"{path}{location}", problem)
    assert [r["text"] for r in _records(result.stdout)] == ["Dallas"]


def test_link_invalid_utf8_on_stdin_and_in_a_text_file(geo_cache, tmp_path):
    result = invoke(["link", "--format", "jsonl"], input=b"Dallas\nParis \xff\nRome\n")
    assert_clean_failure(result, "<stdin>:2:", "not valid UTF-8 (byte 0xff at column 7)")
    assert [r["text"] for r in _records(result.stdout)] == ["Dallas"]
    path = tmp_path / "latin1.txt"
    path.write_bytes("Line one.\nCaf\xe9 in Dallas.\n".encode("latin-1"))
    result = invoke(["link", "--format", "jsonl", "-f", path])
    assert_clean_failure(result, f"{path}:2:", "not valid UTF-8 (byte 0xe9 at column 4)")
    assert result.stdout == ""


def test_link_skip_invalid_keeps_lines_aligned_and_counts(geo_cache, tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "Dallas"}\nnot json\n\n{"id": 1}\n{"text": "Dallas!"}\n',
                    encoding="utf8")
    result = invoke(["link", "--format", "jsonl", "--skip-invalid", "-f", path])
    assert result.exit_code == 0, result.stderr
    records = _records(result.stdout)
    assert [r["text"] for r in records] == ["Dallas", "", "", "", "Dallas!"]
    assert records[1]["ents"] == [] and records[1]["error"].startswith(f"{path}:2: invalid")
    assert records[2] == {"text": "", "ents": []}
    assert records[3]["error"].startswith(f"{path}:4:")
    assert "Skipped 2 invalid" in result.stderr
    assert f"{path}:2:" in result.stderr and f"{path}:4:" in result.stderr
    assert "Traceback" not in result.stderr


def test_link_html_message_goes_to_stderr(geo_cache, tmp_path):
    page = tmp_path / "o.html"
    result = invoke(["link", "--format", "jsonl", "--html", page, "We drove to Dallas."])
    assert result.exit_code == 0, result.stderr
    (record,) = _records(result.stdout)  # only JSON on stdout
    assert record["ents"][0]["kb_id"] == DALLAS
    assert f"Wrote {page}" in result.stderr and ANSI not in result.stderr
    assert page.is_file()


def test_link_warns_once_when_no_component_sets_ents(geo_cache, tmp_path):
    from entity_linker.geonames import geo_pipeline_path

    nlp = spacy.load(geo_pipeline_path())
    for name in list(nlp.pipe_names):
        if "doc.ents" in nlp.get_pipe_meta(name).assigns:
            nlp.remove_pipe(name)
    assert not sets_ents(nlp, "nel")
    nlp.to_disk(tmp_path / "no_ner")
    result = invoke(["link", "-p", tmp_path / "no_ner", "--format", "jsonl", "Dallas", "Paris"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("sets doc.ents") == 1
    assert [r["ents"] for r in _records(result.stdout)] == [[], []]


# ---------------------------------------------------------------- evaluate


def test_evaluate_a_python_package_that_is_no_pipeline(tmp_path):
    corpus = tmp_path / "x.jsonl"
    corpus.write_text('{"text": "a", "ents": []}\n', encoding="utf8")
    result = invoke(["evaluate", "entity_linker", corpus])
    assert_clean_failure(result, "Could not load the pipeline entity_linker")
    result = invoke(["evaluate", tmp_path / "nope", corpus])
    assert_clean_failure(result, "Could not load the pipeline", "nope")


def test_evaluate_checks_the_corpus_and_json_folder_before_loading(tmp_path):
    # The pipeline name is a Python package, not a pipeline: never loaded.
    result = invoke(["evaluate", "entity_linker", tmp_path / "x.spacy"])
    assert_clean_failure(result, "No such file", "x.spacy")
    corpus = tmp_path / "x.jsonl"
    corpus.write_text('{"text": "a", "ents": []}\n', encoding="utf8")
    result = invoke(["evaluate", "entity_linker", corpus, "--json", tmp_path / "no" / "s.json"])
    assert_clean_failure(result, "--json", "does not exist")


# ---------------------------------------------------------------- kb build


def test_kb_build_truncated_gz_names_the_file(tmp_path):
    rows = "".join(f"Q{i},{i},Entity {i}\n" for i in range(20000))
    data = gzip.compress(("id,freq,name\n" + rows).encode("utf8"))
    entities = tmp_path / "entities.csv.gz"
    entities.write_bytes(data[: len(data) // 2])
    aliases = tmp_path / "aliases.csv"
    aliases.write_text("alias,entity,count\nEntity 1,Q1,1\n", encoding="utf8")
    for progress in ("--progress", "--no-progress"):
        result = invoke(["kb", "build", entities, aliases, "-o", tmp_path / "kb", progress])
        assert result.exit_code == 1, result.output
        assert "Aborted" not in result.output and "Traceback" not in result.output
        assert str(entities) in result.output and "truncated" in result.output
        assert not (tmp_path / "kb").exists()


# ------------------------------------------------- real processes: pipes, tty


def _run(args, **kwargs):
    env = {**os.environ, **kwargs.pop("env", {})}
    args = [a if isinstance(a, bytes) else str(a) for a in args]
    # cwd: not the source tree, whose uncompiled package would shadow the installed one.
    return subprocess.run([sys.executable, "-m", "entity_linker", *args],
                          capture_output=True, env=env, timeout=300,
                          cwd=tempfile.gettempdir(), **kwargs)


def test_piped_link_keeps_stdout_for_data(geo_cache, tmp_path):
    page = tmp_path / "o.html"
    env = {"ENTITY_LINKER_CACHE": str(geo_cache["cache"])}
    result = _run(["link", "--format", "jsonl", "--html", page, "-f", "-"],
                  input=b"We drove to Dallas.\n\nbad \xff line\nnever read\n", env=env)
    assert result.returncode == 1
    stdout = result.stdout.decode("utf8")
    assert [r["text"] for r in _records(stdout)] == ["We drove to Dallas.", ""]
    stderr = result.stderr.decode("utf8")
    assert "Traceback" not in stderr and ANSI not in stderr
    assert "<stdin>:3: not valid UTF-8" in stderr and f"Wrote {page}" in stderr
    # A non-UTF-8 argument: Python gives it a lone surrogate.
    result = _run(["link", "--format", "jsonl", os.fsencode("Paris \udcff")], env=env)
    assert result.returncode == 1 and result.stdout == b""
    stderr = result.stderr.decode("utf8")
    assert stderr.count("\n") == 1 and "argument 1 is not valid UTF-8" in stderr


def test_messages_are_coloured_on_a_terminal_only(tmp_path):
    pty = pytest.importorskip("pty")
    args = [sys.executable, "-m", "entity_linker", "link", "--html",
            str(tmp_path / "no" / "o.html"), "x"]

    def stderr_on_a_terminal(env):
        primary, secondary = pty.openpty()
        try:
            process = subprocess.run(args, stderr=secondary, stdout=subprocess.PIPE,
                                     env=env, timeout=300, cwd=tempfile.gettempdir())
            os.close(secondary)
            secondary = None
            chunks = []
            while True:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return process.returncode, b"".join(chunks).decode("utf8")
        finally:
            os.close(primary)
            if secondary is not None:
                os.close(secondary)

    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "ANSI_COLORS_DISABLED")}
    code, stderr = stderr_on_a_terminal(env)
    assert code == 1 and ANSI in stderr and "does not exist" in stderr
    code, stderr = stderr_on_a_terminal({**env, "NO_COLOR": "1"})
    assert code == 1 and ANSI not in stderr and "does not exist" in stderr
    result = _run(args[3:])
    assert result.returncode == 1 and b"\x1b[" not in result.stderr
