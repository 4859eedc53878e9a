// OVSF weights generator (docs/ovsf.md, golden/ovsf.py generate): rebuilds up
// to Blocks blocks of OvsfLen weights per cycle, each from its kept alphas.
//
//   w[i] = shift_round_sat(sum_k sign(i, code_k) * alpha_k, gen_shift, DataWidth)
//   sign(i, j) = +1 if popcount(i & j) is even, else -1
//
// code_k is the index of the k-th set bit of code_mask_i. The alphas are first
// spread to their codes (a[code_k] = alpha_k, a[j] = 0 for codes not kept);
// then w = H a, H the Sylvester Hadamard matrix, by a fast Walsh-Hadamard
// transform: log2 L levels of L/2 add/subtract butterflies per block, instead
// of L sums of L terms. No code table and no multiplier. The spreading is
// found once from the mask and shared by the Blocks blocks of a transfer.
//
// A transfer carries alpha_blocks_i (1..Blocks) blocks; the count travels
// with it to w_blocks_o, and blocks at or above it are don't-care.
//
// Pipeline (Latency = 3, one transfer per cycle without back-pressure):
//   stage 1  the alphas of the accepted transfer, spread to their codes
//   stage 2  the OvsfLen exact sums per block (SumWidth bits), the transform
//   stage 3  the weights, after one uz_shift_round_sat per lane
// Each stage moves when the next one is empty or moving, so bubbles collapse.
// The only combinational path between the streams is w_ready_i ->
// alpha_ready_o (an OR per stage).
//
// The layer constants (code_mask_i, n_codes_i, gen_shift_i) are taken with
// each accepted block and travel down the pipeline with it. They need only be
// stable while alpha_valid_i is high, so a new layer may follow the previous
// one without draining the pipeline.
`include "uz_assert.svh"

module uz_ovsf_gen #(
  parameter int OvsfLen    = 16,  // block and code length L: a power of two, 2..32
  parameter int AlphaWidth = 16,  // 8 or 16
  parameter int DataWidth  = 16,  // 8 or 16
  parameter int Blocks     = 1,   // blocks per transfer, >= 1
  // The gen_shift_i values the shifters cover (two's complement, Min <= Max):
  // by default those uz_desc_check admits, golden.isa.gen_shift_range. A
  // narrow range keeps each lane's barrel shift a few ways.
  parameter int GenShiftMin = uz_util_pkg::gen_shift_min(AlphaWidth, DataWidth),
  parameter int GenShiftMax = uz_util_pkg::gen_shift_max(OvsfLen),
  // log2 L: bits of a code index
  localparam int IdxWidth  = $clog2(OvsfLen),
  // 0..L: bits of n_codes_i
  localparam int CntWidth  = $clog2(OvsfLen + 1),
  // 0..Blocks: bits of a block count
  localparam int BlkWidth  = $clog2(Blocks + 1),
  // |sum| <= L * 2^(AlphaWidth-1); the extra bit holds +L * 2^(AlphaWidth-1)
  localparam int SumWidth  = AlphaWidth + IdxWidth + 1,
  // cycles from an accepted block to its weights on w_o (no back-pressure);
  // for the testbench and the integrator, the logic does not read it
  /* verilator lint_off UNUSEDPARAM */
  localparam int Latency   = 3
  /* verilator lint_on UNUSEDPARAM */
) (
  input  logic                            clk_i,
  // The ASSERT macros sample rst_ni synchronously (disable iff) while the
  // flops use it asynchronously: intended, hence the waiver.
  /* verilator lint_off SYNCASYNCNET */
  input  logic                            rst_ni,
  /* verilator lint_on SYNCASYNCNET */

  // Layer constants.
  input  logic [OvsfLen-1:0]              code_mask_i,  // bit j set: code j is kept
  input  logic [CntWidth-1:0]             n_codes_i,    // popcount(code_mask_i), 1..L
  input  logic [7:0]                      gen_shift_i,  // two's complement right shift, GenShiftMin..GenShiftMax

  // Blocks of alphas: alpha k (k < n_codes_i) of block b belongs to the k-th
  // set bit of the mask, at [(b*OvsfLen+k)*AlphaWidth +: AlphaWidth]. Lanes
  // k >= n_codes_i are ignored, and so are blocks b >= alpha_blocks_i.
  input  logic                                 alpha_valid_i,
  output logic                                 alpha_ready_o,
  input  logic [BlkWidth-1:0]                  alpha_blocks_i,
  input  logic [Blocks*OvsfLen*AlphaWidth-1:0] alpha_i,

  // Blocks of weights: weight i of block b at [(b*OvsfLen+i)*DataWidth +: DataWidth];
  // w_blocks_o of them are valid.
  output logic                                 w_valid_o,
  input  logic                                 w_ready_i,
  output logic [BlkWidth-1:0]                  w_blocks_o,
  output logic [Blocks*OvsfLen*DataWidth-1:0]  w_o
);

  //////////////////////////
  // Parameter checks     //
  //////////////////////////

  `ASSERT_INIT(OvsfLenLegal_A, OvsfLen >= 2 && OvsfLen <= 32 && (OvsfLen & (OvsfLen - 1)) == 0)
  `ASSERT_INIT(AlphaWidthLegal_A, AlphaWidth == 8 || AlphaWidth == 16)
  `ASSERT_INIT(DataWidthLegal_A, DataWidth == 8 || DataWidth == 16)
  `ASSERT_INIT(BlocksLegal_A, Blocks >= 1)
  `ASSERT_INIT(GenShiftRangeLegal_A, GenShiftMin <= GenShiftMax && GenShiftMin >= -128 && GenShiftMax <= 127)

  // The generator shift as uz_shift_round_sat's amount t =
  // clamp(shift + DataWidth, 0, SumWidth + DataWidth), which the range
  // bounds to TMin..TMax: passed PreDecoded as t - TMin, TWidth bits.
  localparam int ZWidth = SumWidth + DataWidth;
  localparam int TMin   = (GenShiftMin + DataWidth < 0) ? 0 :
                          (GenShiftMin + DataWidth > ZWidth) ? ZWidth : GenShiftMin + DataWidth;
  localparam int TMax   = (GenShiftMax + DataWidth < 0) ? 0 :
                          (GenShiftMax + DataWidth > ZWidth) ? ZWidth : GenShiftMax + DataWidth;
  localparam int TWidth = (TMax > TMin) ? $clog2(TMax - TMin + 1) : 1;
  // A shift outside the range (GenShiftInRange_A) acts as its nearer end.
  function automatic logic [TWidth-1:0] shift_t(logic [7:0] shift);
    logic signed [31:0] tw;
    tw = 32'($signed(shift)) + 32'(DataWidth);
    if (tw < 32'(TMin))         shift_t = '0;
    else if (tw > 32'(TMax))    shift_t = TWidth'(TMax - TMin);
    else                        shift_t = TWidth'(tw - 32'(TMin));
  endfunction

  //////////////////////////
  // Handshake            //
  //////////////////////////

  logic s1_valid_q, s2_valid_q, s3_valid_q;
  logic s1_ready, s2_ready, s3_ready;

  assign s3_ready      = !s3_valid_q || w_ready_i;
  assign s2_ready      = !s2_valid_q || s3_ready;
  assign s1_ready      = !s1_valid_q || s2_ready;
  assign alpha_ready_o = s1_ready;
  assign w_valid_o     = s3_valid_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      s1_valid_q <= 1'b0;
      s2_valid_q <= 1'b0;
      s3_valid_q <= 1'b0;
    end else begin
      // uz_loader never stalls the generator (w_ready_i = 1): the held
      // arms run in the block test only, so uz_top's coverage leaves them out
      /* verilator coverage_off */
      if (s1_ready) s1_valid_q <= alpha_valid_i;
      if (s2_ready) s2_valid_q <= s1_valid_q;
      if (s3_ready) s3_valid_q <= s2_valid_q;
      /* verilator coverage_on */
    end
  end

  //////////////////////////
  // Stage 1: spread      //
  //////////////////////////

  // a[b][j] at [(b*OvsfLen+j)*AlphaWidth +: AlphaWidth]
  logic [Blocks*OvsfLen*AlphaWidth-1:0] spread_d, spread_q;
  logic [TWidth-1:0]                    s1_t_q;   // the shift, decoded (shift_t)
  logic [BlkWidth-1:0]                  s1_blocks_q, s2_blocks_q, s3_blocks_q;

  for (genvar j = 0; j < OvsfLen; j++) begin : gen_code
    // A kept code j takes alpha number popcount(code_mask_i[j-1:0]).
    logic [CntWidth-1:0] rank;
    always_comb begin
      rank = '0;
      for (int i = 0; i < j; i++) rank = rank + CntWidth'(code_mask_i[i]);
    end
    for (genvar b = 0; b < Blocks; b++) begin : gen_blk
      always_comb begin
        spread_d[(b*OvsfLen + j)*AlphaWidth +: AlphaWidth] = '0;
        // the rank of a set bit is below j + 1: alphas above j never go here
        for (int k = 0; k <= j; k++) begin
          if (code_mask_i[j] && rank == CntWidth'(k))
            spread_d[(b*OvsfLen + j)*AlphaWidth +: AlphaWidth] = alpha_i[(b*OvsfLen + k)*AlphaWidth +: AlphaWidth];
        end
      end
    end
  end

  // Datapath flops carry no reset: they are only read along with a valid bit.
  // Stage 1's load whenever the stage may move, valid or not: alpha_valid_i,
  // the loader's late queue decision, enabled every spread flop (its longest
  // path). In the loader (w_ready_i = 1) they load every cycle.
  always_ff @(posedge clk_i) begin
    if (s1_ready) begin
      spread_q    <= spread_d;
      s1_t_q      <= shift_t(gen_shift_i);
      s1_blocks_q <= alpha_blocks_i;
    end
  end

  //////////////////////////
  // Stage 2: sums        //
  //////////////////////////

  // Sum (b, i) at index b*OvsfLen+i.
  logic [Blocks*OvsfLen-1:0][SumWidth-1:0] sum_d, sum_q;

  for (genvar b = 0; b < Blocks; b++) begin : gen_blk
    // Level 0: the spread alphas, sign-extended. Level l: butterflies of
    // distance 2^(l-1), v[x] = u[x] + u[x+h] and v[x+h] = u[x] - u[x+h].
    // Every node is a sum of +-alphas, so SumWidth never wraps; same-width
    // two's complement adds need no $signed once the leaves are extended.
    for (genvar l = 0; l <= IdxWidth; l++) begin : gen_lvl
      // Unpacked: one word per node keeps the Verilator model small.
      logic [SumWidth-1:0] node [OvsfLen];
      for (genvar x = 0; x < OvsfLen; x++) begin : gen_node
        if (l == 0) begin : gen_leaf
          assign node[x] = SumWidth'($signed(spread_q[(b*OvsfLen + x)*AlphaWidth +: AlphaWidth]));
        end else if ((((2 * x) >> l) & 1) == 0) begin : gen_add  // bit l-1 of x; no negative shift at l = 0
          assign node[x] = gen_lvl[l-1].node[x] + gen_lvl[l-1].node[x + (1 << (l - 1))];
        end else begin : gen_sub
          assign node[x] = gen_lvl[l-1].node[x - (1 << (l - 1))] - gen_lvl[l-1].node[x];
        end
      end
    end
    for (genvar i = 0; i < OvsfLen; i++) begin : gen_sum
      assign sum_d[b*OvsfLen + i] = gen_lvl[IdxWidth].node[i];
    end
  end

  always_ff @(posedge clk_i) begin
    if (s2_ready && s1_valid_q) begin
      sum_q       <= sum_d;
      s2_blocks_q <= s1_blocks_q;
    end
  end

  //////////////////////////
  // Stage 3: the shift   //
  //////////////////////////

  logic [Blocks*OvsfLen-1:0][DataWidth-1:0] w_d, w_q;

  // The shift reaches stage 3 decoded (PreDecoded: no clamp on the data
  // path), one copy per lane: a single register fanned out to every lane's
  // barrel shifter and saturation mask was the loader's longest path, nearly
  // all routing. keep stops Yosys merging the identical copies.
  for (genvar i = 0; i < Blocks * OvsfLen; i++) begin : gen_shift
    logic [TWidth-1:0] s2_t_q;
    (* keep *)
    always_ff @(posedge clk_i) begin
      if (s2_ready && s1_valid_q) s2_t_q <= s1_t_q;
    end
    uz_shift_round_sat #(
      .InWidth   (SumWidth),
      .OutWidth  (DataWidth),
      .ShiftWidth(TWidth),
      .PreDecoded(1'b1),
      .TMin      (TMin),
      .TMax      (TMax)
    ) u_shift_round_sat (
      .data_i (sum_q[i]),
      .shift_i(s2_t_q),
      .data_o (w_d[i])
    );
  end

  always_ff @(posedge clk_i) begin
    if (s3_ready && s2_valid_q) begin
      w_q         <= w_d;
      s3_blocks_q <= s2_blocks_q;
    end
  end

  assign w_o        = w_q;
  assign w_blocks_o = s3_blocks_q;

  //////////////////////////
  // Assertions           //
  //////////////////////////

  `ASSERT_KNOWN(AlphaValidKnown_A, alpha_valid_i, clk_i, rst_ni)
  `ASSERT_KNOWN(WReadyKnown_A, w_ready_i, clk_i, rst_ni)
  // n_codes_i is only checked here: it must agree with the mask.
  `ASSERT(NCodesMatchesMask_A, !alpha_valid_i ||
          (n_codes_i >= CntWidth'(1) && 32'(n_codes_i) == $countones(code_mask_i)), clk_i, rst_ni)
  `ASSERT(BlocksInRange_A, !alpha_valid_i ||
          (alpha_blocks_i >= BlkWidth'(1) && 32'(alpha_blocks_i) <= Blocks), clk_i, rst_ni)
  // The shifters cover GenShiftMin..GenShiftMax only (uz_desc_check
  // rejects other layers).
  `ASSERT(GenShiftInRange_A, !(alpha_valid_i && alpha_ready_o) ||
          (32'($signed(gen_shift_i)) >= GenShiftMin && 32'($signed(gen_shift_i)) <= GenShiftMax),
          clk_i, rst_ni)

`ifndef UZ_NO_ASSERT
  // Each lane's decoded shift is that of the transfer in stage 2 (the raw
  // shift followed down the pipeline here), wherever stage 3 takes it.
  logic [7:0] sh_s1_shift_q, sh_s2_shift_q;
  always_ff @(posedge clk_i) begin
    if (s1_ready)               sh_s1_shift_q <= gen_shift_i;
    if (s2_ready && s1_valid_q) sh_s2_shift_q <= sh_s1_shift_q;
  end
  for (genvar i = 0; i < Blocks * OvsfLen; i++) begin : gen_shift_chk
    `ASSERT(GenShiftCurrent_A, !s2_valid_q || gen_shift[i].s2_t_q == shift_t(sh_s2_shift_q), clk_i, rst_ni)
  end
`endif

endmodule
