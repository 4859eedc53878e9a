"""uz_util_pkg, the one definition of the engine's stride arithmetic: the
division step (uz_desc_check's output sizes and uz_post's pooled tile sizes
divide with it, a bit a cycle) carried through every 17-bit dividend at every
stride 1..4, the product by a stride for every 16-bit value at every
stride 0..7, and the division by a constant of every 17-bit value by the
engine's kinds of divisor (powers of two and not), against the testbench's own arithmetic: every value under
Verilator; under Icarus (about 40 times slower here) the lowest and the
highest 4096 of each range."""
import subprocess

import pytest

from tb import simenv

CHECK = """
module uz_util_pkg_tb;
  import uz_util_pkg::*;
  int errors;
  logic [16:0] q;
  logic [1:0]  rm;
  logic [2:0]  st;
  int d;
  // the divisors tried (Icarus 11 takes no unpacked array initialiser)
  function automatic int divisor(int i);
    case (i)
      0: return 1;   1: return 2;   2: return 3;   3: return 4;
      4: return 5;   5: return 6;   6: return 7;   7: return 12;
      8: return 16;  9: return 48;  10: return 108; default: return 255;
    endcase
  endfunction
  // the values tried: [0, Edge) and [2**n - Edge, 2**n), every value when Edge = 2**n / 2
  function automatic int next_value(int v, int n);
    return (v == EDGE - 1 && (1 << n) - EDGE > EDGE) ? (1 << n) - EDGE : v + 1;
  endfunction
  initial begin
    errors = 0;
    for (int s = 1; s <= 4; s++) begin
      for (int v = 0; v < (1 << 17); v = next_value(v, 17)) begin
        // as the engine runs it: a quotient bit a step, from the top
        q  = '0;
        rm = '0;
        for (int i = 16; i >= 0; i--) begin
          st = div_step(rm, 1'((v >> i) & 1), 3'(s));
          q  = (q << 1) | 17'(st >> 2);
          rm = 2'(st);
        end
        if (32'(q) != v / s || 32'(rm) != v % s) begin
          if (errors < 5) $display("MISMATCH %0d / %0d: %0d rem %0d", v, s, q, rm);
          errors++;
        end
      end
    end
    for (int s = 0; s < 8; s++) begin
      for (int v = 0; v < (1 << 16); v = next_value(v, 16)) begin
        if (mul_stride(32'(v), 3'(s)) != 32'(v * s)) begin
          if (errors < 10) $display("MISMATCH %0d * %0d: %0d", v, s, mul_stride(32'(v), 3'(s)));
          errors++;
        end
      end
    end
    // division by a constant (PM, PM / PN) of every 17-bit value
    for (int i = 0; i < 12; i++) begin
      d = divisor(i);
      for (int v = 0; v < (1 << 17); v = next_value(v, 17)) begin
        if (div_by_magic(32'(v), div_magic(d, 17), 17 + $clog2(d)) != 32'(v / d)) begin
          if (errors < 15) $display("MISMATCH %0d / %0d: %0d", v, d,
                                    div_by_magic(32'(v), div_magic(d, 17), 17 + $clog2(d)));
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
    edge = 4096 if sim == "icarus" else 1 << 16
    tb.write_text(f"`define EDGE {edge}\n" + CHECK.replace("EDGE", "`EDGE"))
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
def test_stride_arithmetic_exact(sim, tmp_path):
    assert _run(sim, (simenv.RTL / "uz_util_pkg.sv").read_text(), tmp_path) == 0


@pytest.mark.parametrize("wrong, right", [
    # a quotient bit taken one step too late (at a partial remainder of d + 1)
    ("ge = x >= d;", "ge = x > d;"),
    # the product forgets the stride's top bit
    ("(((st & 3'd4) != '0) ? v << 2 : 32'd0)", "32'd0"),
    # the reciprocal rounded down, not up
    ("+ 64'(d) - 64'd1) / 64'(d)", ") / 64'(d)"),
])
def test_stride_arithmetic_check_can_fail(wrong, right, tmp_path):
    text = (simenv.RTL / "uz_util_pkg.sv").read_text()
    assert wrong in text
    assert _run("icarus", text.replace(wrong, right), tmp_path) > 0


PROCS = """
module uz_mul_user (input logic [31:0] v, input logic [2:0] s, output logic [31:0] q);
  import uz_util_pkg::*;
  always_comb q = mul_stride(v, s);
endmodule
module uz_util_pkg_procs_tb;
  logic [31:0] v1, v2, q1, q2;
  logic [2:0]  s;
  uz_mul_user u1 (.v(v1), .s(s), .q(q1));
  uz_mul_user u2 (.v(v2), .s(s), .q(q2));
  initial begin
    s = 3'd3; v1 = 32'd100; v2 = 32'd200;
    #1 v1 = 32'd301;
    #1 $display("Q %0d %0d", q1, q2);
    $finish;
  end
endmodule
"""


def test_mul_stride_in_two_processes_settles(tmp_path):
    """Two always_comb processes calling mul_stride (uz_compute, uz_post and
    the loader all do) settle under Icarus 11: a bit select of a function
    variable there puts it into every caller's sensitivity, and the callers
    then retrigger each other forever at one time step."""
    pkg = tmp_path / "uz_util_pkg.sv"
    pkg.write_text((simenv.RTL / "uz_util_pkg.sv").read_text())
    tb = tmp_path / "procs_tb.sv"
    tb.write_text(PROCS)
    subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "tb.vvp"), str(pkg), str(tb)], check=True)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "tb.vvp")], capture_output=True, text=True, timeout=30)
    assert "Q 903 600" in out.stdout, out.stdout + out.stderr
