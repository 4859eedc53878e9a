"""The coverage tools (scripts/coverage.py, tb/funcov.py) on small hand-made
inputs: Verilator coverage.dat and lcov parsing, functional-coverage export
and merge, and the summary. No simulation runs here."""
import importlib.util
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from golden import isa
from tb import funcov, simenv

_spec = importlib.util.spec_from_file_location("uz_coverage_script", simenv.ROOT / "scripts" / "coverage.py")
cov = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cov)

RTL = simenv.ROOT / "rtl"


def point(f, line, t, o, h="uz_top.u", count=0):
    key = "".join(f"\x01{k}\x02{v}" for k, v in (("f", f), ("l", line), ("n", 0), ("t", t),
                                                   ("page", f"v_{t}/m"), ("o", o), ("h", h)))
    return f"C '{key}' {count}\n"


def tiny_dat(tmp_path, toggle_counts=(1, 2, 0, 5), name="coverage.dat"):
    """Two line points, four toggle points of one 2-bit signal, and points of a
    file outside rtl/ that must not count."""
    ram = str(RTL / "uz_ram.sv")
    lines = [cov.DAT_HEADER, point(ram, 11, "line", "block", count=7), point(ram, 12, "branch", "if", count=0)]
    for (bit, d), c in zip([(0, "0->1"), (0, "1->0"), (1, "0->1"), (1, "1->0")], toggle_counts):
        lines.append(point(ram, 5, "toggle", f"q[{bit}]:{d}", count=c))
    lines.append(point("/elsewhere/tb.sv", 3, "toggle", "x:0->1", count=0))
    lines.append(point("/elsewhere/tb.sv", 4, "line", "block", count=0))
    p = tmp_path / name
    p.write_text("".join(lines), encoding="latin-1")
    return p


def test_parse_dat_types_and_rtl_filter(tmp_path):
    points = cov.parse_dat(tiny_dat(tmp_path))
    assert len(points) == 8
    lines = cov.select_points(points, cov.LINE_TYPES)
    assert sorted(cov.point_fields(k)["l"] for k in lines) == ["11", "12"]
    tog = cov.toggle_summary(cov.select_points(points, (cov.TOGGLE_TYPE,)))
    assert (tog["covered"], tog["total"]) == (3, 4)
    (entry,) = tog["files"].values()
    assert entry["signals"] == {("uz_top.u", "q"): [3, 4]}


def test_dat_round_trip_and_repeated_keys_add(tmp_path):
    points = cov.parse_dat(tiny_dat(tmp_path))
    out = tmp_path / "again.dat"
    cov.write_dat(points, out)
    assert cov.parse_dat(out) == points
    doubled = tmp_path / "doubled.dat"
    doubled.write_text(out.read_text(encoding="latin-1") + "".join(out.read_text(encoding="latin-1").splitlines(True)[1:]),
                       encoding="latin-1")
    assert cov.parse_dat(doubled) == {k: 2 * v for k, v in points.items()}


def test_type_from_page_when_no_type_key():
    assert cov.point_type({"page": "v_toggle/uz_ram"}) == "toggle"
    assert cov.point_type({"t": "branch", "page": "v_line/x"}) == "branch"


INFO = """TN:verilator_coverage
SF:/x/rtl/a.sv
DA:1,4
DA:2,0
DA:3,1
end_of_record
SF:/x/rtl/b.sv
DA:7,0
end_of_record
SF:/x/rtl/a.sv
DA:2,3
end_of_record
"""


def test_lcov_da_lines():
    info = cov.parse_info(INFO)
    # A second record of the same file adds its counts: line 2 is then hit.
    assert info == {"/x/rtl/a.sv": {1: 4, 2: 3, 3: 1}, "/x/rtl/b.sv": {7: 0}}
    s = cov.line_summary(info)
    assert (s["covered"], s["total"]) == (3, 4)


