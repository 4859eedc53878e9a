// A shared multiplier for products that change once per layer or per tile
// (address bases, pitches, tile sizes): a_i * b_i modulo 2^32 on one 16 x 16
// multiplier (a single DSP), the low half of a_i in the first cycle, the high
// half in the second, when done_o pulses with the product; or, with TwoMul,
// on two (two DSPs), both halves in the second cycle from registered operands. Its user holds
// the operands from req_i until done_o and sequences its products through
// it, instead of a multiplier of its own per product.
//
//   cycle 0   req_i, in idle: a_i[15:0] * b_i is registered, and a_i[31:16]
//             and b_i (with TwoMul: a_i and b_i, no product)
//   cycle 1   done_o: p_o = that + (a_i[31:16] * b_i) * 2^16 (with TwoMul:
//             both halves' products of the registered operands, summed)
//
// clear_i drops a product under way (a new layer, an abort).
module uz_seq_mul #(
  // two multipliers: the product's operand selection ends at registers
  parameter bit TwoMul = 1'b0
) (
  input  logic        clk_i,
  input  logic        rst_ni,
  input  logic        clear_i,
  input  logic        req_i,
  input  logic [31:0] a_i,
  input  logic [15:0] b_i,
  output logic        done_o,
  output logic [31:0] p_o
);
  logic        hi_q;       // second cycle of a product

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      hi_q <= 1'b0;
    end else if (clear_i) begin
      hi_q <= 1'b0;
    end else begin
      hi_q <= !hi_q && req_i;
    end
  end
  assign done_o = hi_q;

  if (TwoMul) begin : gen_two
    // The operands are registered in the first cycle and both halves'
    // products formed from them in the second: the user's operand selection
    // ends at a register, the multipliers start at one. (One multiplier
    // shared by the two cycles leaves the operand selection, the multiplier
    // and the sum on one timed path, though the second cycle reads
    // registered operands.)
    logic [31:0] a_q;
    logic [15:0] b_q;
    logic [31:0] prod_lo;
    logic [15:0] prod_hi;  // a[31:16] * b mod 2^16
    // datapath: read only with hi_q
    always_ff @(posedge clk_i) begin
      if (!hi_q) begin
        a_q <= a_i;
        b_q <= b_i;
      end
    end
    assign prod_lo = 32'(a_q[15:0]) * 32'(b_q);
    assign prod_hi = 16'(32'(a_q[31:16]) * 32'(b_q));
    assign p_o     = {prod_lo[31:16] + prod_hi, prod_lo[15:0]};
  end else begin : gen_one
    // The second cycle's operands, registered in the first (they hold from
    // req_i to done_o anyway).
    logic [31:0] lo_q;     // a_i[15:0] * b_i
    logic [15:0] a_hi_q, b_q;
    logic [15:0] mul_a, mul_b;
    logic [31:0] prod;
    assign mul_a = hi_q ? a_hi_q : a_i[15:0];
    assign mul_b = hi_q ? b_q : b_i;
    assign prod  = 32'(mul_a) * 32'(mul_b);
    // datapath: read only with hi_q
    always_ff @(posedge clk_i) begin
      if (!hi_q) begin
        lo_q   <= prod;
        a_hi_q <= a_i[31:16];
        b_q    <= b_i;
      end
    end
    // the second product adds to the high half only
    assign p_o = {lo_q[31:16] + prod[15:0], lo_q[15:0]};
  end

  `include "uz_assert.svh"
`ifndef UZ_NO_ASSERT
  // the operands hold while a product is under way
  logic        sh_hi_q;
  logic [31:0] sh_a_q;
  logic [15:0] sh_b_q;
  always_ff @(posedge clk_i) begin
    sh_hi_q <= !hi_q && req_i && !clear_i;
    sh_a_q  <= a_i;
    sh_b_q  <= b_i;
  end
  `ASSERT(SeqMulOperandsHeld_A, !(sh_hi_q && hi_q) || (a_i == sh_a_q && b_i == sh_b_q), clk_i, rst_ni)
`endif
endmodule
