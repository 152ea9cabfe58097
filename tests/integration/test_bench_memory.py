"""The memory benchmark runs end to end (short recordings: this checks that it works, not the figures of
docs/benchmarks/memory.md, which need the 6-hour run)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def test_bench_memory_runs_and_reports_every_step():
    out = subprocess.run([sys.executable, "-m", "bench.memory", "--long-s", "150", "--short-s", "20", "--json"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    chunk = report["steps"]["chunk"]
    assert chunk["short"]["audio_s"] == 20.0 and chunk["long"]["audio_s"] == 150.0
    assert chunk["long"]["chunks"] > chunk["short"]["chunks"] >= 1 and chunk["long"]["silences"] > 0
    merge = report["steps"]["merge"]
    assert merge["long"]["chunks"] > merge["short"]["chunks"] and merge["long"]["words"] > merge["short"]["words"] > 0
    assert all(report["steps"]["publish"][label]["bytes"]["srt"] > 0 for label in ("short", "long"))
    assert all(run["rss_mb"] > 0 and run["wall_s"] >= 0 for step in report["steps"].values() for run in step.values())
    assert report["chunk_rss_ratio"] > 0 and set(report["acceptance"]) == {"chunk_rss_mb_at_most_400", "chunk_rss_ratio_at_most_1.5"}
