"""mnlib.measure: every timing carries its page faults, and the recording runs under the allocator tunables."""
import json
import mmap
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mnlib import measure, timing

ROOT = Path(__file__).resolve().parents[1]


def _touch_fresh_pages(n=512):
    """Map and write n fresh anonymous pages: n minor page faults per call, whatever the allocator."""
    m = mmap.mmap(-1, n * mmap.PAGESIZE)
    a = np.frombuffer(m, dtype=np.uint8)
    a[::mmap.PAGESIZE] = 1
    del a
    m.close()


def test_run_passes_reports_page_faults_beside_every_timing():
    cases = [({"name": "faults"}, _touch_fresh_pages), ({"name": "none"}, lambda: None)]
    log = []
    conditions = []
    res = measure.run_passes(cases, passes=3, device="cpu", min_sample_s=0.0, repeats=2, log=log.append,
                             conditions=conditions)
    for r in res:
        assert len(r["pass_medians_s"]) == len(r["page_faults_per_call"]) == 3
        assert r["page_faults_per_call_median"] == sorted(r["page_faults_per_call"])[1]
    if res[0]["page_faults_per_call"][0] is None:
        pytest.skip("resource.getrusage is not available here")
    assert res[0]["page_faults_per_call_median"] >= 500   # the mapped pages, each faulted once per call
    assert res[1]["page_faults_per_call_median"] < 1
    assert len(conditions) == 3 and all("others_cpu_share" in c for c in conditions)


def test_allocator_env_adds_or_removes_only_the_two_thresholds():
    base = {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0:glibc.malloc.mmap_threshold=1", "HOME": "/x"}
    tuned = timing.allocator_env(True, base)
    assert timing.tunables_applied(tuned) and not timing.tunables_applied(base)
    assert "glibc.malloc.tcache_count=0" in tuned["GLIBC_TUNABLES"].split(":")
    assert "glibc.malloc.mmap_threshold=1" not in tuned["GLIBC_TUNABLES"].split(":")
    default = timing.allocator_env(False, tuned)
    assert default["GLIBC_TUNABLES"] == "glibc.malloc.tcache_count=0" and default["HOME"] == "/x"
    assert "GLIBC_TUNABLES" not in timing.allocator_env(False, {"GLIBC_TUNABLES": timing.ALLOCATOR_TUNABLES})


@pytest.fixture(scope="module")
def quick_record(tmp_path_factory):
    """A short real recording, started WITHOUT the tunables: the entry point must apply them itself."""
    out = tmp_path_factory.mktemp("measure") / "cpu.json"
    env = timing.allocator_env(False)
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, "-m", "mnlib.measure", "--out", str(out), "--shapes", "7", "--models",
           "mobilenet_v3_small", "--passes", "2", "--repeats", "1", "--min-sample-s", "0",
           "--trap-rounds", "1", "--threads", "1"]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def test_recording_runs_under_the_tunables_and_says_so(quick_record):
    assert timing.tunables_applied({"GLIBC_TUNABLES": quick_record["env"]["glibc_tunables"]})
    assert quick_record["env"]["threads"] == 1                     # taken inside the thread setting
    cond = quick_record["conditions"]
    assert len(cond["loadavg_before"]) == len(cond["loadavg_after"]) == 3
    assert len(cond["per_pass"]["layers"]) == len(cond["per_pass"]["models"]) == 2
    if platform.libc_ver()[0] != "glibc":
        return
    # and they took effect: the main run's 7x7x1024 standard conv no longer re-faults its buffer
    std = next(r for r in quick_record["layers"] if r["op"] == "standard" and r["batch"] == 1
               and r["memory_format"] == "nchw")
    assert std["page_faults_per_call_median"] < 50


def test_the_roof_is_timed_like_the_layers_and_checked_against_them(quick_record):
    """The GEMM peak uses the layers' clock and threads, and the record says whether a layer beat it."""
    m = quick_record["machine"]
    assert m["clock"] == "perf_counter" and m["roof_check"]["threads"] == quick_record["env"]["threads"] == 1
    fastest = max(r["macs"] / r["median_s"] for r in quick_record["layers"])
    assert m["roof_check"]["valid"] == (fastest <= m["peak_macs_per_s"])
    assert (m["roof_check"]["layers_over_peak"] > 0) == (fastest > m["peak_macs_per_s"])


def test_every_recorded_timing_has_its_page_faults(quick_record):
    rows = quick_record["layers"] + quick_record["models"]
    assert len(quick_record["layers"]) == 8 and len(quick_record["models"]) == 4   # (2 ops or 1 model) x 2 batches x 2 layouts
    for r in rows:
        assert len(r["page_faults_per_call"]) == len(r["pass_medians_s"]) == 2
        assert all(isinstance(f, (int, float)) for f in r["page_faults_per_call"])


def test_the_trap_demonstration_runs_both_allocators(quick_record):
    trap = quick_record["allocator_trap"]
    std = next(c for c in trap["cases"] if c["op"] == "standard" and c["shape"] == "7x7x1024->1024")
    assert std["default"]["glibc_tunables"] is None
    assert timing.tunables_applied({"GLIBC_TUNABLES": std["tuned"]["glibc_tunables"]})
    if platform.libc_ver()[0] != "glibc" or not hasattr(os, "getloadavg"):
        pytest.skip("the trap is glibc's")
    # the tunables took effect in the child: its 37.7 MB weight reorder buffer is no longer
    # unmapped and faulted back in (9,217 pages) on every call. Not a pinned measurement: 37.7 MB is the
    # arithmetic of the 3x3x1024x1024 fp32 weights (9 * 1024**2 * 4 bytes / 4096-byte pages = 9,216 pages,
    # plus a partial one); the bound asks that at least ~40% of them fault per call. Whether the default
    # allocator re-faults it depends on the C library and the kernel's temporaries, and one quick run on
    # a shared CI machine has shown 0 (as ch08b says, the page has a branch for it): then this run cannot
    # tell whether the tunables help, and says so rather than failing or passing on nothing.
    default, tuned = std["default"]["page_faults_per_call_median"], std["tuned"]["page_faults_per_call_median"]
    assert tuned <= max(default, 50), (default, tuned)  # the tunables never add faults
    if default <= 4000:
        pytest.skip(f"the default allocator did not re-fault the buffer in this run ({default:.0f} faults per "
                    "call): the trap did not show, so this run cannot tell whether the tunables remove it")
    assert tuned < 0.01 * default


def test_cpu_clock_needs_one_thread(capsys):
    """CPU time of a process adds up its threads, so --clock cpu with several threads is refused."""
    with pytest.raises(SystemExit):
        measure.main(["--out", "-", "--clock", "cpu", "--threads", "2"])
    assert "--threads 1" in capsys.readouterr().err


def test_cpu_clock_leaves_out_time_the_process_did_not_run():
    """A case that sleeps (holds no CPU) costs ~0 on the cpu clock and its sleep on the wall clock."""
    cases = [({"name": "sleep"}, lambda: time.sleep(0.01))]
    wall = measure.run_passes(cases, 1, "cpu", 0.0, 3, log=lambda *_: None, clock=measure.CLOCKS["wall"])
    cpu = measure.run_passes(cases, 1, "cpu", 0.0, 3, log=lambda *_: None, clock=measure.CLOCKS["cpu"])
    assert wall[0]["median_s"] >= 0.009
    assert cpu[0]["median_s"] < 0.003
