// uz assertion macros (after lowRISC prim_assert): one spelling for every
// module, concurrent where the simulator supports it. Icarus 11 rejects
// concurrent assertions, so there each check becomes an immediate assertion
// sampled on the clock edge (same meaning for the single-cycle properties
// used here). Define UZ_NO_ASSERT to compile them out.
`ifndef UZ_ASSERT_SVH
`define UZ_ASSERT_SVH

`ifdef UZ_NO_ASSERT
  `define ASSERT(name, prop, clk, rst_n)
  `define ASSERT_NEVER(name, prop, clk, rst_n)
  `define ASSERT_KNOWN(name, sig, clk, rst_n)
  `define ASSERT_INIT(name, prop)
`elsif __ICARUS__
  `define ASSERT(name, prop, clk, rst_n) \
    always @(posedge clk) if (rst_n) begin : name \
      if (!(prop)) $error("assertion %s failed: %s", `"name`", `"prop`"); \
    end
  `define ASSERT_NEVER(name, prop, clk, rst_n) `ASSERT(name, !(prop), clk, rst_n)
  `define ASSERT_KNOWN(name, sig, clk, rst_n) `ASSERT(name, !$isunknown(sig), clk, rst_n)
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
