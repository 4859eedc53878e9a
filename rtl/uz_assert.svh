// uz assertion macros (after lowRISC prim_assert): one spelling for every
// module, concurrent where the simulator supports it. Icarus 11 rejects
// concurrent assertions, so there each check becomes an immediate assertion
// sampled on the clock edge (same meaning for the single-cycle properties
// used here). A failing assertion ends the simulation in both simulators
// (Verilator stops on $error; Icarus only prints it and goes on, so there it
// is $fatal), which fails the running cocotb test.
// Synthesis (SYNTHESIS defined, as Yosys and vendor tools do) and
// UZ_NO_ASSERT compile the assertions and elaboration checks out; every
// `ifndef UZ_NO_ASSERT block of checker logic goes with them.
`ifndef UZ_ASSERT_SVH
`define UZ_ASSERT_SVH

`ifdef SYNTHESIS
  `ifndef UZ_NO_ASSERT
    `define UZ_NO_ASSERT
  `endif
`endif

`ifdef UZ_NO_ASSERT
  `define ASSERT(name, prop, clk, rst_n)
  `define ASSERT_NEVER(name, prop, clk, rst_n)
  `define ASSERT_KNOWN(name, sig, clk, rst_n)
  `define ASSERT_INIT(name, prop)
`elsif __ICARUS__
  `define ASSERT(name, prop, clk, rst_n) \
    always @(posedge clk) if (rst_n) begin : name \
      if (!(prop)) $fatal(1, "assertion %s failed: %s", `"name`", `"prop`"); \
    end
  `define ASSERT_NEVER(name, prop, clk, rst_n) `ASSERT(name, !(prop), clk, rst_n)
  // Icarus 11's $isunknown answers 1 for any concatenation, known or not;
  // the reduction XOR is X exactly when some bit is X or Z.
  `define ASSERT_KNOWN(name, sig, clk, rst_n) `ASSERT(name, (^(sig) !== 1'bx), clk, rst_n)
  `define ASSERT_INIT(name, prop) \
    initial begin : name \
      if (!(prop)) $fatal(1, "elaboration check %s failed: %s", `"name`", `"prop`"); \
    end
`else
  `define ASSERT(name, prop, clk, rst_n) \
    name: assert property (@(posedge clk) disable iff (!(rst_n)) (prop)) \
      else $error("assertion %s failed: %s", `"name`", `"prop`");
  `define ASSERT_NEVER(name, prop, clk, rst_n) `ASSERT(name, !(prop), clk, rst_n)
  `define ASSERT_KNOWN(name, sig, clk, rst_n) `ASSERT(name, !$isunknown(sig), clk, rst_n)
  `define ASSERT_INIT(name, prop) \
    initial begin : name \
      if (!(prop)) $fatal(1, "elaboration check %s failed: %s", `"name`", `"prop`"); \
    end
`endif

`endif
