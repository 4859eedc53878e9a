"""The regression tool without simulations: expansion of the regressions,
replay lines that round-trip through make and the argument parser, verdicts
from results files, the closing line and exit status, and the wall-clock
limit that turns a hung run into a failure."""
from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tb import regressions as R
from tb.regressions import Entry, RegressionError

ROOT = Path(__file__).resolve().parent.parent


def _load_regress():
    spec = importlib.util.spec_from_file_location("uz_regress_script", ROOT / "scripts" / "regress.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while it loads
    spec.loader.exec_module(mod)
    return mod


regress = _load_regress()


@pytest.fixture
def toy(monkeypatch):
    """Two small regressions with known sizes."""
    regs = {
        "a": [Entry("T1", seeds=range(1, 4), configs=["small", "bits8"], sims=["verilator", "icarus"]),
              Entry("T2", module="cocotb_engine", env={"UZ_CASE": "fc"})],
        "b": [Entry("T3", seeds=[7]), Entry("T1", seeds=[9])],
    }
    monkeypatch.setattr(R, "REGRESSIONS", regs)
    return regs


# ------------------------------------------------------------ expansion

def test_expand_counts_every_combination(toy):
    runs = R.expand("a")
    assert len(runs) == 3 * 2 * 2 + 1
    assert len({r.name for r in runs}) == len(runs)
    t2 = [r for r in runs if r.test == "T2"][0]
    assert (t2.seed, t2.config, t2.sim, t2.module, t2.testcase) == (1, "small", "verilator", "cocotb_engine", "T2")
    assert t2.env == {"UZ_CASE": "fc"}
    assert json.loads(t2.sim_env()["UZ_CONFIG"]) == R.CONFIGS["small"].to_dict()


def test_expand_filters_and_overrides(toy):
    assert len(R.expand("a", test="T1")) == 12
    assert len(R.expand("a", test="T*")) == 13
    assert {r.sim for r in R.expand("a", sim="icarus")} == {"icarus"}
    assert len(R.expand("a", sim="icarus")) == 3 * 2 + 1  # the simulator is replaced, not filtered
    assert [r.seed for r in R.expand("a", test="T1", seed=2, config="bits8", sim="icarus")] == [2]
    # a seed or config the regression does not list becomes a single run
    (run,) = R.expand("a", test="T2", seed=42, config="bits8")
    assert (run.seed, run.config, run.cfg) == (42, "bits8", R.CONFIGS["bits8"])
    # a test only another regression lists is found there (replays work from any regression)
    (run,) = R.expand("a", test="T3")
    assert run.seed == 7


def test_first_runs_started_are_of_different_builds(toy):
    runs = regress.order(R.expand("a", test="T1"), waves=False)
    assert sorted(runs, key=lambda r: r.name) == sorted(R.expand("a", test="T1"), key=lambda r: r.name)
    assert len({(r.sim, r.config) for r in runs[:4]}) == 4


def test_unknown_names_are_clear_errors(toy):
    with pytest.raises(RegressionError, match=r"unknown test 'nope'.*T1, T2, T3"):
        R.expand("a", test="nope")
    with pytest.raises(RegressionError, match=r"unknown config 'huge'.*small"):
        R.expand("a", config="huge")
    with pytest.raises(RegressionError, match=r"config 'ecp5' has MaxK 3.*bench.py --config"):
        R.expand("a", config="ecp5")
    with pytest.raises(RegressionError, match=r"unknown regression 'weekly'.*a, b"):
        R.expand("weekly")
    with pytest.raises(RegressionError, match=r"unknown simulator 'xsim'"):
        R.expand("a", sim="xsim")


def test_unknown_test_on_the_command_line_is_one_line_exit_2(capsys):
    assert regress.main(["--test", "nope", "--list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("regress: error: unknown test 'nope'")


def test_one_name_is_one_test_in_every_regression(monkeypatch):
    monkeypatch.setattr(R, "REGRESSIONS", {"a": [Entry("T", env={"X": "1"})], "b": [Entry("T", env={"X": "2"})]})
    with pytest.raises(RegressionError, match="T means two different runs"):
        R.expand("a")


def test_real_regressions_expand():
    R.check()
    smoke = R.expand("smoke")
    assert {r.test for r in smoke} == {"SmokeTest", "IllegalDescriptorTest", "RandomLayerTest", "CoverageSweepTest", "CsrTest",
                                       "RandomGraphTest", "GraphDirectedTest", "AbortTest", "ResetTest", "BusErrorTest",
                                       *R.CHECKER_TESTS}
    assert {(r.config, r.sim) for r in smoke} == {("small", "verilator")}
    for name, entries in R.REGRESSIONS.items():
        runs = R.expand(name)
        assert len(runs) == sum(len(e.seeds) * len(e.configs) * len(e.sims) for e in entries)
    nightly = {r.name for r in R.expand("nightly")}
    assert {r.name for r in smoke} <= nightly
    # the fuzz: its make target splits N over the seeds of the "fuzz" entry
    fuzz = {e.label: e for e in R.REGRESSIONS["nightly"] if e.test in ("FuzzTest", "FuzzCheckerFailsTest")}
    assert set(fuzz) == {"fuzz", "fuzz_bits8", "fuzz_icarus", "fuzz_pm8_pn4", "fuzz_pm12_pn4",
                         "FuzzCheckerFailsTest"}
    assert fuzz["fuzz"].env["UZ_COUNT"] == str(R.FUZZ_CHUNK)
    assert fuzz["fuzz_icarus"].sims == ("icarus",)
    # every configuration is one the RTL's elaboration checks accept
    for cfg in R.CONFIGS.values():
        assert cfg.pm % cfg.pn == 0
        assert (cfg.pn * cfg.data_bits) % cfg.axi_data_bits == 0
        assert (cfg.pm * cfg.alpha_bits) % cfg.axi_data_bits == 0


# ------------------------------------------------------------ replay lines

def _make_n(*args) -> str:
    """What `make -n` would run, untouched by the caller's make variables
    (SIM=icarus make test must not change the replay under test)."""
    drop = {"SIM", "TEST", "SEED", "CONFIG", "WAVES", "JOBS", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True, check=True,
                          env=env).stdout


def _make_argv(make_line: str) -> list[str]:
    """The regress.py arguments `make -n` shows for a replay line."""
    words = shlex.split(make_line)
    assert words[:2] == ["make", "sim"]
    out = _make_n(*words[1:])
    lines = [ln for ln in out.splitlines() if "scripts/regress.py" in ln]
    assert not any("--golden" in ln for ln in lines), "a replay runs its one run only"
    (line,) = lines
    argv = shlex.split(line.split("scripts/regress.py", 1)[1].split("||")[0])
    return argv


@pytest.mark.parametrize("which", ["smoke", "nightly-only", "unlisted-seed", "waves"])
def test_replay_line_round_trips(which):
    waves = which == "waves"
    if which == "nightly-only":
        run = [r for r in R.expand("nightly") if r.config == "bits8" and r.seed == 3][-1]
    elif which == "unlisted-seed":
        (run,) = R.expand("smoke", test="engine_fc", seed=12345, config="bits8", sim="icarus")
    else:
        run = R.expand("smoke")[-1]
    argv = _make_argv(run.replay(waves))
    args = regress.parser().parse_args(argv)
    assert args.regression == "smoke" and args.waves == waves
    assert R.expand(args.regression, sim=args.sim, test=args.test, seed=args.seed, config=args.config) == [run]


def test_make_targets():
    lines = [ln for ln in _make_n("sim").splitlines() if "scripts/regress.py" in ln]
    assert "--golden" in lines[0] and "--regression smoke" in lines[1]
    assert "--sim" not in lines[1]  # smoke's own simulator, Verilator
    (line,) = [ln for ln in _make_n("regress").splitlines() if "scripts/regress.py" in ln]
    assert "--regression nightly" in line


# ------------------------------------------------------------ verdicts and summary

def _xml(tmp_path, suites):
    body = "".join(f'<testsuite name="m" tests="{t}" failures="{f}" errors="0">{inner}</testsuite>'
                   for t, f, inner in suites)
    p = tmp_path / "results.xml"
    p.write_text(f"<?xml version='1.0'?><testsuites>{body}</testsuites>")
    return p


def test_judge_reads_the_results_file(tmp_path):
    assert regress.judge(_xml(tmp_path, [(1, 0, "")]))["status"] == "PASS"
    v = regress.judge(_xml(tmp_path, [(1, 1, '<testcase name="t"><failure message="layer fc: 1 mismatches&#10;more"/>'
                                              '</testcase>')]))
    assert (v["status"], v["message"]) == ("FAIL", "layer fc: 1 mismatches")
    v = regress.judge(_xml(tmp_path, [(0, 0, "")]))
    assert v["status"] == "FAIL" and "no test ran" in v["message"]
    v = regress.judge(tmp_path / "missing.xml")
    assert v["status"] == "FAIL" and "abnormally" in v["message"]


def test_summary_line_and_exit_status():
    assert regress.summary([{"status": "PASS"}, {"status": "PASS"}]) == ("2 passed, 0 failed", 0)
    assert regress.summary([{"status": "PASS"}, {"status": "FAIL"}]) == ("1 passed, 1 failed", 1)


# ------------------------------------------------------------ the pool, with fake workers

def _job(tmp_path, name, code, limit=30.0, key=None, build_limit=0.0):
    """A fake run: a Python snippet that may write its verdict to argv[1]."""
    d = tmp_path / name
    return regress.Job(name, [sys.executable, "-c", textwrap.dedent(code), str(d / "result.json")], d / "log.txt",
                       d / "result.json", limit, key, build_limit, {"replay": f"make sim TEST={name} SEED=1"})


PASS = "import json, sys; json.dump({'status': 'PASS'}, open(sys.argv[1], 'w'))"
FAIL = "import json, sys; json.dump({'status': 'FAIL', 'message': 'mismatch'}, open(sys.argv[1], 'w'))"
CRASH = "import sys; print('segfault, say'); sys.exit(3)"
# A hung simulator with a child of its own: both must die at the limit.
HANG = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])
open(sys.argv[1] + '.child', 'w').write(str(child.pid))
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_hung_run_is_killed_and_failed(tmp_path):
    t0 = time.monotonic()
    done = regress.execute([_job(tmp_path, "hang", HANG, limit=1.5), _job(tmp_path, "ok", PASS)], 2, poll=0.05)
    assert time.monotonic() - t0 < 20
    by = {r["name"]: r for r in done}
    assert by["ok"]["status"] == "PASS"
    assert by["hang"]["status"] == "FAIL" and "timeout" in by["hang"]["message"]
    child = int((tmp_path / "hang" / "result.json.child").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the hung run's children must die with it"


def test_crash_and_failure_are_failures(tmp_path):
    done = regress.execute([_job(tmp_path, "crash", CRASH), _job(tmp_path, "bad", FAIL)], 2, poll=0.05)
    by = {r["name"]: r for r in done}
    assert by["crash"]["status"] == "FAIL" and "exit status 3" in by["crash"]["message"]
    assert (by["bad"]["status"], by["bad"]["message"]) == ("FAIL", "mismatch")
    assert "segfault" in (tmp_path / "crash" / "log.txt").read_text()


def test_build_allowance_only_until_the_build_is_done(tmp_path):
    slow = "import time; time.sleep(1.0); " + PASS
    jobs = [_job(tmp_path, "first", slow, limit=0.5, key="b", build_limit=5),
            _job(tmp_path, "second", slow, limit=0.5, key="b", build_limit=5)]
    done = regress.execute(jobs, 1, poll=0.05)
    assert [r["status"] for r in done] == ["PASS", "FAIL"]


def test_regression_output_with_a_failing_run(tmp_path, monkeypatch, capsys):
    """The whole front end on fake runs: progress lines, the replay line of
    the failure, results.json, report.html, the closing line, exit status."""
    monkeypatch.setattr(regress, "OUT", tmp_path / "out")
    monkeypatch.setattr(regress, "jobs_for", lambda runs, *a: [_job(tmp_path, "good", PASS),
                                                               _job(tmp_path, "broken", FAIL)])
    assert regress.main(["--regression", "smoke", "--jobs", "2"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "1 passed, 1 failed"
    assert any(ln.startswith("[") and " PASS good (" in ln for ln in out)
    assert any(ln.startswith("[") and " FAIL broken (" in ln for ln in out)
    assert "    replay: make sim TEST=broken SEED=1" in out
    res = json.loads((tmp_path / "out" / "smoke" / "results.json").read_text())
    assert res["summary"] == "1 passed, 1 failed"
    assert {r["name"]: r["status"] for r in res["runs"]} == {"good": "PASS", "broken": "FAIL"}
    page = (tmp_path / "out" / "smoke" / "report.html").read_text()
    assert "make sim TEST=broken SEED=1" in page and "1 passed, 1 failed" in page


def test_golden_mode_keeps_its_options():
    args = regress.parser().parse_args(["--golden", "--seed", "17", "--bits", "8"])
    assert (args.golden, args.seed, args.bits) == (True, 17, 8)
    with pytest.raises(SystemExit):
        regress.main(["--seeds", "3"])  # --seeds belongs to --golden
