"""The synthesis flow's report readers (tb/synth_flow.py) on recorded
snippets of Yosys and nextpnr output: no synthesis runs here."""
import json

import pytest

from tb import synth_flow as sf

STAT_JSON = """{
   "creator": "Yosys 0.70",
   "invocation": "stat -json ",
   "modules": {
      "\\\\blk": {
         "num_cells": 2212,
         "num_cells_by_type": {
            "BUFG": 1,
            "LUT2": 64,
            "LUT6": 10,
            "FDRE": 30,
            "RAM64M": 2,
            "DSP48E1": 3,
            "RAMB36E1": 16,
            "RAMB18E1": 1,
            "CARRY4": 5
         }
      }
   },
   "design": {
      "num_cells": 2212,
      "num_cells_by_type": {
         "BUFG": 1,
         "LUT2": 64,
         "LUT6": 10,
         "FDRE": 30,
         "RAM64M": 2,
         "DSP48E1": 3,
         "RAMB36E1": 16,
         "RAMB18E1": 1,
         "CARRY4": 5
      }
   }
}"""

NEXTPNR_LOG = """Info: Device utilisation:
Info: \t          TRELLIS_IO:      65/    365    17%
Info: \t              DP16KD:       0/    208     0%
Info: \t          MULT18X18D:       1/    156     0%
Info: \t          TRELLIS_FF:      96/  83640     0%
Info: \t        TRELLIS_COMB:      38/  83640     0%

Info: Max frequency for clock '$glbnet$clk$TRELLIS_IO_IN': 202.06 MHz (PASS at 125.00 MHz)

Info: Critical path report for clock '$glbnet$clk$TRELLIS_IO_IN' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.40  0.40 Source ar_TRELLIS_FF_Q.Q
Info:    routing  1.00  1.39 Net ar[0] (77,33) -> (78,34)
Info:                          Sink p_TRELLIS_FF_Q_DI_MULT18X18D_P31.A0
Info:                          Defined in:
Info:                               m.v:2.12-2.14
Info:      logic  3.07  4.46 Source p_TRELLIS_FF_Q_DI_MULT18X18D_P31.P25
Info:    routing  0.89  5.35 Net p_TRELLIS_FF_Q_DI_MULT18X18D_P31_P25 (78,34) -> (79,35)
Info:                          Sink p_TRELLIS_FF_Q_31.M
Info:      setup  0.00  5.35 Source p_TRELLIS_FF_Q_31.M
Info: 3.46 ns logic, 1.89 ns routing

Info: Critical path report for cross-domain path '<async>' -> 'posedge $glbnet$clk$TRELLIS_IO_IN':
Info:       type curr  total name
Info:     source  0.00  0.00 Source a[3]$tr_io.O
Info:    routing  5.68  5.68 Net a[3]$TRELLIS_IO_IN (13,95) -> (78,36)
Info: 0.00 ns logic, 5.68 ns routing

Info: Max frequency for clock '$glbnet$clk$TRELLIS_IO_IN': 186.78 MHz (PASS at 125.00 MHz)
"""

RTLIL = r"""attribute \top 1
module \top
  wire input 1 \clk_i
  wire width 8 output 2 \q_o
  cell \mid$top.u_mid \u_mid
    connect \clk_i \clk_i
  end
  cell $add $1
  end
end
module \mid$top.u_mid
  wire input 1 \clk_i
  memory width 16 size 64 \mem
  cell \uz_ram$top.u_mid.u_ram \u_ram
  end
end
module \uz_ram$top.u_mid.u_ram
  wire input 1 \clk_i
  memory width 32 size 128 \mem
end
"""


def test_stat_json_to_xilinx_resources():
    r = sf.xilinx_resources(sf.parse_stat_json(STAT_JSON))
    assert (r["lut_logic"], r["lut_mem"], r["lut"], r["ff"], r["dsp"]) == (74, 8, 82, 30, 3)
    assert (r["ramb36"], r["ramb18"], r["bram36_eq"]) == (16, 1, 16.5)
    assert r["bram_data_bits"] == 16 * 32768 + 16384
    assert r["carry"] == 5 and r["other"] == {}
    assert sf.parse_stat_json(STAT_JSON, "blk")["LUT2"] == 64