def test_summary_changes_when_a_point_is_uncovered(tmp_path):
    """The checker can fail: one untoggled bit or one missed line shows."""
    def toggles(counts, name):
        return cov.toggle_summary(cov.select_points(cov.parse_dat(tiny_dat(tmp_path, counts, name)),
                                                    (cov.TOGGLE_TYPE,)))
    full, holed = toggles((1, 1, 1, 1), "full.dat"), toggles((1, 1, 0, 1), "holed.dat")
    lines = cov.line_summary(cov.parse_info("SF:a\nDA:1,1\nDA:2,1\nend_of_record\n"))
    lines_holed = cov.line_summary(cov.parse_info("SF:a\nDA:1,1\nDA:2,0\nend_of_record\n"))
    s_full = cov.summary_line(lines, full, None)
    assert s_full.startswith("coverage: line 100.0% (2/2), toggle 100.0% (4/4)")
    assert cov.NO_FUNCTIONAL in s_full
    assert "toggle 75.0% (3/4)" in cov.summary_line(lines, holed, None)
    assert "line 50.0% (1/2)" in cov.summary_line(lines_holed, full, None)
    func = {"covered": 1, "total": 3}
    assert cov.summary_line(lines, full, func).endswith("functional 33.3% (1/3)")


# ----------------------------------------------------------- functional

def export_xml(path, hits_kind, hits_x):
    """A two-point database in cocotb-coverage's XML export format."""
    def item(name, bins):
        el = f"<{name} size='{len(bins)}' coverage='{sum(h > 0 for _, h in bins)}' cover_percentage='0' " \
             f"abs_name='top.g.{name}' weight='1' at_least='1'>"
        for i, (b, h) in enumerate(bins):
            el += f"<bin{i} bin=\"{b}\" hits='{h}' abs_name='top.g.{name}.bin{i}'/>"
        return el + f"</{name}>"
    kind = item("kind", list(zip(["CONV", "FC", "POOL"], hits_kind)))
    x = item("kxs", list(zip(["(1, 1)", "(3, 1)"], hits_x)))
    cov_n = sum(h > 0 for h in hits_kind) + sum(h > 0 for h in hits_x)
    path.write_text(f"<top abs_name='top' size='5' coverage='{cov_n}' cover_percentage='0'>"
                    f"<g abs_name='top.g' size='5' coverage='{cov_n}' cover_percentage='0'>{kind}{x}</g></top>")
    return path


def test_functional_merge_and_holes(tmp_path):
    a = export_xml(tmp_path / "a.xml", (2, 0, 0), (1, 0))
    b = export_xml(tmp_path / "b.xml", (1, 1, 0), (0, 0))
    merged = cov.merge_funcov([a, b], tmp_path / "merged.xml")
    s = cov.functional_summary(cov.parse_funcov(merged))
    assert (s["covered"], s["total"]) == (3, 5)
    by_name = {it["name"]: it for it in s["items"]}
    assert by_name["g.kind"]["bins"] == [("CONV", 3), ("FC", 1), ("POOL", 0)]
    assert by_name["g.kind"]["holes"] == ["POOL"]
    assert by_name["g.kxs"]["holes"] == ["(3, 1)"]
    # The merge's own running totals agree with the count from the bins.
    top = ET.parse(merged).getroot()
    assert (int(top.attrib["coverage"]), int(top.attrib["size"])) == (3, 5)
    page = cov.functional_html(s)
    assert "POOL" in page and "cross" in page and "60.0% (3/5)" in page


def test_functional_report_without_samples():
    assert "no samples" in cov.functional_html(None)


def conv_desc(**kw):
    d = isa.Descriptor({})
    d.set(kind=isa.Kind.CONV, k=3, stride=1, pad_t=1, pad_b=1, pad_l=1, pad_r=1, in_c=5, in_h=9, in_w=11,
          out_c=12, out_h=9, out_w=11, tr=4, tc=11, ti=8, to=8, bias=1, bias_shift=-2, data_shift=3, insel=1)
    return d.set(**kw)


