"""Errors, log masking, whisper output parsing, parameter checks, text normalising, waiting and process memory."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stt import procs
from stt.preload import runs_task_processes
from stt.task_runtime import job_id_for
from stt.airflow_settings import sqlite_lock_timeout
from stt.errors import InvalidAudio, InvalidParameter, SourceNotFound, WhisperFailed, error_code
from stt.log import mask_secrets
from stt.text import is_annotation, norm, normalise
from stt.waiting import poll_until, wait_until
from stt.whisper import parse_output, whisper_language


def test_error_code_follows_the_cause():
    try:
        try:
            raise SourceNotFound("gone")
        except SourceNotFound as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert error_code(outer) == "SOURCE_NOT_FOUND"
    assert error_code(InvalidAudio("x", code="EMPTY_FILE")) == "EMPTY_FILE"
    assert error_code(TimeoutError()) == "TASK_TIMEOUT"
    assert error_code(KeyError("k")) == "UNEXPECTED_KEYERROR"

    class EndpointConnectionError(ConnectionError):
        pass

    class ServerSelectionTimeoutError(Exception):
        pass

    assert error_code(EndpointConnectionError()) == "STORAGE_UNAVAILABLE"
    assert error_code(ServerSelectionTimeoutError()) == "DATABASE_UNAVAILABLE"
    assert not WhisperFailed("x").permanent and SourceNotFound("x").permanent


@pytest.mark.parametrize(
    "raw, masked",
    [
        ("mongodb://admin:s3cret@mongo:27017/stt", "mongodb://admin:***@mongo:27017/stt"),
        ("connect to postgresql+psycopg2://airflow:pw@db/airflow ok", "connect to postgresql+psycopg2://airflow:***@db/airflow ok"),
        ('{"password": "hunter2", "login": "x"}', '{"password": "***", "login": "x"}'),
        ("http://host:8080/path", "http://host:8080/path"),
    ],
)
def test_secrets_are_masked(raw, masked):
    assert mask_secrets(raw) == masked


def test_parse_whisper_json():
    raw = b'{"result": {"language": "en"}, "transcription": [' \
          b'{"offsets": {"from": 0, "to": 7600}, "text": " And so my fellow Americans"},' \
          b'{"offsets": {"from": 7600, "to": 7600}, "text": " "}]}'
    run = parse_output(raw, 1.5)
    assert run.language == "en"
    assert run.segments == [{"start": 0.0, "end": 7.6, "text": "And so my fellow Americans"}]


def test_english_only_models_refuse_other_languages_and_detection():
    assert whisper_language("tiny.en", "en") == "en"
    assert whisper_language("base", "vi") == "vi"
    assert whisper_language("base", "auto") == "auto"
    for model, language in (("tiny.en-q5_1", "vi"), ("tiny.en", "auto")):
        with pytest.raises(InvalidParameter, match="English-only") as caught:
            whisper_language(model, language)
        assert caught.value.code == "MODEL_LANGUAGE_MISMATCH"


def test_job_id_is_stable_per_run_unless_given():
    assert job_id_for("stt_transcribe", "manual__1", None) == job_id_for("stt_transcribe", "manual__1", {})
    assert job_id_for("stt_transcribe", "manual__1", None) != job_id_for("stt_transcribe", "manual__2", None)
    assert job_id_for("stt_transcribe", "manual__1", {"job_id": "mine"}) == "mine"


def test_priority_policy_puts_transcription_first_within_a_priority_and_priorities_apart():
    from types import SimpleNamespace

    from stt.policy import task_instance_mutation_hook

    def weight(task_id, priority, run=7):
        ti = SimpleNamespace(dag_id="stt_transcribe", task_id=task_id, priority_weight=1)
        task_instance_mutation_hook(ti, SimpleNamespace(conf={"priority": priority}, id=run))
        return ti.priority_weight

    order = ["transcribe", "finish", "prepare"]
    assert [weight(t, "normal") for t in order] == sorted({weight(t, "normal") for t in order}, reverse=True)
    assert weight("prepare", "high") > weight("transcribe", "normal") > weight("prepare", "normal") > weight("transcribe", "low")
    assert weight("transcribe", "normal", run=7) > weight("transcribe", "normal", run=8) > weight("finish", "normal", run=1)  # first come, first served
    assert max(weight("transcribe", "high", run=r) for r in (0, 999_999)) < 2**31  # Airflow's weights are 32-bit
    other = SimpleNamespace(dag_id="stt_ingest", task_id="scan", priority_weight=7)
    task_instance_mutation_hook(other, SimpleNamespace(conf={"priority": "high"}))
    assert other.priority_weight == 7


def test_unknown_word_timing_is_refused_not_ignored():
    from stt.errors import InvalidParameter
    from stt.whisper import decode_args

    assert decode_args("base", "dtw") == ("-nfa", "-dtw", "base") and decode_args("base", "tokens") == ("-nfa",)
    with pytest.raises(InvalidParameter, match="word timing 'fast'"):
        decode_args("base", "fast")


def test_a_prompt_is_passed_to_whisper_and_checked():
    from stt.errors import InvalidParameter
    from stt.whisper import PROMPT_MAX_CHARS, check_prompt, decode_args

    assert decode_args("base", "tokens", "Nguyễn Văn An") == ("-nfa", "--prompt", "Nguyễn Văn An")
    assert check_prompt(None) == check_prompt("") == check_prompt(" \n\t ") == ""
    assert check_prompt(" Acme,\n  Kubernetes ") == "Acme, Kubernetes"
    assert check_prompt("-l xx " + "a" * (PROMPT_MAX_CHARS - 6)).startswith("-l xx")  # one argument of whisper-cli, not its options
    for bad, reason in ((["Acme"], "must be text"), ("a" * (PROMPT_MAX_CHARS + 1), "over the limit"), ("Acme\x00", "U\\+0000")):
        with pytest.raises(InvalidParameter, match=reason) as caught:
            check_prompt(bad)
        assert caught.value.code == "INVALID_PROMPT"


def test_only_a_scheduler_with_local_executor_preloads_task_modules():
    assert runs_task_processes(["/venv/bin/airflow", "scheduler"], "LocalExecutor")
    assert runs_task_processes(["/venv/lib/airflow/__main__.py", "scheduler"], "LocalExecutor,CeleryExecutor")
    assert not runs_task_processes(["airflow", "scheduler"], "CeleryExecutor")
    for command in ("api-server", "dag-processor", "triggerer", "standalone", "celery"):
        assert not runs_task_processes(["airflow", command], "LocalExecutor")


def test_only_the_api_server_waits_briefly_for_the_sqlite_lock():
    """The API server can wait on itself for the lock (audit-log commit in its event loop): it gives up after 3 s."""
    assert sqlite_lock_timeout(["airflow", "api-server", "--port", "8080"]) == 3.0
    for command in ("scheduler", "dag-processor", "triggerer", "standalone"):
        assert sqlite_lock_timeout(["airflow", command]) == 30.0


def test_preload_imports_what_tasks_need():
    """In a fresh interpreter: after the preload, the pipeline and what its steps import, pymongo, the provider
    filesystems, the task decorators the DAG file is parsed with and the providers' asset handlers are loaded."""
    wanted = ("stt.pipeline", "stt.jobs", "pymongo", "numpy", "pydub", "airflow.providers.amazon.aws.fs.s3",
              "airflow.sdk.definitions.decorators", "airflow.providers.standard.operators.python", "airflow.providers.mongo.assets.mongo")
    code = ("import sys; from stt.preload import preload_task_modules; preload_task_modules(); "
            f"print([m for m in {wanted!r} if m not in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("[]"), out.stdout


def test_celery_config_is_airflows_own_plus_the_worker_preload():
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
    from celery.signals import worker_init

    from stt.celery_config import CELERY_CONFIG, preload_in_worker

    assert CELERY_CONFIG == DEFAULT_CELERY_CONFIG
    assert any(receiver() is preload_in_worker for _, receiver in worker_init.receivers), "worker_init must trigger the preload"


def test_logs_imported_before_airflow_configures_logging_reach_its_handlers_once_with_their_level():
    """stt.log imported first (as the DAG file and the scheduler's preload do), a root handler added afterwards
    (as Airflow's task runner does): our INFO arrives there as INFO and not also on stderr; with no root
    handler (CLI) it goes to stderr."""
    code = (
        "import logging, sys\n"
        "from stt.log import logger\n"
        "logger.info('before any handler')\n"
        "seen = []\n"
        "class H(logging.Handler):\n"
        "    def emit(self, r): seen.append((r.levelname, r.getMessage()))\n"
        "logging.getLogger().addHandler(H())\n"
        "logger.bind(job_id='j1').info('after')\n"
        "print(seen)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[('INFO', '[job_id=j1] after')]"
    assert "before any handler" in out.stderr and "after" not in out.stderr


def test_log_records_name_the_callers_file_and_line_and_mask_secrets(caplog):
    import inspect

    from stt.log import logger

    with caplog.at_level("INFO", logger="stt"):
        line = inspect.currentframe().f_lineno + 1
        logger.bind(job_id="j-1", chunk=3).info("connecting to s3://key:hunter2@minio:9000 with password=hunter2")
    record = caplog.records[-1]
    assert (record.filename, record.lineno, record.funcName) == ("test_small_units.py", line, "test_log_records_name_the_callers_file_and_line_and_mask_secrets")
    assert record.getMessage() == "[job_id=j-1 chunk=3] connecting to s3://key:***@minio:9000 with password=***"


def test_text_is_normalised_for_comparison():
    assert norm("Don’t!") == norm("don't") == "dont" and norm("well-known") == "wellknown" and norm("Chào,") == "chào"
    assert normalise("Uh, the well-known [Music] (coughs) O’Neil's ♪ dog!") == "uh the well known oneils dog"
    assert normalise("Uh, um... so: hmm, yes", drop_fillers=True) == "so yes"
    assert is_annotation(" [BLANK_AUDIO] ") and is_annotation("♪ la la ♪") and not is_annotation("[sic] so")


def test_waiting_returns_the_first_true_answer_or_names_what_never_came():
    answers = iter([None, ValueError("not yet"), {"state": "success"}])

    def look():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(look, timeout_s=5, interval_s=0.01, what="a run", ignore=(ValueError,)) == {"state": "success"}

    def busy():
        raise OSError("busy")

    with pytest.raises(TimeoutError, match=r"gave up waiting for port 1 to be free after 0.05s") as caught:
        wait_until(busy, timeout_s=0.05, interval_s=0.01, what=lambda: "port 1 to be free", ignore=(OSError,))
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(KeyError):  # not ignored: ends the wait at once
        wait_until(lambda: {}["x"], timeout_s=5, interval_s=0.01, what="x")
    calls = []
    assert poll_until(lambda: calls.append(1), timeout_s=0.05, interval_s=0.01) is None and len(calls) >= 2


def test_reference_words_removed_are_timed_by_the_words_aligned_to_them():
    """Reference words take the time of the word whisper wrote in their place, inside their utterance; a
    word it left out lies between its neighbours. Only words inside removed audio count, not a pause inside
    an utterance. A word the pipeline wrote takes the pipeline's time and is never removed: it heard it."""
    from bench.accuracy import aligned_word_times, reference_word_times, reference_words_removed, score

    segments = [{"start": 0.0, "end": 9.0, "text": "one two four five", "words": [
        {"start": 0.0, "end": 1.0, "text": "one"}, {"start": 1.0, "end": 2.0, "text": "two"},
        {"start": 6.0, "end": 7.0, "text": "four"}, {"start": 8.0, "end": 9.0, "text": "five"}]}]
    scored = score("one two three four five", segments, language="en")
    assert aligned_word_times(scored) == [0.5, 1.5, 4.0, 6.5, 8.5]
    entry = {"speech": [[0.0, 9.0]], "utterances": ["one two three four five"], "reference": "one two three four five"}
    assert reference_words_removed(entry, [(2.5, 5.5)], scored) == 1  # "three", between "two" and "four"
    assert reference_words_removed(entry, [(2.5, 3.5)], scored) == 0  # a pause, no word in it
    assert reference_words_removed(entry, [(2.5, 3.5)]) == 1  # spread evenly, the pause holds a word
    apart = {"speech": [[0.0, 2.0], [5.5, 9.0]], "utterances": ["one two three", "four five"], "reference": "one two three four five"}
    assert reference_word_times(apart, scored)[2] == 5 / 3  # interpolated into the pause: its utterance's own place
    heard = score("one two tree four five", [{**segments[0], "text": "one two tree four five", "words": [
        *segments[0]["words"][:2], {"start": 5.0, "end": 5.4, "text": "tree"}, *segments[0]["words"][2:]]}], language="en")
    assert reference_words_removed(entry, [(2.5, 4.5)], scored, heard) == 0  # the pipeline heard it at 5.2 s: not removed
    assert reference_words_removed(entry, [(5.1, 5.3)], scored, heard) == 0  # written across a shortened silence
    assert reference_words_removed(entry, [(2.5, 5.5)], scored, scored) == 1  # a run that left it out did not hear it


def test_pooled_word_error_rates_keep_real_and_generated_speech_apart():
    from bench.accuracy import pooled_wer

    def row(name, kind, words, pipeline, whole, language="en"):
        return {"name": name, "kind": kind, "language": language, "reference_words": words, "whole_file_wer": whole,
                "by_chunking": {"silence": {"pipeline_wer": pipeline}}}

    rows = [row("real_fade_en", "real speech fading", 100, 0.2, 0.4), row("real_monologue_en", "10 minutes of real speech", 300, 0.2, 0.2),
            row("monologue_en", "5-minute monologue", 200, 0.02, 0.04), row("jfk", "real speech (whisper.cpp sample)", 22, 0.5, 0.0),
            row("vietnamese_vi", "Vietnamese sentences", 50, 0.4, 0.5, language="vi"), row("silence_only", "room tone", 0, None, None)]
    assert pooled_wer(rows, ["silence"])["silence"] == {"pipeline": 0.2, "whole_file": 0.25, "ratio": 0.8}
    assert pooled_wer(rows, ["silence"], real=False)["silence"] == {"pipeline": 0.02, "whole_file": 0.04, "ratio": 0.5}


def test_english_is_scored_as_whisper_normalises_it_and_vietnamese_keeps_its_diacritics():
    """Spelling variants whisper writes for one spoken word are not errors; fillers and annotations are not words."""
    from bench.accuracy import error_counts, scoring_text

    assert scoring_text("Um, we're gonna colour the [BLANK_AUDIO] (laughs) centre.", "en") == "we are going to color the center"
    assert error_counts("we are going to colour the centre", "We're gonna color the center, uh.", "en") == {
        "reference_words": 7, "wer": 0.0, "cer": None, "insertions": 0, "deletions": 0, "substitutions": 0}
    assert scoring_text("Xin chào, thế giới!", "vi") == "xin chào thế giới"
    assert error_counts("xin chào thế giới", "xin chao thế giới", "vi")["wer"] == 0.25


def test_letters_said_one_by_one_score_as_the_acronym_whisper_writes():
    from bench.accuracy import error_counts, scoring_text, timed_words

    assert scoring_text("M F A is like putty", "en") == scoring_text("MFA is like putty.", "en") == "mfa is like putty"
    assert scoring_text("uh i i still think it's a very good team in n a i think", "en") == "i i still think it is a very good team in na i think"
    assert scoring_text("is a b", "en") == "is a b"  # the article stays a word
    assert error_counts("m f a is like buddy", "MFA is like buddy.", "en")["wer"] == 0.0
    words = [{"text": f" {t}", "start": float(k), "end": k + 0.5} for k, t in enumerate(["M", "F", "A", "rocks"])]
    assert timed_words([{"start": 0.0, "end": 4.0, "text": "M F A rocks", "words": words}]) == [("mfa", 0.0, 2.5), ("rocks", 3.0, 3.5)]


def test_words_on_silence_are_those_outside_every_speech_span_with_its_margin():
    from bench.accuracy import SPEECH_MARGIN_S, words_on_silence

    words = [("said", 1.0, 1.4), ("late", 2.0 + SPEECH_MARGIN_S / 2, 2.6), ("ghost", 5.0, 5.3)]
    assert words_on_silence(words, [[0.5, 2.0]]) == [["ghost", 5.0, 5.3]]


def test_a_join_loss_records_what_whole_file_whisper_wrote_for_the_word():
    from bench.accuracy import join_errors, score

    reference = "montreal forced aligner i hardly know her"
    pipeline = score(reference, [{"start": 9.0, "end": 11.5, "text": "Montreal Forestliner, I hardly know her."}], language="en")
    whole = score(reference, [{"start": 9.0, "end": 11.5, "text": "Montreal fourth to liner, I hardly know her."}], language="en")
    found: list = []
    assert join_errors(pipeline, [(8.0, 12.0)], control=whole, found=found) == (0, 1)
    assert found == [["lost", "aligner", 11.5, "liner"]]  # a word whole-file whisper misread too


def test_several_seeds_score_each_file_by_the_mean_and_keep_the_worst_counts():
    from bench.accuracy import COUNTS, across_seeds, pooled_wer, table

    def row(whole, pipeline, losses):
        counts = dict.fromkeys(COUNTS, 0) | {"join_losses": losses, "join_words": [["lost", "word", 1.0]] * losses, "removed_s": 0.0,
                                             "silence_words": losses, "silence_word_times": [["uh", 9.0, 9.2]] * losses}
        return {"name": "real_fade_en", "language": "en", "duration_s": 120.0, "reference_words": 100, "whole_file_wer": whole, "whole_file_cer": None,
                "whole_file_silence_words": 0, "by_chunking": {"silence": {"pipeline_wer": pipeline, "pipeline_cer": None, **counts}}}

    rows = across_seeds({0: [row(0.3, 0.1, 0)], 1: [row(0.2, 0.3, 2)], 2: [row(0.25, 0.2, 1)]}, ["silence"])
    assert rows[0]["whole_file_wer"] == 0.25 and rows[0]["pipeline_wer"] == 0.2 and rows[0]["join_losses"] == 2
    assert rows[0]["by_chunking"]["silence"]["pipeline_wer"] == 0.2
    assert rows[0]["by_chunking"]["silence"]["minus_whole"] == {"mean": -0.05, "standard_error": 0.0866}  # -0.2, +0.1, -0.05
    assert rows[0]["seeds"]["1"] == {"whole_file_wer": 0.2, "silence": 0.3, "join_words": {"silence": [["lost", "word", 1.0]] * 2},
                                     "silence_word_times": {"silence": [["uh", 9.0, 9.2]] * 2}}
    text = table({"chunking": ["silence"], "seeds": [0, 1, 2], "files": rows,
                  "pooled": pooled_wer(rows, ["silence"]), "pooled_generated": pooled_wer(rows, ["silence"], real=False)})
    assert "WER by seed 0, 1, 2" in text and "| -5.0 (8.7) |" in text
    single = [row(0.3, 0.1, 0)]
    assert across_seeds({0: single}, ["silence"]) is single


def test_a_childs_peak_memory_is_its_own_not_its_parents():
    held = bytearray(400 * 2**20)  # this process: 400 MB more resident than the child will ever be
    held[::4096] = b"\1" * len(held[::4096])
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; b = bytearray(120 * 2**20); b[::4096] = b'1' * len(b[::4096]); "
                              "print(1, flush=True); time.sleep(30)"], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"1"
        peak = procs.peak_rss_mb(child.pid)
    finally:
        child.kill()
        child.wait()
    assert 120 < peak < 300, peak
    assert procs.peak_rss_mb() > 400
    assert procs.peak_rss_mb(child.pid) is None  # gone
    assert 0 < procs.unique_memory_mb() <= procs.peak_rss_mb()