@pytest.mark.parametrize("bad", ["", "Yosys 0.70\nERROR: out of memory", '{"design": {"num_cells": 3}}'])
def test_stat_json_malformed_is_a_clear_error(bad):
    with pytest.raises(sf.SynthError, match="stat -json"):
        sf.parse_stat_json(bad)


def test_nextpnr_log():
    r = sf.parse_nextpnr_log(NEXTPNR_LOG)
    clk = "$glbnet$clk$TRELLIS_IO_IN"
    # the last report (after routing) wins
    assert r["fmax"] == {clk: {"mhz": 186.78, "target_mhz": 125.0, "pass": True}}
    cp = r["critical_paths"][clk]
    assert list(r["critical_paths"]) == [clk]          # cross-domain paths are not a clock's own
    assert cp["from"] == "ar_TRELLIS_FF_Q.Q" and cp["to"] == "p_TRELLIS_FF_Q_31.M"
    assert (cp["total_ns"], cp["logic_ns"], cp["routing_ns"], cp["logic_steps"]) == (5.35, 3.46, 1.89, 1)
    assert [s["type"] for s in cp["steps"]] == ["clk-to-q", "routing", "logic", "routing", "setup"]
    assert r["utilisation"]["MULT18X18D"] == {"used": 1, "available": 156}
    assert r["utilisation"]["TRELLIS_FF"]["used"] == 96


def test_nextpnr_failing_clock():
    line = "Info: Max frequency for clock 'clk': 98.50 MHz (FAIL at 125.00 MHz)\n"
    assert sf.parse_nextpnr_log(line)["fmax"]["clk"] == {"mhz": 98.5, "target_mhz": 125.0, "pass": False}


def test_nextpnr_malformed_log_is_a_clear_error():
    with pytest.raises(sf.SynthError, match="Max frequency"):
        sf.parse_nextpnr_log("Info: Placing...\nERROR: Unable to place cell 'x'\n")
    cut = NEXTPNR_LOG.split("Info: 3.46 ns logic")[0] + \
        "Info: Max frequency for clock 'c': 10.00 MHz (FAIL at 125.00 MHz)\n"
    with pytest.raises(sf.SynthError, match="incomplete"):
        sf.parse_nextpnr_log(cut)


def test_rtlil_blocks_and_buffers():
    mods = sf.parse_rtlil(RTLIL)
    assert mods["top"].children == {"u_mid": "mid$top.u_mid"}           # $add is not a child
    assert sf.subtree(mods, "top") == ["top", "mid$top.u_mid", "uz_ram$top.u_mid.u_ram"]
    assert sf.buffer_bits(mods) == {"top.u_mid.u_ram": 32 * 128}
    assert sf.port_list(mods["top"]) == [("clk_i", "input", 1), ("q_o", "output", 8)]
    b = sf.blocks(mods, "top")
    assert [(x.name, x.glue) for x in b] == [("top", True), ("mid", False)]
    glue = sf.block_rtlil(mods, b[0], "blk")
    assert "module \\blk" in glue and "attribute \\blackbox 1" in glue and "memory" not in glue
    full = sf.block_rtlil(mods, b[1], "blk")
    assert full.count("memory width") == 2 and "blackbox" not in full


def test_rtlil_cut_short_is_an_error():
    with pytest.raises(sf.SynthError, match="ends inside"):
        sf.parse_rtlil(RTLIL.rsplit("end", 1)[0])


def test_pin_wrapper_uses_every_port():
    v = sf.pin_wrapper([("clk_i", "input", 1), ("rst_ni", "input", 1), ("a_i", "input", 8), ("b_i", "input", 1),
                        ("y_o", "output", 4)])
    assert ".a_i(in_q[7:0])" in v and ".b_i(in_q[8:8])" in v and ".y_o(out_w[3:0])" in v
    assert "reg [8:0] in_q" in v