def test_layer_values():
    v = funcov.layer_values(conv_desc(), {"saturated": True, "stall": "light"})
    assert (v["kind"], v["k"], v["stride"], v["pad"]) == ("CONV", 3, 1, "nonzero")
    assert (v["partial_rows"], v["partial_cols"], v["partial_in_ch"], v["partial_out_ch"]) == (True, False, True, True)
    assert (v["bias_shift"], v["data_shift"], v["gen_shift"]) == ("neg", "pos", None)
    assert (v["saturation"], v["stall"], v["insel"], v["weights"], v["rho"]) == (True, "light", "on", "raw", None)
    o = funcov.layer_values(conv_desc(ovsf=1, log2_l=3, n_codes=2, gen_shift=0).values, {"partial_in": False})
    assert (o["rho"], o["gen_shift"], o["weights"], o["partial_in_ch"]) == ("1/4", "zero", "ovsf", False)
    assert o["saturation"] is None and o["stall"] is None          # not given: not sampled
    p = isa.Descriptor({}).set(kind=isa.Kind.POOL, pool_k=2, pool_s=2, in_c=8, in_h=4, in_w=4, out_c=8,
                               out_h=2, out_w=2, tr=4, tc=4, ti=8, to=8)
    pv = funcov.layer_values(p)
    assert (pv["kind"], pv["k"], pv["stride"], pv["pad"], pv["data_shift"], pv["rho"]) == ("POOL", 2, 2, "zero", None, None)
    with pytest.raises(ValueError):
        funcov.layer_values(conv_desc(), {"stall": "medium"})
    assert set(funcov.layer_values(conv_desc(kind=9)).values()) == {None}     # never ran
    assert set(funcov.layer_values(conv_desc())) == set(funcov._NAMES)


def test_layer_values_residual_and_pools():
    """The residual bins (on CONV/FC only; the shift's sign, the add's
    saturation) and the pool bins (what the POOL does, its pads, a
    non-square window, the divisor rule of a padded average)."""
    v = funcov.layer_values(conv_desc(res=1, res_shift=-3, res_addr=0x100), {"res_saturated": True})
    assert (v["res"], v["res_shift"], v["res_sat"]) == ("on", "left", True)
    v = funcov.layer_values(conv_desc(), {"res_saturated": False})
    assert (v["res"], v["res_shift"], v["res_sat"], v["pool_op"]) == ("off", None, None, None)
    assert funcov.layer_values(conv_desc(res=1, res_shift=0))["res_shift"] == "zero"
    assert funcov.layer_values(conv_desc(res=1, res_shift=5))["res_sat"] is None      # not given
    base = dict(kind=isa.Kind.POOL, in_c=8, in_h=5, in_w=4, out_c=8, tr=5, tc=4, ti=8, to=8)
    avg = isa.Descriptor({}).set(pool_k=3, pool_s=1, pool_pad=1, pool_avg=1, pool_incl_pad=1, out_h=5, out_w=4, **base)
    v = funcov.layer_values(avg)
    assert (v["pool_op"], v["pool_pads"], v["pool_nonsquare"], v["pool_incl_pad"], v["res"]) == \
        ("avg", "equal", False, True, None)
    glob = isa.Descriptor({}).set(pool_global=1, pool_avg=1, pool_s=1, out_h=1, out_w=1, **base)
    v = funcov.layer_values(glob)
    assert (v["pool_op"], v["pool_pads"], v["pool_nonsquare"], v["pool_incl_pad"], v["k"]) == \
        ("global_avg", None, True, None, None)
    asym = isa.Descriptor({}).set(pool_k=3, pool_s=2, pool_asym=1, pool_pad=2, pool_pad_b=1, pool_pad_r=2,
                                  out_h=3, out_w=2, **base)
    v = funcov.layer_values(asym)
    assert (v["pool_op"], v["pool_pads"], v["pool_incl_pad"]) == ("max", "unequal", None)
    copy = isa.Descriptor({}).set(pool_kh=1, pool_kw=1, pool_s=1, out_h=5, out_w=4, **base)
    assert funcov.layer_values(copy)["pool_op"] is None                  # a copy pools nothing


