"""The speed benchmark runs end to end (tiny sizes: this checks that it works, not how fast anything is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.integration


def test_bench_speed_runs_and_reports_every_figure(whisper_ready, tmp_path):
    env = {**os.environ, "STT_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("AIRFLOW_HOME", None)
    out = subprocess.run([sys.executable, "-m", "bench.speed", "--repeats", "1", "--model", "tiny.en", "--long-s", "40",
                          "--batch-files", "2", "--batch-file-s", "15", "--json"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    table, _, raw = out.stdout.partition("\n{")
    report = json.loads("{" + raw)
    for key in ("long_ratio", "batch_ratio", "overhead_s_per_file", "peak_memory_ratio", "peak_rss_ratio", "whisper_floor_long_ratio",
                "long_ratio_same_decoding"):
        assert report[key] > 0, key
    run = report["repeats"][0]
    assert run["long"]["pipeline"]["jobs"] == 1 and run["batch"]["pipeline"]["jobs"] == 2
    assert run["long"]["pipeline"]["whisper_cpu_s_sum"] > 0 and run["batch"]["whisper_lanes"]["processes"] == 2
    assert report["dag_test"]["wall_s"] > 0
    assert run["long"]["whole_file_same_decoding"]["flags"][:3] == ["-nfa", "-dtw", "tiny.en"]
    assert "long_ratio (median)" in table and "dag.test() floor" in table and "pipeline's decoding flags" in table