def test_resource_model_fit_recovers_a_linear_law():
    law = {"pm_pn": 60.0, "pm": 100.0, "buffer_kbits": 0.5, "bus_bits": 3.0, "const": 2000.0}
    pts = []
    for i, (p, buf, bus) in enumerate([(4, 512, 64), (8, 1024, 128), (8, 4096, 256), (16, 2048, 128),
                                       (16, 8192, 64), (32, 1024, 512)]):
        f = sf.model_features({"PM": p, "PN": p, "AxiDataWidth": bus}, buf * 1024)
        y = sum(law[k] * v for k, v in zip(sf.MODEL_FEATURES, f))
        pts.append({"name": f"p{i}", "features": f,
                    "resources": {"lut": y, "ff": y / 2, "dsp": p * p, "bram36_eq": buf / 32}})
    m = sf.fit_resource_model(pts)
    lut = m["targets"]["lut"]
    assert lut["rank"] == 5 and lut["max_abs_residual"] < 1e-6
    for k, v in law.items():
        assert lut["coefficients"][k] == pytest.approx(v, rel=1e-6, abs=1e-6)
    assert sf.predict(m, pts[1]["features"])["dsp"] == pytest.approx(64)
    json.dumps(m)                                      # the device search loads it as JSON
    with pytest.raises(sf.SynthError, match="at least two"):
        sf.fit_resource_model(pts[:1])


def test_throughput_rows():
    bench = {"runs": [{"layer": "conv3_1", "rtl": True, "cycles": 1000, "macs": 200000, "rho": 1.0,
                       "selection": "dense", "bus_bits": 128},
                      {"layer": "depthwise", "rtl": False, "cycles": None, "macs": 10},
                      # a row with its own bus width: another configuration than the one synthesised
                      {"layer": "conv1_1_bus256", "rtl": True, "cycles": 500, "macs": 200000, "config": None}]}
    rows = sf.throughput_rows(bench, 125.0, "measured", 256)
    assert [r["layer"] for r in rows] == ["conv3_1"]
    assert rows[0]["gops"] == pytest.approx(2 * 200000 / 1000 * 125e6 / 1e9)
    assert rows[0]["macs_per_dsp_cycle"] == pytest.approx(200000 / 1000 / 256)
    assert sf.throughput_rows(bench, 200.0, "assumed", None)[0]["macs_per_dsp_cycle"] is None


def test_scripts_leave_out_the_slow_check():
    """The replicated front steps of each flow keep their order but not
    `check` (tens of minutes on unoptimised uz_compute)."""
    x = sf.xilinx_script("compute.il", "xcup").splitlines()
    assert "check" not in x and x[2].endswith("-run begin:prepare") and x[-2].endswith("-run map_dsp:")
    assert "-family xcup" in x[2] and "compute.xcup.stat.json" in x[-1]
    e = sf.ecp5_script("../elab.il", "wrap.v", "w", "e.json").splitlines()
    assert "check" not in e and "synth_ecp5 -top w -run map_ram:check" in e and e[-1] == "write_json e.json"
    g = sf.generic_script("a.il", "uz_top", "n.v").splitlines()
    assert "check" not in g and "memory_map" not in g and g[-1] == "write_verilog -noattr n.v"


def test_nextpnr_utilisation_of_a_design_too_large():
    log = ("Info: Device utilisation:\nInfo: \t          TRELLIS_FF:   33592/  83640    40%\n"
           "Info: \t        TRELLIS_COMB:  137004/  83640   163%\nInfo: \t          MULT18X18D:     186/    156   119%\n"
           "ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'MULT18X18D'\n")
    u = sf.parse_nextpnr_utilisation(log)
    assert u["TRELLIS_COMB"] == {"used": 137004, "available": 83640}
    assert [k for k, v in u.items() if v["used"] > v["available"]] == ["TRELLIS_COMB", "MULT18X18D"]
    with pytest.raises(sf.SynthError, match="Max frequency"):
        sf.parse_nextpnr_log(log)