def test_sample_and_export(tmp_path):
    """A sampled layer shows in the export (counted against the export before it:
    the coverage database is one per process)."""
    def hits(path):
        return {(it["name"], b): h for it in cov.parse_funcov(path) for b, h in it["bins"]}
    before = hits(funcov.export(tmp_path / "before.xml"))
    funcov.sample_layer(conv_desc(), {"saturated": False, "stall": "heavy"})
    after = hits(funcov.export(tmp_path / funcov.EXPORT_NAME))
    grew = {k for k in after if after[k] != before.get(k, 0)}
    assert ("uz.layer.stall", "heavy") in grew
    assert ("uz.layer.kind_k_stride_pad", "('CONV', 3, 1, 'nonzero')") in grew
    assert ("uz.layer.rho", "1") not in grew
    names = {it["name"] for it in cov.parse_funcov(tmp_path / funcov.EXPORT_NAME)}
    assert set(funcov.item_names()) <= names


def test_item_names_are_safe_for_the_merge():
    """cocotb-coverage's XML merge takes any element whose tag contains "bin" for a bin."""
    for name in funcov.item_names() + [funcov.GROUP]:
        assert "bin" not in name.lower(), name


def test_cross_leaves_out_illegal_shapes():
    from cocotb_coverage.coverage import coverage_db
    bins = set(coverage_db[f"{funcov.GROUP}.kind_k_stride_pad"].detailed_coverage)
    assert ("FC", 1, 1, "zero") in bins and ("FC", 3, 1, "zero") not in bins
    assert ("CONV", 1, 1, "nonzero") not in bins and ("CONV", 11, 4, "nonzero") in bins
    assert ("POOL", 3, 3, "nonzero") in bins and ("POOL", 5, 1, "zero") not in bins
    assert len(bins) == 36 + 1 + 12


def test_default_workload_is_the_smoke_regression():
    """make coverage with no arguments covers what make sim runs."""
    from tb import regressions
    what, entries = cov.load_workload()
    assert what == "regression smoke"
    smoke = [r for r in regressions.expand("smoke") if r.sim == "verilator" and r.toplevel == "uz_top"]
    assert [e["name"] for e in entries] == [r.name for r in smoke] and len(entries) > 6
    specs = [cov.normalize(e, i) for i, e in enumerate(entries)]
    assert all("UZ_CONFIG" in s["env"] for s in specs) and len({s["run_name"] for s in specs}) == len(specs)
    with pytest.raises(SystemExit):
        cov.normalize({"module": "m"}, 0)               # no config


def test_verilator_coverage_merge_and_info(tmp_path):
    """The OS tool merges two runs (counts add: one run's hole is the other's
    hit) and reads our line-only file."""
    assert shutil.which("verilator_coverage"), ("Debian's verilator_coverage is missing: `make test` and "
                                                "`make coverage` install it (make coverage-deps)")
    env = {k: v for k, v in os.environ.items() if k != "VERILATOR_ROOT"}
    a, b = tiny_dat(tmp_path, name="a.dat"), tiny_dat(tmp_path, (0, 0, 3, 0), name="b.dat")
    merged = tmp_path / "merged.dat"
    subprocess.run(["verilator_coverage", "--write", str(merged), str(a), str(b)], env=env, check=True)
    points = cov.parse_dat(merged)
    tog = cov.toggle_summary(cov.select_points(points, (cov.TOGGLE_TYPE,)))
    assert (tog["covered"], tog["total"]) == (4, 4)
    assert sorted(points.values()) == sorted([14, 0, 1, 2, 3, 5, 0, 0])
    line_dat = tmp_path / "line.dat"
    cov.write_dat(cov.select_points(cov.parse_dat(merged), cov.LINE_TYPES), line_dat)
    info = tmp_path / "cov.info"
    subprocess.run(["verilator_coverage", "--write-info", str(info), str(line_dat)], env=env, check=True)
    s = cov.line_summary(cov.parse_info(info.read_text()))
    assert (s["covered"], s["total"]) == (1, 2)


