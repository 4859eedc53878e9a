// PE array: PM processing elements, each the dot product of the PN lane
// activations with its own PN weights (docs/architecture.md). Exact signed
// arithmetic: products are 2*DataWidth bits, the sums SumWidth bits, so no
// value can wrap.
//
// Fully pipelined, no back-pressure: one input per cycle, every input leaves
// exactly Latency cycles later, in order, with its tag.
//   stage 0      the PM*PN products (lanes disabled by in_lane_en_i give 0)
//   stages 1..S  the adder tree, a register after every two levels and after
//                the last one: S = ceil(log2(PN) / 2)
// Latency = 1 + S, e.g. 3 for PN = 16 or 8, 2 for PN = 4 or 2, 1 for PN = 1.
// A PN that is not a power of two is padded with zero leaves.
`include "uz_assert.svh"

module uz_pe_array #(
  parameter int PM        = 16,  // PEs (output channels in parallel)
  parameter int PN        = 16,  // lanes per PE (reduction width)
  parameter int DataWidth = 16,  // activations and weights, two's complement
  parameter int TagWidth  = 8,   // sideband carried along with each input
  // Adder tree levels and register stages after the products.
  localparam int Levels    = $clog2(PN),
  localparam int Stages    = (Levels + 1) / 2,
  // Registers from in_valid_i to out_valid_o: the product stage plus Stages.
  // For the testbench and the integrator, the logic does not read it.
  /* verilator lint_off UNUSEDPARAM */
  localparam int Latency   = 1 + Stages,
  /* verilator lint_on UNUSEDPARAM */
  localparam int ProdWidth = 2 * DataWidth,
  // |sum| <= PN * 2^(2*DataWidth-2), which this holds with a bit to spare.
  localparam int SumWidth  = ProdWidth + Levels
) (
  input  logic                          clk_i,
  // The ASSERT macros sample rst_ni synchronously (disable iff) while the
  // flops use it asynchronously: intended, hence the waiver.
  /* verilator lint_off SYNCASYNCNET */
  input  logic                          rst_ni,
  /* verilator lint_on SYNCASYNCNET */

  // PE p's activation and weight for lane j at [(p*PN+j)*DataWidth +:
  // DataWidth]. Activations are per PE: a dense layer gives every PE the same
  // window taps, a depthwise one gives PE p its own channel's.
  input  logic                          in_valid_i,
  input  logic [PM*PN*DataWidth-1:0]    in_x_i,
  input  logic [PM*PN*DataWidth-1:0]    in_w_i,
  input  logic [PN-1:0]                 in_lane_en_i,  // 0: the lane adds 0
  input  logic [TagWidth-1:0]           in_tag_i,

  // PE p's sum at [p*SumWidth +: SumWidth], two's complement.
  output logic                          out_valid_o,
  output logic [PM*SumWidth-1:0]        out_sum_o,
  output logic [TagWidth-1:0]           out_tag_o
);

  //////////////////////////
  // Parameter checks     //
  //////////////////////////

  `ASSERT_INIT(PmLegal_A, PM >= 1)
  `ASSERT_INIT(PnLegal_A, PN >= 1)
  `ASSERT_INIT(DataWidthLegal_A, DataWidth == 8 || DataWidth == 16)
  `ASSERT_INIT(TagWidthLegal_A, TagWidth >= 1)

  localparam int NPad = 1 << Levels;  // leaves, PN rounded up to a power of two

  //////////////////////////
  // Valid and tag        //
  //////////////////////////

  // valid_q[s] / tag_q[s]: the input in register stage s (0 = products).
  logic [Stages:0]               valid_q;
  logic [Stages:0][TagWidth-1:0] tag_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      valid_q <= '0;
    end else begin
      valid_q[0] <= in_valid_i;
      for (int s = 1; s <= Stages; s++) valid_q[s] <= valid_q[s-1];
    end
  end

  // Tag and datapath flops carry no reset: they are only read along with a
  // valid bit, and load only with one (no toggling on idle cycles).
  always_ff @(posedge clk_i) begin
    if (in_valid_i) tag_q[0] <= in_tag_i;
    for (int s = 1; s <= Stages; s++) begin
      if (valid_q[s-1]) tag_q[s] <= tag_q[s-1];
    end
  end

  assign out_valid_o = valid_q[Stages];
  assign out_tag_o   = tag_q[Stages];

  //////////////////////////
  // PEs                  //
  //////////////////////////

  for (genvar p = 0; p < PM; p++) begin : gen_pe
    // Level 0: the products. Level l: pairwise sums of level l-1, registered
    // when l is even or the root. All nodes are SumWidth bits, so the
    // same-width two's complement adds need no $signed.
    for (genvar l = 0; l <= Levels; l++) begin : gen_lvl
      // Unpacked: one word per node keeps the Verilator model small.
      logic [SumWidth-1:0] node [NPad >> l];
      if (l == 0) begin : gen_mul
        logic [ProdWidth-1:0] prod_q [PN];
        always_ff @(posedge clk_i) begin
          if (in_valid_i) begin
            for (int j = 0; j < PN; j++) begin
              // Sign-extended to ProdWidth, the product is exact (no wrap).
              prod_q[j] <= !in_lane_en_i[j] ? '0 :
                  ProdWidth'($signed(in_x_i[(p*PN+j)*DataWidth +: DataWidth])) *
                  ProdWidth'($signed(in_w_i[(p*PN+j)*DataWidth +: DataWidth]));
            end
          end
        end
        for (genvar j = 0; j < NPad; j++) begin : gen_leaf
          if (j < PN) begin : gen_lane
            assign node[j] = SumWidth'($signed(prod_q[j]));
          end else begin : gen_pad
            assign node[j] = '0;
          end
        end
      end else if (l % 2 == 0 || l == Levels) begin : gen_reg
        // Level l sits in stage ceil(l/2), loaded with the input of stage - 1.
        always_ff @(posedge clk_i) begin
          if (valid_q[(l+1)/2-1]) begin
            for (int n = 0; n < (NPad >> l); n++) begin
              node[n] <= gen_lvl[l-1].node[2*n] + gen_lvl[l-1].node[2*n+1];
            end
          end
        end
      end else begin : gen_comb
        for (genvar n = 0; n < (NPad >> l); n++) begin : gen_node
          assign node[n] = gen_lvl[l-1].node[2*n] + gen_lvl[l-1].node[2*n+1];
        end
      end
    end
    assign out_sum_o[p*SumWidth +: SumWidth] = gen_lvl[Levels].node[0];
  end

  //////////////////////////
  // Assertions           //
  //////////////////////////

  `ASSERT_KNOWN(InValidKnown_A, in_valid_i, clk_i, rst_ni)
  `ASSERT_KNOWN(OutValidKnown_A, out_valid_o, clk_i, rst_ni)

endmodule