def test_netlist_levels():
    """The word level stops after synth's coarse step (Yosys's word-level
    cells), the gate level goes on to single-bit gates; both keep the RAMs
    as arrays and leave out `check` and `share`."""
    w = sf.generic_script("a.il", "uz_top", "n.v", "word").splitlines()
    g = sf.generic_script("a.il", "uz_top", "n.v", "gate").splitlines()
    for s in (w, g):
        assert "check" not in s and "share" not in s and "memory_map" not in s and "memory -nomap" in s
        assert s[-1] == "write_verilog -noattr n.v" and "alumacc" in s
    assert "techmap" not in w and "techmap" in g
    assert g[:len(w) - 2] == w[:-2]                   # the gate level is the word level and more
    with pytest.raises(sf.SynthError, match="unknown netlist level"):
        sf.netlist_job("small", None, 1, {}, level="lut")


CRIT_LOG = """Info: Max frequency for clock '$glbnet$clk_i$TRELLIS_IO_IN': 71.30 MHz (FAIL at 125.00 MHz)

Info: Critical path report for clock '$glbnet$clk_i$TRELLIS_IO_IN' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source u_top.u_layer.u_post.cnt_q_TRELLIS_FF_Q_3.Q
Info:    routing  1.20  1.72 Net u_top.u_layer.u_post.cnt_q[3] (10,20) -> (11,20)
Info:                          Sink u_top.u_layer.u_post.sum_CCU2C_S0.A0
Info:                          Defined in:
Info:                               rtl/uz_post.sv:120.15-120.20
Info:      logic  0.44  2.16 Source u_top.u_layer.u_post.sum_CCU2C_S0.COUT
Info:    routing  3.00  5.16 Net u_top.u_layer.u_compute.acc_d[0] (11,20) -> (30,40)
Info:                          Sink u_top.u_layer.u_compute.acc_q_TRELLIS_FF_Q.DI
Info:                          Defined in:
Info:                               rtl/uz_compute.sv:88.3-88.9
Info:                               rtl/uz_compute.sv:90.3-90.9
Info:                               /share/lattice/arith_map_ccu2c.v:74.7-80.4
Info:      setup  0.10  5.26 Source u_top.u_layer.u_compute.acc_q_TRELLIS_FF_Q.DI
Info: 1.06 ns logic, 4.20 ns routing
"""


def test_nextpnr_critical_path_names_blocks_and_rtl_lines():
    cp = sf.parse_nextpnr_log(CRIT_LOG)["critical_paths"]["$glbnet$clk_i$TRELLIS_IO_IN"]
    assert cp["blocks"] == ["uz_post", "uz_compute"]
    # the techmap library's lines are kept per step, not in the summary
    assert cp["rtl_lines"] == ["rtl/uz_post.sv:120.15-120.20", "rtl/uz_compute.sv:88.3-88.9",
                               "rtl/uz_compute.sv:90.3-90.9"]
    assert cp["steps"][3]["src"][-1] == "/share/lattice/arith_map_ccu2c.v:74.7-80.4"
    assert cp["steps"][1]["sink"] == "u_top.u_layer.u_post.sum_CCU2C_S0.A0"
    assert cp["logic_steps"] == 1 and cp["total_ns"] == 5.26


def test_nextpnr_fmax_below_target_is_a_result():
    """nextpnr prints the routed Fmax as an ERROR line when it fails the
    target (and --timing-allow-fail keeps it from stopping there)."""
    log = CRIT_LOG.replace("Info: Max frequency", "ERROR: Max frequency")
    assert sf.parse_nextpnr_log(log)["fmax"]["$glbnet$clk_i$TRELLIS_IO_IN"]["mhz"] == 71.3