def test_regression_runs_keep_verilator_runs_of_uz_top():
    from types import SimpleNamespace
    from golden.config import EngineConfig

    def run(name, sim, toplevel="uz_top"):
        return SimpleNamespace(name=name, module="tb.tests", testcase="SmokeTest", seed=3, cfg=EngineConfig(),
                               sim=sim, toplevel=toplevel, timeout=None, sim_env=lambda: {"UZ_STALL": "light"})
    out = cov.regression_runs([run("a", "verilator"), run("b", "icarus"), run("c", "verilator", "uz_csr")])
    assert [e["name"] for e in out] == ["a"]
    spec = cov.normalize(out[0], 7)
    assert spec["run_name"] == "0007-a" and spec["timeout"] == cov.RUN_TIMEOUT
    assert spec["env"]["UZ_STALL"] == "light" and "UZ_CONFIG" in spec["env"]


def test_graph_bins_exist():
    """The clip, slice and gap coverpoints and their crosses, with their bins."""
    from cocotb_coverage.coverage import coverage_db

    def bins(name):
        return set(coverage_db[f"{funcov.GROUP}.{name}"].detailed_coverage)
    assert bins("clip") == {"off", "on", "binding"}
    assert bins("in_slice") == bins("out_slice") == {"whole", "offset0", "offset"}
    assert bins("out_gap") == {False, True}
    assert bins("clip_kind") == {(c, k) for c in ("off", "on", "binding") for k in ("CONV", "FC")}
    assert bins("in_slice_kind") == {(s, k) for s in ("whole", "offset0", "offset") for k in ("CONV", "POOL")} | {
        ("whole", "FC")}
    out = bins("out_slice_kind_k")
    assert {(s, "CONV", k) for s in ("whole", "offset0", "offset") for k in (1, 3, 5)} <= out
    assert {("whole", "FC", 1), ("whole", "POOL", 2), ("offset0", "POOL", 3), ("offset", "POOL", 3)} <= out
    assert ("offset", "FC", 1) not in out and ("whole", "CONV", 2) not in out and ("offset", "CONV", 7) not in out
    assert len(out) == 9 + 2 + 1 + 4
    assert {"clip", "in_slice", "out_slice", "out_gap"} <= set(funcov._NAMES)


def test_graph_layer_values():
    v = funcov.layer_values(conv_desc(), {"out_gap": False})
    assert (v["clip"], v["in_slice"], v["out_slice"], v["out_gap"]) == ("off", "whole", "whole", False)
    part = conv_desc(out_c=5, out_c_off=8, out_c_total=29, in_c_off=0, in_c_total=24, clip=1, clip_hi=100)
    v = funcov.layer_values(part, {"clip_binding": True, "out_gap": True})
    assert (v["clip"], v["in_slice"], v["out_slice"], v["out_gap"]) == ("binding", "offset0", "offset", True)
    v = funcov.layer_values(conv_desc(clip=1, clip_hi=100, out_c_total=12), {"clip_binding": False})
    assert (v["clip"], v["out_slice"], v["out_gap"]) == ("on", "whole", None)
    assert funcov.layer_values(conv_desc(clip=1, clip_hi=100))["clip"] is None      # binding unknown: not sampled
    p = isa.Descriptor({}).set(kind=isa.Kind.POOL, pool_k=3, pool_s=1, pool_pad=1, in_c=8, in_h=4, in_w=4, out_c=8,
                               out_h=4, out_w=4, tr=4, tc=4, ti=8, to=8, in_c_off=16, in_c_total=24)
    pv = funcov.layer_values(p)
    assert (pv["clip"], pv["in_slice"], pv["out_slice"]) == (None, "offset", "whole")


