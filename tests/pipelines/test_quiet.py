"""A quiet terminal: our progress bar, summary and warnings only; third-party native logs with -vv."""

import os
import subprocess
import sys
from pathlib import Path

NOISE = ("W0000", "I0000", "inference_feedback_manager", "TensorFlow Lite", "absl::InitializeLog")


def env_without_glog():
    env = dict(os.environ)
    env.pop("GLOG_minloglevel", None)  # the filter must work without glog's own switch
    return env


def test_the_filter_drops_native_log_lines_and_passes_the_rest_at_once():
    code = (
        "import os\n"
        "from annotator.console import filter_native_stderr\n"
        "filter_native_stderr()\n"
        "os.write(2, b'W0000 00:00:1796164397.774271   23719 inference_feedback_manager.cc:114] noise\\n')\n"
        "os.write(2, b'\\rannotate:  50%|#####     | 1/2')\n"
        "os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "os.write(2, b'\\rannotate: 100%|##########| 2/2\\n')\n"
        "os.write(2, b'Error: kept, ours\\n')\n"
        "os.write(2, b'Warning 1: not a glog line\\n')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env_without_glog(), timeout=60)
    assert r.returncode == 0
    assert r.stderr == (b"\rannotate:  50%|#####     | 1/2\rannotate: 100%|##########| 2/2\n"
                        b"Error: kept, ours\nWarning 1: not a glog line\n")


def test_a_real_run_shows_only_our_lines(tmp_path):
    exe = str(Path(sys.executable).with_name("annotate"))
    out = tmp_path / "q.zarr"
    r = subprocess.run([exe, "run", "--dataset", "sample", "--out", str(out), "--workers", "2"],
                       capture_output=True, text=True, env=env_without_glog(), timeout=600)
    assert r.returncode == 0, r.stderr
    shown = r.stdout + r.stderr
    assert "15 samples in 2 shards" in r.stdout and "annotate: 100%" in r.stderr
    assert not [n for n in NOISE if n in shown], shown
    loud = subprocess.run([exe, "run", "--dataset", "sample", "--out", str(tmp_path / "v.zarr"), "--limit", "2",
                           "--cluster", "none", "-vv"], capture_output=True, text=True, env=env_without_glog(),
                          timeout=600)
    assert loud.returncode == 0 and any(n in loud.stderr for n in NOISE), loud.stderr[-2000:]