def test_ecp5_configuration_is_named_in_the_flow():
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("synth_script", Path(__file__).parent.parent / "scripts" / "synth.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    assert m.CONFIGS["ecp5"] is m.ECP5 and (m.ECP5.pm, m.ECP5.pn, m.ECP5.max_k) == (4, 4, 3)
    assert "ecp5" not in m.SWEEP                  # placed and routed, and synthesised for Xilinx too

    # every configuration the flow synthesises is one the RTL elaborates (a
    # 256-bit bus at PN = 8 once stopped the whole sweep at its elaboration)
    for cfg in m.CONFIGS.values():
        cfg.rtl_buildable()


YOSYS_T_LOG = """[00000.001000] -- Executing script file `compute.xc7.ys' --
[00000.002000] 1. Executing RTLIL frontend.
[00002.002000] 2. Executing HIERARCHY pass (managing design hierarchy).
[00002.500000] 3. Executing SYNTH_XILINX pass.
[00002.600000] 3.1. Executing PROC pass (convert processes to netlists).
[00010.600000] 3.2. Executing OPT_CLEAN pass (remove unused cells and wires).
[00012.600000] 3.3. Executing MEMORY pass.
[00013.000000] 3.3.1. Executing MEMORY_SHARE pass (consolidating $memrd/$memwr cells).
[00313.000000] 3.4. Executing OPT_CLEAN pass (remove unused cells and wires).
[00314.000000] Removed 3 unused cells.
"""


def test_yosys_pass_times_name_the_slow_pass():
    t = sf.yosys_pass_times(YOSYS_T_LOG, top=3)
    assert list(t["by_pass"]) == ["MEMORY_SHARE", "PROC", "OPT_CLEAN"]
    assert t["by_pass"]["MEMORY_SHARE"] == 300.0 and t["by_pass"]["OPT_CLEAN"] == 3.0
    assert t["slowest_steps"][0] == {"step": "3.3.1", "pass": "MEMORY_SHARE", "seconds": 300.0}
    assert t["last_step"] == {"step": "3.4", "pass": "OPT_CLEAN", "seconds": 1.0}
    assert not t["complete"] and t["seconds"] == 314.0
    done = sf.yosys_pass_times(YOSYS_T_LOG + "[00315.000000] End of script. Logfile hash: 1, time: 315s\n")
    assert done["complete"] and done["last_step"]["seconds"] == 2.0
    assert sf.yosys_pass_times("no stamps\n")["last_step"] is None


def test_stat_json_with_yosys_time_stamps():
    """Under yosys -t the JSON that `tee -o` writes has a stamp on each line."""
    stamped = "\n".join(f"[00008.{i:06d}] {ln}" for i, ln in enumerate(STAT_JSON.splitlines()))
    assert sf.parse_stat_json(stamped) == sf.parse_stat_json(STAT_JSON)


OOC_LOG = """Info: Max frequency for clock 'clk_i': 60.00 MHz (FAIL at 125.00 MHz)

Info: Critical path report for clock 'clk_i' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source s1_x_q_TRELLIS_FF_Q.Q
Info:    routing  2.00  2.52 Net s1_x_q[3] (10,10) -> (12,12)
Info:                          Sink prod_MULT18X18D_P.A3
Info:                          Defined in:
Info:                               rtl/uz_compute.sv:640.7-640.13
Info:      logic  4.00  6.52 Source prod_MULT18X18D_P.P4
Info:    routing  1.00  7.52 Net prod[4] (12,12) -> (13,13)
Info:                          Sink prod_q_TRELLIS_FF_Q.M
Info:                          Defined in:
Info:                               rtl/uz_pe_array.sv:103.11-103.17
Info:      setup  0.10  7.62 Source prod_q_TRELLIS_FF_Q.M
Info: 4.62 ns logic, 3.00 ns routing

Info: Critical path report for cross-domain path '<async>' -> 'posedge clk_i':
Info:       type curr  total name
Info:     source  0.00  0.00 Source wgt_rd_data_i[7]
Info:    routing  3.00  3.00 Net wgt_rd_data_i[7] (0,0) -> (12,12)
Info:      logic  4.00  7.00 Source prod_MULT18X18D_P.P4
Info:    routing  1.00  8.00 Net prod[4] (12,12) -> (13,13)
Info:      setup  0.10  8.10 Source prod_q_TRELLIS_FF_Q.M
Info: 4.10 ns logic, 4.00 ns routing

Info: Critical path report for cross-domain path 'posedge clk_i' -> '<async>':
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source acc_q_TRELLIS_FF_Q.Q
Info:    routing  1.00  1.52 Net acc_q[0] (1,1) -> (0,0)
Info: 0.52 ns logic, 1.00 ns routing

Info: Max frequency for clock 'clk_i': 131.23 MHz (PASS at 125.00 MHz)
"""


def test_ooc_block_result_names_worst_and_port_paths():
    """Out of context the block's ports have no clock: the clock's critical
    path is the block's own, the cross-domain ones are its port paths."""
    r = sf.parse_nextpnr_log(OOC_LOG)
    assert list(r["critical_paths"]) == ["clk_i"]
    assert set(r["port_paths"]) == {"<async> -> posedge clk_i", "posedge clk_i -> <async>"}
    b = sf.ooc_block_result(r)
    assert b["mhz"] == 131.23 and b["clock"] == "clk_i"
    w = b["worst"]
    assert (w["total_ns"], w["logic_ns"], w["routing_ns"], w["logic_steps"]) == (7.62, 4.62, 3.0, 1)
    assert w["from"] == "s1_x_q_TRELLIS_FF_Q.Q" and w["to"] == "prod_q_TRELLIS_FF_Q.M"
    assert w["blocks"] == ["uz_compute", "uz_pe_array"]
    p = b["worst_port_path"]
    assert p["from"] == "wgt_rd_data_i[7]" and p["total_ns"] == 8.1
    md = "\n".join(sf.ooc_markdown({"compute": b, "top": {"skipped": "glue logic"},
                                   "post": {"error": "post: exit status 1\n  details"}}))
    assert "| compute | 131.2 | 7.62 |" in md
    assert "**top**: skipped: glue logic" in md and "**post**: failed: post: exit status 1" in md
    assert "rtl/uz_pe_array.sv:103.11-103.17" in md


def test_ooc_flow_commands():
    """The out-of-context script has no pin wrapper and nextpnr gets
    --out-of-context; glue blocks (black-boxed children) are not placed."""
    ys = sf.ecp5_ooc_script("compute.il")
    assert "read_rtlil compute.il" in ys and "read_verilog" not in ys and "-top blk" in ys
    assert "write_json compute.ooc.json" in ys and "compute.ooc.stat.json" in ys
    assert "\ncheck" not in ys
    ys = sf.ecp5_ooc_script("compute.il", "compute.ooc_wrap.v")
    assert "read_verilog compute.ooc_wrap.v" in ys and "-top uz_ooc_wrap" in ys
    argv = sf.ecp5_ooc_argv("compute.ecp5.json", 1, 125.0, "router2", "r.json")
    assert "--out-of-context" in argv and "--timing-allow-fail" in argv and "--textcfg" not in argv
    from pathlib import Path
    job = sf.ecp5_ooc_job("c", Path("/nonexistent"), sf.Block("layer", "m", True, "uz_top.u_layer"), 10, 1, 125.0)
    assert job.kind == "ecp5-ooc" and "glue" in job.run(print)["skipped"]


def test_port_reg_wrapper_registers_every_port():
    ports = [("clk_i", "input", 1), ("rst_ni", "input", 1), ("a_i", "input", 8), ("en_i", "input", 1),
             ("q_o", "output", 16)]
    v = sf.port_reg_wrapper(ports)
    assert v.startswith("module uz_ooc_wrap (input clk_i, input rst_ni, input [7:0] a_i, input en_i, "
                        "output reg [15:0] q_o);")
    assert "a_i_r <= a_i;" in v and "en_i_r <= en_i;" in v and "q_o <= q_o_w;" in v
    assert "blk u_blk (.clk_i(clk_i), .rst_ni(rst_ni), .a_i(a_i_r), .en_i(en_i_r), .q_o(q_o_w));" in v
    # a RAM has no reset, a combinational block no clock: not connected
    v = sf.port_reg_wrapper([("clk_i", "input", 1), ("a_i", "input", 2), ("q_o", "output", 1)])
    assert "blk u_blk (.clk_i(clk_i), .a_i(a_i_r), .q_o(q_o_w));" in v and "input rst_ni" in v
    v = sf.port_reg_wrapper([("a_i", "input", 2), ("q_o", "output", 1)])
    assert "blk u_blk (.a_i(a_i_r), .q_o(q_o_w));" in v