def test_coverage_stats_of_a_graph_program():
    """tb/coverage.layer_stats on a compiled random graph: the gap and the
    binding clip come out of the descriptor and the golden trace."""
    from types import SimpleNamespace

    import numpy as np

    from golden import compiler, funcmodel, memimage, randnet
    from golden.network import load_network
    from tb import coverage, regressions
    cfg = regressions.CONFIGS["small"]
    seen = set()
    for seed in range(8):
        net = load_network(randnet.random_graph_network(seed, cfg))
        calib = (1.0, 8.0)[seed % 2] * np.random.default_rng(seed).normal(0, 1, (2,) + tuple(net.input_shape))
        prog = compiler.compile_network(net, cfg, calib)
        compiler.load_input(prog, calib[0])
        img = memimage.MemoryImage()
        img.data = bytearray(prog.image.data)
        traces = [funcmodel.execute_descriptor(img, isa.Descriptor.decode(
            img.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES)), cfg) for i in range(len(prog.layers))]
        item = SimpleNamespace(prog=prog, traces=traces, stall="light")
        for i in range(len(traces)):
            st = coverage.layer_stats(item, i)
            v = funcov.layer_values(st.pop("fields"), st)
            seen |= {("clip", v["clip"]), ("gap", v["out_gap"])}
    assert {("clip", "binding"), ("clip", "on"), ("clip", "off"), ("gap", True), ("gap", False)} <= seen


def test_group_bins():
    """The group coverpoint and its crosses: depthwise K 1/3/5/7 x stride
    1-4 x insel, lowered K 1/3/5 x stride 1-2 x insel (dense layers are the
    other crosses'), and every group with raw and OVSF weights."""
    from cocotb_coverage.coverage import coverage_db

    def bins(name):
        return set(coverage_db[f"{funcov.GROUP}.{name}"].detailed_coverage)
    assert bins("group") == {"dense", "depthwise", "lowered"}
    cross = bins("group_k_stride_insel")
    assert {("depthwise", k, s, i) for k in (1, 3, 5, 7) for s in (1, 2, 3, 4) for i in ("off", "on")} <= cross
    assert {("lowered", k, s, i) for k in (1, 3, 5) for s in (1, 2) for i in ("off", "on")} <= cross
    assert len(cross) == 32 + 12
    assert bins("group_weights") == {(g, w) for g in ("dense", "depthwise", "lowered") for w in ("raw", "ovsf")}
    from tb.sequences import group_bins
    assert set(group_bins()) == cross                  # CoverageSweepTest runs one layer per bin


def test_group_layer_values():
    """Depthwise from the descriptor; lowered or dense from the program
    (stats lowered_group), else not sampled; only CONV layers."""
    dw = conv_desc(groups=8, in_c=8, out_c=8, ti=8, to=8)
    assert funcov.layer_values(dw)["group"] == "depthwise"
    assert funcov.layer_values(conv_desc(), {"lowered_group": True})["group"] == "lowered"
    assert funcov.layer_values(conv_desc(), {"lowered_group": False})["group"] == "dense"
    assert funcov.layer_values(conv_desc())["group"] is None
    fc = conv_desc(kind=isa.Kind.FC, k=1, in_h=1, in_w=1, out_h=1, out_w=1)
    assert funcov.layer_values(fc, {"lowered_group": False})["group"] is None


def test_coverage_stats_name_lowered_layers():
    """tb/coverage.layer_stats marks the bands of a lowered grouped layer."""
    from types import SimpleNamespace

    import random

    from golden import funcmodel, memimage
    from tb import coverage, regressions
    from tb.sequences import ALL_DIRECTED, make_program
    cfg = regressions.CONFIGS["small"]
    random.seed(1)
    spec, insel, *_ = ALL_DIRECTED["mobile_shuffle"]
    prog = make_program(dict(spec, name="m", weights={"seed": 1}), cfg, "m", insel=insel).prog
    img = memimage.MemoryImage()
    img.data = bytearray(prog.image.data)
    traces = [funcmodel.execute_descriptor(img, isa.Descriptor.decode(
        img.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES)), cfg) for i in range(len(prog.layers))]
    item = SimpleNamespace(prog=prog, traces=traces, stall="none")
    groups = {}
    for i, q in enumerate(prog.layers):
        st = coverage.layer_stats(item, i)
        groups[q.name] = funcov.layer_values(st.pop("fields"), st)["group"]
    assert groups["dw3"] == groups["dw5"] == "depthwise" and groups["exp"] == "dense"
    assert {g for n, g in groups.items() if n.startswith(("g1", "mult"))} == {"lowered"}
