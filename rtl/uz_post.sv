// Write-back of one layer: for each output tile whose accumulators are
// complete (and whose residual is loaded), for each channel group of PN (the
// layout's; an accumulator word holds PM / PN of them) and output row, one
// write command (one a group when the tile holds whole rows; where each
// accumulator word is written once, each row as soon as the compute has
// finished it, see "early rows"); for each output pixel the max over its pool window
// (1x1 without a pool) of clip(shift_round_sat(ReLU(acc'), data_shift)),
// acc' = add_sat(acc, align_to_acc(residual, res_shift)) with a residual and
// acc without — the order of docs/arithmetic.md; the clip (ReLU6) bounds a value to [0, clip_hi] and,
// being monotone, commutes with the max pool as the ReLU does.
// Window positions outside the convolution plane never win. An average pool
// (POOL layers) sums the window's accumulators (the input values) and divides
// by the cells counted (golden.arith.avg_divide: round half up, by long
// division), then applies ReLU and the clip.
module uz_post
  import uz_isa_pkg::*;
  import uz_util_pkg::*;
#(
  parameter int PM           = 16,
  parameter int PN           = 16,
  parameter int DataWidth    = 16,
  parameter int AccWidth     = 48,
  parameter int AxiDataWidth = 128,
  parameter int OutBufWords  = 2048,
  parameter int BeatsWidth   = 24,
  localparam int OutAw = $clog2(OutBufWords),
  // the residual buffer holds PN-channel words: PM / PN per accumulator word
  localparam int ResHalfAw = $clog2(OutBufWords * (PM / PN))
) (
  input  logic                      clk_i,
  input  logic                      rst_ni,
  input  logic                      start_i,
  input  logic                      abort_i,
  // layer constants: the geometry (a uz_util_pkg::uz_layer_geom_t; the pool
  // window among it), then the pool's arithmetic and the quantisation
  input  logic [uz_util_pkg::LayerGeomBits-1:0] geom_i,
  input  logic                      pool_avg_i,    // POOL: average (else maximum)
  input  logic                      pool_incl_pad_i, // average: padded cells count in the divisor
  input  logic                      relu_i,
  input  logic [7:0]                data_shift_i,
  input  logic                      clip_i,
  input  logic [DataWidth-1:0]      clip_hi_i,     // clip_hi, <= the largest data value (uz_desc_check)
  input  logic                      res_i,         // add the residual (CONV/FC)
  input  logic [7:0]                res_shift_i,   // its alignment onto the accumulator (signed)
  input  logic [1:0]                res_full_i,    // the residual half of a tile is loaded
  output logic [ResHalfAw-1:0]      res_rd_addr_o, // residual word (PN channels) in its half,
  input  logic [PN*DataWidth-1:0]   res_rd_data_i, // read with the accumulator word
  input  logic [31:0]               out_addr_i,
  // accumulator hand-off and read port
  input  logic [1:0]                out_full_i,
  output logic [1:0]                out_release_o,
  // uz_compute out_rows_o: rows of each half whose accumulators are final
  input  logic [31:0]               out_rows_i,
  output logic                      acc_rd_en_o,
  output logic                      acc_half_o,
  output logic [OutAw-1:0]          acc_rd_addr_o,
  input  logic [PM*AccWidth-1:0]    acc_rd_data_i,
  // write DMA
  output logic                      wr_cmd_valid_o,
  input  logic                      wr_cmd_ready_i,
  output logic [31:0]               wr_cmd_addr_o,
  output logic [BeatsWidth-1:0]     wr_cmd_beats_o,
  output logic                      wr_data_valid_o,
  input  logic                      wr_data_ready_i,
  output logic [AxiDataWidth-1:0]   wr_data_o,
  output logic                      busy_o
);
  localparam int WordWidth = PN * DataWidth;   // one output pixel of a channel group
  localparam int WordBeats = WordWidth / AxiDataWidth;
  localparam int WordBytes = WordWidth / 8;
  localparam int LogPN     = $clog2(PN);
  // Channel groups of PN per accumulator word of PM: the write-back's lanes
  // are PN (a pixel word of the layout), so it takes an accumulator word
  // PM / PN times, one group's slice at a time.
  localparam int Ratio     = PM / PN;
  localparam int SubW      = (Ratio > 1) ? $clog2(Ratio) : 1;

  `include "uz_assert.svh"
  `ASSERT_INIT(PmMultipleOfPn_A, PM % PN == 0 && Ratio >= 1)

  // The layer's geometry, one struct from uz_layer (a plain vector on the
  // port: Icarus 11). Each block reads only part of it.
  /* verilator lint_off UNUSEDSIGNAL */
  uz_layer_geom_t g;
  /* verilator lint_on UNUSEDSIGNAL */
  assign g = geom_i;

  // ------------------------------------------------------------ tiles
  logic        it_next, it_valid;
  logic [15:0] o0, r0, c0, no, nr, nc;
  // The write-back walks output tiles only: the ti outputs go unused.
  /* verilator lint_off UNUSEDSIGNAL */
  logic        it_first_ti, it_last_ti, it_last;
  logic [15:0] i0, ni;
  /* verilator lint_on UNUSEDSIGNAL */
  uz_tile_iter #(.OuterOnly(1'b1)) u_iter (
    .clk_i, .rst_ni, .start_i, .next_i(it_next), .chan_follow_i(g.pool_kind),
    .cout_i(g.cout_pad), .cin_i(g.cin_pad), .rows_i(g.conv_h), .cols_i(g.conv_w),
    .to_i(g.to), .ti_i(g.ti), .tr_i(g.tr), .tc_i(g.tc),
    .valid_o(it_valid), .o0_o(o0), .r0_o(r0), .c0_o(c0), .i0_o(i0),
    .no_o(no), .nr_o(nr), .nc_o(nc), .ni_o(ni),
    .first_ti_o(it_first_ti), .last_ti_o(it_last_ti), .last_o(it_last)
  );

  // Pool geometry; no pool is a 1x1 window of stride 1.
  logic [15:0] pkh, pkw;
  logic [1:0]  ps;
  logic [3:0]  ppt, ppl;
  logic        avg;
  assign pkh = g.pool_en ? g.pool_kh : 16'd1;
  assign pkw = g.pool_en ? g.pool_kw : 16'd1;
  assign ps  = g.pool_en ? g.pool_s : 2'd1;
  assign ppt = g.pool_en ? g.pool_pt : 4'd0;
  assign ppl = g.pool_en ? g.pool_pl : 4'd0;
  assign avg = g.pool_en && pool_avg_i;

  typedef enum logic [2:0] {PoIdle, PoPlan, PoWait, PoRowCmd, PoPix, PoDrain, PoTileEnd} po_state_e;
  po_state_e   state_q, state_d;

  // Accumulator words of ps rows (ps <= 3: shift and add), registered: the
  // inputs are stable while the layer runs.
  localparam int OutAwW = (OutAw > 0) ? OutAw : 1;
  logic [OutAwW-1:0] lc_ps_tc_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) lc_ps_tc_q <= '0;
    else         lc_ps_tc_q <= OutAwW'((ps[0] ? 32'(g.tc) : 32'd0) + (ps[1] ? 32'(g.tc) << 1 : 32'd0));
  end

  // Output rows/cols of this tile, [lo, end): tiles split only pools with
  // pk == ps and no padding, on stride multiples (golden.isa.check), so a
  // tile's pooled rows are its band's row / ps onwards. No division per tile:
  // the layer's tr / ps and tc / ps come from a serial division at its start
  // (uz_util_pkg::div_step, a quotient bit a cycle), and each tile's bounds
  // step from the last tile's in the iterator's order (c0, then r0, then
  // o0): a tile at c0 = 0 starts a band (at r0 = 0 a new channel tile).
  // lo in PoPlan, the cycle after the iterator moves; end in PoWait once the
  // division is done (valid from the tile's go until PoTileEnd).
  logic [15:0] pr_lo_q, pr_end_q, pc_lo_q, pc_end_q;
  logic [15:0] tr_p, tc_p;                 // tr / ps, tc / ps (for a split pool)
  logic [15:0] dq_r_q, dq_c_q;             // dividends, quotient bits shifting in
  logic [1:0]  rm_r_q, rm_c_q;             // their remainders
  logic [4:0]  pdiv_cnt_q;                 // division steps left
  logic        pdiv_done_q, bounds_q;      // tr_p, tc_p valid; this tile's ends valid
  logic        last_band_q, last_col_q;    // the tile reaches the last conv row, col
  logic        qb_r, qb_c;
  logic [1:0]  rn_r, rn_c;
  assign {qb_r, rn_r} = div_step(rm_r_q, dq_r_q[15], {1'b0, ps});
  assign {qb_c, rn_c} = div_step(rm_c_q, dq_c_q[15], {1'b0, ps});
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      dq_r_q <= '0; dq_c_q <= '0; rm_r_q <= '0; rm_c_q <= '0; pdiv_cnt_q <= '0; pdiv_done_q <= 1'b0;
    end else if (start_i) begin
      dq_r_q <= g.tr; dq_c_q <= g.tc; rm_r_q <= '0; rm_c_q <= '0;
      pdiv_cnt_q <= 5'd16; pdiv_done_q <= 1'b0;
    end else if (pdiv_cnt_q != '0) begin
      dq_r_q <= {dq_r_q[14:0], qb_r}; rm_r_q <= rn_r;
      dq_c_q <= {dq_c_q[14:0], qb_c}; rm_c_q <= rn_c;
      pdiv_cnt_q  <= pdiv_cnt_q - 5'd1;
      pdiv_done_q <= pdiv_cnt_q == 5'd1;
    end
  end
  assign tr_p = dq_r_q;
  assign tc_p = dq_c_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      pr_lo_q <= '0; pr_end_q <= '0; pc_lo_q <= '0; pc_end_q <= '0;
      last_band_q <= 1'b0; last_col_q <= 1'b0; bounds_q <= 1'b0;
    end else if (state_q == PoPlan) begin
      pc_lo_q     <= (c0 == '0) ? '0 : pc_lo_q + tc_p;
      pr_lo_q     <= (c0 != '0) ? pr_lo_q : (r0 == '0) ? '0 : pr_lo_q + tr_p;
      last_band_q <= ({1'b0, r0} + {1'b0, nr}) == {1'b0, g.conv_h};
      last_col_q  <= ({1'b0, c0} + {1'b0, nc}) == {1'b0, g.conv_w};
      bounds_q    <= 1'b0;
    end else if (state_q == PoWait && pdiv_done_q) begin
      pr_end_q <= last_band_q ? g.out_h : pr_lo_q + tr_p;
      pc_end_q <= last_col_q ? g.out_w : pc_lo_q + tc_p;
      bounds_q <= 1'b1;
    end
  end
  logic        hp_q;                       // accumulator half being written back
  logic [15:0] q_q, pr_q, pc_q;
  logic [15:0] dy_q, dx_q;

  // ------------------------------------------------ window position read

  // ------------------------------------------ products, on one multiplier
  // The layer's output plane and average window (once a layer), then each
  // tile's first channel group, its first output row's word and its first
  // accumulator row, one after another on a shared multiplier in PoWait,
  // before the tile may start: a few cycles, while the compute still fills
  // the tile. They keep multiplies out of the address paths.
  typedef enum logic [2:0] {MpPlane, MpCells, MpGroup, MpRow, MpAccRow, MpRows, MpDone} mp_step_e;
  mp_step_e          mp_q;
  logic              mul_req, mul_done;
  logic [31:0]       mul_a, mul_p;
  logic [15:0]       mul_b;
  logic [31:0]       lc_out_plane_q;   // words of an output plane
  // cells of the pool window (an average's divisor: uz_desc_check bounds it
  // to AVG_N_MAX, so only its low bits are read)
  /* verilator lint_off UNUSEDSIGNAL */
  logic [31:0]       win_cells_q;
  /* verilator lint_on UNUSEDSIGNAL */
  logic [31:0]       grp_off_q;        // words of the tile's first channel group
  logic [31:0]       pr_row_q;         // words of its first output row in a plane
  logic [OutAwW-1:0] a_row_start_q;    // accumulator word of its first window row
  logic [31:0]       rows_words_q;     // words of its output rows (whole rows: one command a group)
  // MpRows needs the tile's row bounds (bounds_q)
  assign mul_req = (state_q == PoWait) && it_valid && (mp_q != MpDone) && (mp_q != MpRows || bounds_q);
  // The first window row's operand, registered: its shift-add and two
  // subtracts ahead of the multiplier made the block's longest path (18.3 ns
  // on ECP5). pr_lo_q and r0 are set in PoPlan; MpAccRow comes at least
  // four cycles into PoWait (MulOperandCurrent_A).
  logic [31:0] acc_row_a_d, acc_row_a_q;
  assign acc_row_a_d = mul_stride(32'(pr_lo_q), {1'b0, ps}) - 32'(ppt) - 32'(r0);
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) acc_row_a_q <= '0;
    else         acc_row_a_q <= acc_row_a_d;
  end
  always_comb begin
    mul_a = '0;
    mul_b = '0;
    unique case (mp_q)
      MpPlane:  begin mul_a = 32'(g.out_h);      mul_b = g.out_w; end
      MpCells:  begin mul_a = 32'(pkh);          mul_b = pkw; end
      MpGroup:  begin mul_a = lc_out_plane_q;    mul_b = 16'(o0 >> LogPN); end
      MpRow:    begin mul_a = 32'(pr_lo_q);      mul_b = g.out_w; end
      // the first window row relative to the tile (negative in the padding):
      // the product wraps as the address does
      MpAccRow: begin mul_a = acc_row_a_q;      mul_b = g.tc; end
      MpRows:   begin mul_a = 32'(pr_end_q - pr_lo_q); mul_b = g.out_w; end
      default: ;
    endcase
  end
  uz_seq_mul u_mul (
    .clk_i, .rst_ni, .clear_i(abort_i || start_i), .req_i(mul_req), .a_i(mul_a), .b_i(mul_b),
    .done_o(mul_done), .p_o(mul_p)
  );
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      mp_q <= MpPlane;
      lc_out_plane_q <= '0; win_cells_q <= '0; grp_off_q <= '0; pr_row_q <= '0; a_row_start_q <= '0;
      rows_words_q <= '0;
    end else if (abort_i || start_i) begin
      mp_q <= MpPlane;
    end else if (state_q == PoTileEnd) begin
      mp_q <= MpGroup;                 // the layer's products stay
    end else if (mul_done) begin
      unique case (mp_q)
        MpPlane:  begin lc_out_plane_q <= mul_p;         mp_q <= MpCells; end
        MpCells:  begin win_cells_q    <= mul_p;         mp_q <= MpGroup; end
        MpGroup:  begin grp_off_q      <= mul_p;         mp_q <= MpRow; end
        MpRow:    begin pr_row_q       <= mul_p;         mp_q <= MpAccRow; end
        MpAccRow: begin a_row_start_q  <= OutAwW'(mul_p); mp_q <= MpRows; end
        MpRows:   begin rows_words_q   <= mul_p;          mp_q <= MpDone; end
        default: ;
      endcase
    end
  end
  // The position read, (cy, cx) = (pr * ps - ppt + dy, pc * ps - ppl + dx),
  // kept in registers stepped with the walk, as the accumulator address is:
  // the products and sums were on the read enable's path, the engine's
  // longest on ECP5 (PosCurrent_A holds them to the formula). The tile's
  // first corner comes from pr_lo_q and pc_lo_q, set in PoPlan, long before
  // the go (mp_q reaches MpDone first).
  logic signed [19:0] cy_lo_q, cx_lo_q;     // the tile's first window's corner
  logic signed [19:0] cy_pix_q, cx_pix_q;   // the pixel's window's corner
  logic signed [19:0] cy_q, cx_q;           // the position read
  logic signed [19:0] cy, cx;               // the same, for the testbench's shift probe
  logic               pos_valid;
  assign cy = cy_q;
  assign cx = cx_q;
  always_ff @(posedge clk_i) begin
    cy_lo_q <= $signed(20'(mul_stride(32'(pr_lo_q), {1'b0, ps}))) - $signed({16'b0, ppt});
    cx_lo_q <= $signed(20'(mul_stride(32'(pc_lo_q), {1'b0, ps}))) - $signed({16'b0, ppl});
  end
  assign pos_valid = (cy >= 0) && (cy < $signed({4'b0, g.conv_h})) &&
                     (cx >= 0) && (cx < $signed({4'b0, g.conv_w}));
  // The walk's last positions, compared with registered bounds: the
  // subtracts were on the read-enable and counter-enable paths. The bounds
  // change only with the layer (pkh, pkw), as the iterator moves (no) or
  // before the tile's go (pr_end_q, pc_end_q: in PoWait, bounds_q); the walk
  // reads them in PoPix only, at least two cycles after the go, so one cycle
  // of lag is never seen (LoopBoundsCurrent_A).
  logic [15:0] pkh_m1_q, pkw_m1_q, pc_end_m1_q, pr_end_m1_q, nq_m1_q;
  // the tile's channels the output holds (the last oc-group of PM may pass
  // out_c rounded up to PN: those groups are computed, never written)
  logic [15:0] no_wr;
  assign no_wr = chans_held(o0, no, g.cout_wr);
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      pkh_m1_q <= '0; pkw_m1_q <= '0; pc_end_m1_q <= '0; pr_end_m1_q <= '0; nq_m1_q <= '0;
    end else begin
      pkh_m1_q    <= pkh - 16'd1;
      pkw_m1_q    <= pkw - 16'd1;
      pc_end_m1_q <= pc_end_q - 16'd1;
      pr_end_m1_q <= pr_end_q - 16'd1;
      nq_m1_q     <= (no_wr >> LogPN) - 16'd1;
    end
  end
  logic dx_last;
  assign dx_last = (dx_q == pkw_m1_q);
  wire win_last = (dy_q == pkh_m1_q) && dx_last;
  wire pc_last  = (pc_q == pc_end_m1_q);
  wire pr_last  = (pr_q == pr_end_m1_q);
  wire q_last   = (q_q == nq_m1_q);

  logic pix_stall;    // the finished pixel cannot be handed to the serializer
  logic walk_go;      // the walk steps: no pixel stall, and its row is final (early rows)
  logic merged_q, row_wait;
  // Pixel queue entries: a pixel may be in each of stages 2 to 4 when the
  // next window's last word is read, and one is being sent (six; a power
  // of two for the pointers).
  localparam int PixQueue = 8;
  localparam int CntW     = $clog2(PixQueue + 1);
  localparam int PtrW     = $clog2(PixQueue);
  logic [CntW-1:0] cnt_q;  // pixels in the queue before the serializer
  logic pix_in;       // a finished pixel enters the queue this cycle
  logic pix_out;      // the serializer sends a pixel's last beat
  logic rd_fire;
  assign rd_fire = (state_q == PoPix) && walk_go;

  // The word of (q, cy, cx): q * tr * tc + (cy - r0) * tc + (cx - c0), kept
  // as a row part and a column part stepped with the window (a position in
  // the padding has a wrapped address and is not read).
  logic [OutAwW-1:0] a_qrow_q, a_prow_q, a_row_q;   // row part of the group, the pixel, the window row
  logic [OutAwW-1:0] a_col0_q, a_pcol_q, a_col_q;   // column part of the tile, the pixel, the position
  assign acc_rd_en_o   = rd_fire && pos_valid;
  assign acc_half_o    = hp_q;
  assign acc_rd_addr_o = OutAw'(a_row_q + a_col_q);
  // The residual word of (q, pixel) is q * tr * tc + pixel: the accumulator
  // word's (q / Ratio) * tr * tc + pixel plus res_off_q, which gains tr * tc
  // at each group step that stays in the same accumulator word.
  logic [ResHalfAw-1:0] res_off_q;
  assign res_rd_addr_o = ResHalfAw'(acc_rd_addr_o) + res_off_q;

  // Stage 2: the words arrive from the RAMs and are registered as they
  // leave. Stage 2a: the residual's alignment. Stage 2b: the residual add
  // and its saturation. Stage 3: ReLU, the shared data shift, the clip.
  // Stage 4: running max. The RAM's read, the alignment and the add in one
  // stage were the engine's longest path on ECP5 (19.0 ns, 5.9 of them the
  // block RAM's output); before that the chain from the read data to the
  // running max was one stage, then stage 3's shift, rounding, saturation,
  // clip and max (30.5 ns).
  logic                    s2_valid_q, s2_first_q, s2_last_q, s2_pos_valid_q;
  logic                    s2a_valid_q, s2a_first_q, s2a_last_q, s2a_pos_valid_q;
  logic                    s2b_valid_q, s2b_first_q, s2b_last_q, s2b_pos_valid_q;
  logic                    s3_valid_q, s3_first_q, s3_last_q, s3_pos_valid_q;
  logic                    s4_valid_q, s4_first_q, s4_last_q, s4_pos_valid_q;
  logic [PN*AccWidth-1:0]  s3_acc_q;               // s2b_relu, registered
  logic [WordWidth-1:0]    s3_val, s3_clip, s4_clip_q, max_q, max_next;
  logic [WordWidth-1:0]    s2_res;                 // the residual word as read
  logic [WordWidth-1:0]    s2a_res_q;              // registered
  logic [PN*AccWidth-1:0]  s2a_conv_q, s2b_conv_q; // the accumulators read, registered
  logic [PN*AccWidth-1:0]  s2a_res_al;             // the residual aligned (0 without one)
  logic [PN*AccWidth-1:0]  s2b_res_al_q;           // registered
  logic [PN*AccWidth-1:0]  s2b_acc;                // accumulator after the residual add
  logic [PN*AccWidth-1:0]  s2b_relu;               // and after ReLU (not before an average)
  assign s2_res = res_rd_data_i;
  // the group's slice of the accumulator word read (q mod PM / PN)
  logic [SubW-1:0]         sub_q, s2_sub_q;
  logic [PN*AccWidth-1:0]  s2_conv;
  assign s2_conv = acc_rd_data_i[32'(s2_sub_q) * (PN*AccWidth) +: PN*AccWidth];

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      s2_valid_q <= 1'b0; s2_first_q <= 1'b0; s2_last_q <= 1'b0; s2_pos_valid_q <= 1'b0; s2_sub_q <= '0;
      s2a_valid_q <= 1'b0; s2a_first_q <= 1'b0; s2a_last_q <= 1'b0; s2a_pos_valid_q <= 1'b0;
      s2b_valid_q <= 1'b0; s2b_first_q <= 1'b0; s2b_last_q <= 1'b0; s2b_pos_valid_q <= 1'b0;
      s3_valid_q <= 1'b0; s3_first_q <= 1'b0; s3_last_q <= 1'b0; s3_pos_valid_q <= 1'b0;
      s4_valid_q <= 1'b0; s4_first_q <= 1'b0; s4_last_q <= 1'b0; s4_pos_valid_q <= 1'b0;
    end else begin
      s2_valid_q     <= rd_fire && !abort_i;
      s2_first_q     <= (dy_q == '0) && (dx_q == '0);
      s2_sub_q       <= sub_q;
      s2_last_q      <= win_last;
      s2_pos_valid_q <= pos_valid;
      s2a_valid_q     <= s2_valid_q && !abort_i;
      s2a_first_q     <= s2_first_q;
      s2a_last_q      <= s2_last_q;
      s2a_pos_valid_q <= s2_pos_valid_q;
      s2b_valid_q     <= s2a_valid_q && !abort_i;
      s2b_first_q     <= s2a_first_q;
      s2b_last_q      <= s2a_last_q;
      s2b_pos_valid_q <= s2a_pos_valid_q;
      s3_valid_q      <= s2b_valid_q && !abort_i;
      s3_first_q      <= s2b_first_q;
      s3_last_q       <= s2b_last_q;
      s3_pos_valid_q  <= s2b_pos_valid_q;
      s4_valid_q     <= s3_valid_q && !abort_i;
      s4_first_q     <= s3_first_q;
      s4_last_q      <= s3_last_q;
      s4_pos_valid_q <= s3_pos_valid_q;
    end
  end
  // a word still on its way to the pixel queue or the divider
  logic pipe_busy;
  assign pipe_busy = s2_valid_q || s2a_valid_q || s2b_valid_q || s3_valid_q || s4_valid_q;
  always_ff @(posedge clk_i) begin
    if (s2_valid_q) begin
      s2a_conv_q <= s2_conv;
      s2a_res_q  <= s2_res;
    end
    if (s2a_valid_q) begin
      s2b_conv_q   <= s2a_conv_q;
      s2b_res_al_q <= s2a_res_al;
    end
    if (s2b_valid_q) s3_acc_q <= s2b_relu;
    if (s3_valid_q) s4_clip_q <= s3_clip;
  end

  // The layer's shifts, decoded once (uz_shift_round_sat's t = clamp(shift +
  // OutWidth, 0, InWidth + OutWidth); both shifts here have InWidth +
  // OutWidth = AccWidth + DataWidth) and registered: the barrel shifters'
  // selects and saturation masks come from flip-flops. They change only
  // with the layer; the stages read them several cycles after the start
  // (ShiftDecodeCurrent_A).
  localparam int ShZw = AccWidth + DataWidth;
  localparam int ShTw = $clog2(ShZw + 1);
  /* verilator lint_off UNUSEDSIGNAL */
  logic [31:0]        res_t_dec, data_t_dec;   // whole, then narrowed (Icarus 11 casts no call)
  /* verilator lint_on UNUSEDSIGNAL */
  logic [ShTw-1:0]    res_t_d, data_t_d, res_t_q, data_t_q;
  assign res_t_dec  = uz_util_pkg::shift_decode(32'($signed(res_shift_i)), AccWidth, ShZw);
  assign data_t_dec = uz_util_pkg::shift_decode(32'($signed(data_shift_i)), DataWidth, ShZw);
  assign res_t_d    = ShTw'(res_t_dec);
  assign data_t_d   = ShTw'(data_t_dec);
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      res_t_q <= '0; data_t_q <= '0;
    end else begin
      res_t_q <= res_t_d; data_t_q <= data_t_d;
    end
  end

  // ------------------------------------------------- average pool
  // Window sums, the divisor, and a divider per lane (golden.arith.avg_divide):
  // y = round_half_up(S / n) = floor((2S + n) / (2n)), by restoring long
  // division in radix 4, two digits a cycle, with the divisor's multiples
  // d, 2d, 3d (d = 2n) shared by the PN lanes: no multiplier.
  // A negative numerator N divides as -floor((d - 1 - N) / d), so the
  // quotient u stays unsigned; |y| <= 2**(DataWidth-1) needs DataWidth
  // quotient bits, and the partial remainder stays below d.
  localparam int AvgNBits = 12;                           // arith.AVG_N_MAX = 2**12 cells
  localparam int SumW     = DataWidth + AvgNBits + 1;     // |S| <= n * 2**(DataWidth-1)
  localparam int NW       = AvgNBits + 1;                 // n <= 2**12
  localparam int DvW      = NW + 1;                       // d = 2n
  localparam int NumW     = SumW + 2;                     // 2S + n, and d - 1 - (2S + n)
  localparam int QBits    = DataWidth;                    // quotient digits: QBits / 2
  localparam int DivCycles = QBits / 4;                   // two radix-4 digits a cycle
  localparam int DvCntW   = $clog2(DivCycles + 1);
  `ASSERT_INIT(AvgQuotientWholeCycles_A, (QBits % 4) == 0)
  logic [PN*SumW-1:0] sum_q, sum_next;
  logic [NW-1:0]      ncell_q, ncell_next;                // real cells so far
  assign ncell_next = (s3_first_q ? '0 : ncell_q) + NW'(s3_pos_valid_q);

  // DvIdle: takes a finished window (its sum and divisor); DvStart: the
  // numerators and the divisor's multiples; DvDiv: DivCycles cycles of
  // digits; DvOut: the quotients wait for room in the pixel queue.
  typedef enum logic [1:0] {DvIdle, DvStart, DvDiv, DvOut} dv_state_e;
  dv_state_e            dv_q, dv_d;
  logic [PN*SumW-1:0]   dv_sum_q;
  logic [NW-1:0]        dv_n_q;
  logic [DvW+1:0]       dv_d1_q, dv_d2_q, dv_d3_q;        // d, 2d, 3d
  logic [DvCntW-1:0]    dv_cnt_q;
  logic                 dv_in, dv_push;
  logic [NW-1:0]        dv_n_in;                          // the divisor of the pixel coming in
  logic [WordWidth-1:0] dv_y;
  assign dv_in   = avg && s3_valid_q && s3_last_q;
  // uz_desc_check bounds an average window to AVG_N_MAX cells
  assign dv_n_in = pool_incl_pad_i ? NW'(win_cells_q) : ncell_next;
  assign dv_push = (dv_q == DvOut) && ((cnt_q != CntW'(PixQueue)) || pix_out);

  always_comb begin
    dv_d = dv_q;
    unique case (dv_q)
      DvIdle:  if (dv_in) dv_d = DvStart;
      DvStart: dv_d = DvDiv;
      DvDiv:   if (dv_cnt_q == DvCntW'(1)) dv_d = DvOut;
      DvOut:   if (dv_push) dv_d = DvIdle;
      // unreachable: every encoding of the state is an arm above
      /* verilator coverage_off */
      default: dv_d = DvIdle;
      /* verilator coverage_on */
    endcase
    if (abort_i || start_i) dv_d = DvIdle;
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      dv_q <= DvIdle; dv_n_q <= '0; dv_cnt_q <= '0; ncell_q <= '0;
      dv_d1_q <= '0; dv_d2_q <= '0; dv_d3_q <= '0;
    end else begin
      dv_q <= dv_d;
      if (!(abort_i || start_i)) begin
        if (s3_valid_q) ncell_q <= ncell_next;
        if (dv_q == DvIdle && dv_in) dv_n_q <= dv_n_in;
        if (dv_q == DvStart) begin
          dv_d1_q  <= (DvW+2)'({dv_n_q, 1'b0});
          dv_d2_q  <= (DvW+2)'({dv_n_q, 2'b0});
          dv_d3_q  <= (DvW+2)'({dv_n_q, 2'b0}) + (DvW+2)'({dv_n_q, 1'b0});
          dv_cnt_q <= DvCntW'(DivCycles);
        end else if (dv_q == DvDiv) begin
          dv_cnt_q <= dv_cnt_q - 1'b1;
        end
      end
    end
  end
  always_ff @(posedge clk_i) begin
    if (s3_valid_q) sum_q <= sum_next;
    if (dv_in && dv_q == DvIdle) dv_sum_q <= sum_next;
  end

  for (genvar p = 0; p < PN; p++) begin : gen_avg
    logic signed [SumW-1:0] cell_val;
    logic signed [NumW-1:0] num;
    logic [NumW-1:0]        a;           // the unsigned dividend
    logic [DvW-1:0]         rem_q;       // partial remainder, < d
    logic [QBits-1:0]       low_q;       // dividend bits still to use, quotient bits behind them
    logic                   neg_q;
    logic [DvW-1:0]         rem_d;
    logic [QBits-1:0]       low_d;
    logic [DataWidth-1:0]   avg_val, avg_r;
    // the accumulator of a POOL layer holds an input value: its low bits
    assign cell_val = s3_pos_valid_q ? $signed(s3_acc_q[p*AccWidth +: SumW]) : '0;
    assign sum_next[p*SumW +: SumW] = (s3_first_q ? '0 : sum_q[p*SumW +: SumW]) + cell_val;
    // N = 2S + n; a = N, or d - 1 - N for a negative N (then y = -(a / d))
    logic signed [NumW-1:0] sum_ext;
    assign sum_ext = NumW'($signed(dv_sum_q[p*SumW +: SumW]));
    assign num = (sum_ext <<< 1) + $signed({{(NumW-NW){1'b0}}, dv_n_q});
    assign a   = num[NumW-1] ? NumW'({dv_n_q, 1'b0}) - NumW'(1) - NumW'(num) : NumW'(num);
    // two radix-4 digits: each takes the largest of 3d, 2d, d not above
    // the shifted remainder
    always_comb begin
      logic [DvW+2:0] r, t1, t2, t3;
      rem_d = rem_q;
      low_d = low_q;
      for (int i = 0; i < 2; i++) begin
        r  = {1'b0, rem_d, low_d[QBits-1 -: 2]};
        t3 = r - {1'b0, dv_d3_q};
        t2 = r - {1'b0, dv_d2_q};
        t1 = r - {1'b0, dv_d1_q};
        low_d = {low_d[QBits-3:0], 2'b00};
        if (!t3[DvW+2])      begin rem_d = DvW'(t3); low_d[1:0] = 2'd3; end
        else if (!t2[DvW+2]) begin rem_d = DvW'(t2); low_d[1:0] = 2'd2; end
        else if (!t1[DvW+2]) begin rem_d = DvW'(t1); low_d[1:0] = 2'd1; end
        else                       rem_d = DvW'(r);
      end
    end
    always_ff @(posedge clk_i) begin
      if (dv_q == DvStart) begin
        // a < d * 2**QBits: its high part is already below d
        rem_q <= DvW'(a >> QBits);
        low_q <= a[QBits-1:0];
        neg_q <= num[NumW-1];
      end else if (dv_q == DvDiv) begin
        rem_q <= rem_d;
        low_q <= low_d;
      end
    end
    assign avg_val = neg_q ? DataWidth'(-low_q) : DataWidth'(low_q);
    // then ReLU and the clip, as after a maximum
    assign avg_r = (relu_i && avg_val[DataWidth-1]) ? '0 : avg_val;
    always_comb begin
      if (!clip_i)                  dv_y[p*DataWidth +: DataWidth] = avg_r;
      else if (avg_r[DataWidth-1])  dv_y[p*DataWidth +: DataWidth] = '0;
      else if (avg_r > clip_hi_i)   dv_y[p*DataWidth +: DataWidth] = clip_hi_i;
      else                          dv_y[p*DataWidth +: DataWidth] = avg_r;
    end
  end

  for (genvar p = 0; p < PN; p++) begin : gen_lane
    // residual: align_to_acc (shift_round_sat onto the accumulator's fl),
    // then add_sat at the accumulator's width (golden.arith)
    logic [AccWidth-1:0] res_al;
    uz_shift_round_sat #(.InWidth(DataWidth), .OutWidth(AccWidth), .ShiftWidth(ShTw), .PreDecoded(1'b1))
        u_res_align (
      .data_i(s2a_res_q[p*DataWidth +: DataWidth]), .shift_i(res_t_q), .data_o(res_al)
    );
    logic [AccWidth-1:0] res_op;
    logic [AccWidth:0]   sum;
    assign s2a_res_al[p*AccWidth +: AccWidth] = res_i ? res_al : '0;
    assign res_op = s2b_res_al_q[p*AccWidth +: AccWidth];
    // one bit wider: the sum's top two bits differ exactly when it overflows
    assign sum = {s2b_conv_q[p*AccWidth + AccWidth-1], s2b_conv_q[p*AccWidth +: AccWidth]} +
                 {res_op[AccWidth-1], res_op};
    assign s2b_acc[p*AccWidth +: AccWidth] =
        (sum[AccWidth] == sum[AccWidth-1]) ? sum[AccWidth-1:0]
                                           : {sum[AccWidth], {(AccWidth-1){!sum[AccWidth]}}};
    // ReLU at the end of stage 2b, so that stage 3 starts its shift from a
    // register (ReLU's layer-wide enable ahead of the shift, clip and max,
    // fanning out to every bit, was the block's longest path, 13.5 ns, most
    // of it routing). An average takes its cells as they are and applies
    // ReLU after the division.
    assign s2b_relu[p*AccWidth +: AccWidth] = (relu_i && !avg && s2b_acc[p*AccWidth + AccWidth-1]) ? '0 :
                                              s2b_acc[p*AccWidth +: AccWidth];
    logic [AccWidth-1:0] relu_acc;
    assign relu_acc = s3_acc_q[p*AccWidth +: AccWidth];
    uz_shift_round_sat #(.InWidth(AccWidth), .OutWidth(DataWidth), .ShiftWidth(ShTw), .PreDecoded(1'b1))
        u_data_shift (
      .data_i(relu_acc), .shift_i(data_t_q), .data_o(s3_val[p*DataWidth +: DataWidth])
    );
    // clip: y = min(max(y, 0), clip_hi) (golden.arith.clip). Its compare
    // with clip_hi is made from the shift's own terms (uz_shift_round_sat: w
    // = z >> t, the round bit, the saturation test; the same cells, merged
    // in synthesis), beside the rounding add instead of after it: for y >= 0,
    // y > clip_hi iff the shift saturates, or w >= 0 and w + rbit > clip_hi.
    // Rounding add, saturation and compare in a row were the block's
    // longest path (16.1 ns on ECP5).
    localparam int DsZw = AccWidth + DataWidth;
    logic signed [DsZw:0]  ds_z;
    /* verilator lint_off UNUSEDSIGNAL */
    logic signed [DsZw:0]  ds_w;     // its low DataWidth + 1 bits: w and the round bit
    /* verilator lint_on UNUSEDSIGNAL */
    logic [DsZw-1:0]       ds_mask;
    logic [DataWidth-1:0]  ds_wv;
    logic                  ds_fits, ds_gt;
    assign ds_z    = {relu_acc, {DataWidth{1'b0}}, 1'b0};
    assign ds_w    = ds_z >>> data_t_q;
    assign ds_wv   = ds_w[DataWidth:1];
    assign ds_mask = ({DsZw{1'b1}} << (DataWidth - 1)) << data_t_q;
    assign ds_fits = ((ds_z[DsZw:1] ^ {DsZw{relu_acc[AccWidth-1]}}) & ds_mask) == '0;
    assign ds_gt   = !ds_fits || (!ds_wv[DataWidth-1] && (ds_w[0] ? (ds_wv >= clip_hi_i) : (ds_wv > clip_hi_i)));
    always_comb begin
      logic signed [DataWidth-1:0] v;
      v = $signed(s3_val[p*DataWidth +: DataWidth]);
      if (!clip_i)                       s3_clip[p*DataWidth +: DataWidth] = v;
      else if (v < 0)                    s3_clip[p*DataWidth +: DataWidth] = '0;
      else if (ds_gt)                    s3_clip[p*DataWidth +: DataWidth] = clip_hi_i;
      else                               s3_clip[p*DataWidth +: DataWidth] = v;
    end
    always_comb begin
      logic signed [DataWidth-1:0] cur, best;
      cur  = $signed(s4_clip_q[p*DataWidth +: DataWidth]);
      best = $signed(max_q[p*DataWidth +: DataWidth]);
      if (!s4_pos_valid_q)         max_next[p*DataWidth +: DataWidth] = s4_first_q ? {1'b1, {(DataWidth-1){1'b0}}} : best;
      else if (s4_first_q || cur > best) max_next[p*DataWidth +: DataWidth] = cur;
      else                         max_next[p*DataWidth +: DataWidth] = best;
    end
  end

  always_ff @(posedge clk_i) begin
    if (s4_valid_q) max_q <= max_next;
  end

  // ------------------------------------------------------ serializer
  // A pixel queue (PixQueue entries) in front of the beat serializer keeps
  // window reads in flight while earlier pixels are sent.
  logic [WordWidth-1:0]    fifo_q [PixQueue];
  logic [PtrW-1:0]         rd_ptr_q, wr_ptr_q;
  logic [$clog2(WordBeats+1)-1:0] beat_q;
  logic                    s2_pix;     // stage 2 holds a window's last word: a pixel in five cycles
  logic                    s2a_pix;    // stage 2a holds one: a pixel in four cycles
  logic                    s2b_pix;    // stage 2b holds one: a pixel in three cycles
  logic                    s3_pix;     // stage 3 holds one: a pixel in two cycles (not for an average)
  assign s2_pix  = s2_valid_q && s2_last_q;
  assign s2a_pix = s2a_valid_q && s2a_last_q;
  assign s2b_pix = s2b_valid_q && s2b_last_q;
  assign s3_pix  = !avg && s3_valid_q && s3_last_q;
  assign pix_in  = avg ? dv_push : (s4_valid_q && s4_last_q);
  assign pix_out = (cnt_q != '0) && wr_data_ready_i && (32'(beat_q) == WordBeats - 1);
  // The word of a window's last position becomes a pixel five cycles later
  // (an average's window sum four cycles later) and cannot wait there: read
  // it only when the queue (the divider, for an average) will have room.
  // occ_q counts the queue's places taken: the pixels in it and those in
  // stages 2 to 4 (a register, not the sum of the stages' flags, which with
  // the pixel leaving now was the block's longest path, from the write
  // port's ready to every counter's enable). A pixel leaving this cycle
  // frees its place a cycle late. The divider will be idle in four cycles
  // when it is idle now with nothing coming in, or hands its pixel over
  // now, and stages 2 to 2b hold none.
  // The divider's hand-over is judged without the write port's ready (a
  // pixel leaving the full queue this cycle): that ready came from uz_axi_wr
  // through the queue, the stall and the read enable to the accumulator
  // RAM, the engine's longest path on ECP5. A full queue stalls a cycle more.
  logic [CntW-1:0] occ_q;
  logic            dv_push_early;   // dv_push, not counting a pixel leaving now
  assign dv_push_early = (dv_q == DvOut) && (cnt_q != CntW'(PixQueue));
  assign pix_stall = win_last && (avg ? !(((dv_q == DvIdle && !dv_in) || dv_push_early) &&
                                           !s2_pix && !s2a_pix && !s2b_pix)
                                      : (occ_q >= CntW'(PixQueue)));

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      cnt_q <= '0; occ_q <= '0; rd_ptr_q <= '0; wr_ptr_q <= '0; beat_q <= '0;
    end else if (abort_i || start_i) begin
      cnt_q <= '0; occ_q <= '0; rd_ptr_q <= '0; wr_ptr_q <= '0; beat_q <= '0;
    end else begin
      occ_q <= occ_q + CntW'(rd_fire && win_last && !avg) - CntW'(pix_out && !avg);
      if ((cnt_q != '0) && wr_data_ready_i) beat_q <= pix_out ? '0 : beat_q + 1'b1;
      if (pix_in)  wr_ptr_q <= wr_ptr_q + 1'b1;
      if (pix_out) rd_ptr_q <= rd_ptr_q + 1'b1;
      cnt_q <= cnt_q + CntW'(pix_in) - CntW'(pix_out);
    end
  end
  always_ff @(posedge clk_i) begin
    if (pix_in) fifo_q[wr_ptr_q] <= avg ? dv_y : max_next;
  end
  `ASSERT(PixelQueueNoOverflow_A, !(pix_in && !pix_out && cnt_q == CntW'(PixQueue)), clk_i, rst_ni)
  assign wr_data_valid_o = (cnt_q != '0);
  assign wr_data_o       = fifo_q[rd_ptr_q][32'(beat_q) * AxiDataWidth +: AxiDataWidth];

  // ------------------------------------------------------ early rows
  // Where each accumulator word is written once (one pass: a depthwise
  // layer with PM = PN, or a layer of one ci-group, no sub-windows) and no
  // pool joins rows, a row may be sent as soon as the compute has written
  // it for good (out_rows_i), not when the whole output tile is done: the
  // write-back then trails the compute by a row instead of a tile. The
  // compute counts rows in its order, (ci-group, row): a depthwise
  // ci-group is this walk's channel group q, so the walk counts rows the
  // same way (row_lin_q); a one-group layer completes a row of every q at
  // once (row_in_q, the row within q).
  logic        early_q;
  logic [15:0] row_lin_q, row_in_q, rows_done;
  logic        row_ok;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) early_q <= 1'b0;
    else         early_q <= !g.pool_en && !g.pool_kind && (g.ksub == 3'd1) &&
                            (g.dw ? (Ratio == 1) : (g.cin_pad == 16'(PN)));
  end
  assign rows_done = out_rows_i[32'(hp_q) * 16 +: 16];
  assign row_ok    = out_full_i[hp_q] || (early_q && ((g.dw ? row_lin_q : row_in_q) < rows_done));
  // A tile of whole output rows writes each group's rows with one command
  // (they are contiguous): no command, and no wait for it, between rows. A
  // row's first read then waits for the row itself (row_wait).
  assign row_wait = (pc_q == pc_lo_q) && (dy_q == '0) && (dx_q == '0) && !row_ok;
  assign walk_go  = !pix_stall && !row_wait;

  // ------------------------------------------------------------- FSM
  // Write commands: one per (group, row), the address stepped by a row and
  // by a plane from the tile's first, set up as the tile starts.
  logic [31:0] wc_addr_q, wc_grp_addr_q;
  logic [31:0] out_row_bytes, out_plane_bytes;
  assign out_row_bytes   = 32'(g.out_w) * WordBytes;
  assign out_plane_bytes = lc_out_plane_q * WordBytes;
  assign wr_cmd_valid_o = (state_q == PoRowCmd) && row_ok;
  assign wr_cmd_addr_o  = wc_addr_q;
  assign wr_cmd_beats_o = merged_q ? BeatsWidth'(rows_words_q * WordBeats)
                                   : BeatsWidth'(32'(pc_end_q - pc_lo_q) * WordBeats);

  // The tile's first words, as it starts (from the products above).
  // The write address and the first column's word are registered as well
  // (three adds each): their inputs settle in PoPlan (pc_lo_q, c0) and with
  // MpRow's product (pr_row_q), at least two cycles before the tile may
  // start (TileStartCurrent_A).
  logic              tile_go;
  logic [31:0]       wc_start, wc_start_d;
  logic [OutAwW-1:0] a_row_start, a_col_start, a_col_start_d;
  assign tile_go       = (state_q == PoWait) && it_valid && (mp_q == MpDone) && bounds_q &&
                         (out_full_i[hp_q] || early_q) && (!res_i || res_full_i[hp_q]);
  // The half goes back once its output tile is done (at once without
  // early rows: the tile started with it done).
  logic tile_end_go;
  assign tile_end_go   = (state_q == PoTileEnd) && out_full_i[hp_q];
  assign wc_start_d    = out_addr_i + (grp_off_q + pr_row_q + 32'(pc_lo_q)) * WordBytes;
  assign a_col_start_d = OutAwW'(mul_stride(32'(pc_lo_q), {1'b0, ps}) - 32'(ppl) - 32'(c0));
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      wc_start <= '0; a_col_start <= '0;
    end else begin
      wc_start <= wc_start_d; a_col_start <= a_col_start_d;
    end
  end
  assign a_row_start = a_row_start_q;

  always_comb begin
    state_d = state_q;
    unique case (state_q)
      PoIdle: ;
      // the iterator's tile reaches the bound registers
      PoPlan: state_d = PoWait;
      PoWait: begin
        if (!it_valid) begin
          if (cnt_q == '0 && dv_q == DvIdle && !pipe_busy) state_d = PoIdle;
        end else if (tile_go) begin
          // A tile may hold only convolution rows or columns the pool's
          // floor rule drops: nothing to write, hand the half back.
          if (pr_lo_q >= pr_end_q || pc_lo_q >= pc_end_q) state_d = PoTileEnd;
          else                                            state_d = PoRowCmd;
        end
      end
      PoRowCmd: if (wr_cmd_ready_i && row_ok) state_d = PoPix;
      PoPix: begin
        if (walk_go && win_last && pc_last) begin
          if (!pr_last && merged_q)    ;    // the next row of the same command
          else if (!pr_last || !q_last) state_d = PoRowCmd;
          else                     state_d = PoDrain;
        end
      end
      // the last word read is still in stage 2: let it land before the
      // half goes back to the compute
      PoDrain:   state_d = PoTileEnd;
      PoTileEnd: if (tile_end_go) state_d = PoPlan;
      // unreachable: every encoding of the state is an arm above
      /* verilator coverage_off */
      default:   state_d = PoIdle;
      /* verilator coverage_on */
    endcase
    if (start_i)      state_d = PoPlan;
    else if (abort_i) state_d = PoIdle;
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q <= PoIdle;
      hp_q <= 1'b0;
      q_q <= '0; pr_q <= '0; pc_q <= '0; dy_q <= '0; dx_q <= '0;
      cy_q <= '0; cx_q <= '0; cy_pix_q <= '0; cx_pix_q <= '0;
      wc_addr_q <= '0; wc_grp_addr_q <= '0;
      a_qrow_q <= '0; a_prow_q <= '0; a_row_q <= '0; a_col0_q <= '0; a_pcol_q <= '0; a_col_q <= '0;
      sub_q <= '0; res_off_q <= '0;
    end else begin
      state_q <= state_d;
      if (abort_i || start_i) begin
        hp_q <= 1'b0;
        q_q <= '0; pr_q <= '0; pc_q <= '0; dy_q <= '0; dx_q <= '0;
      end else if (tile_go) begin
        q_q  <= '0;
        sub_q <= '0; res_off_q <= '0;
        pr_q <= pr_lo_q;
        pc_q <= pc_lo_q;
        dy_q <= '0; dx_q <= '0;
        cy_q <= cy_lo_q; cx_q <= cx_lo_q; cy_pix_q <= cy_lo_q; cx_pix_q <= cx_lo_q;
        wc_addr_q <= wc_start; wc_grp_addr_q <= wc_start;
        a_qrow_q <= a_row_start; a_prow_q <= a_row_start; a_row_q <= a_row_start;
        a_col0_q <= a_col_start; a_pcol_q <= a_col_start; a_col_q <= a_col_start;
      end else if (state_q == PoPix && walk_go) begin
        if (!win_last) begin
          if (dx_last) begin
            dx_q    <= '0;
            dy_q    <= dy_q + 1'b1;
            cx_q    <= cx_pix_q;
            cy_q    <= cy_q + 20'sd1;
            a_row_q <= a_row_q + OutAwW'(g.tc);
            a_col_q <= a_pcol_q;
          end else begin
            dx_q    <= dx_q + 1'b1;
            cx_q    <= cx_q + 20'sd1;
            a_col_q <= a_col_q + 1'b1;
          end
        end else begin
          dy_q <= '0; dx_q <= '0;
          if (!pc_last) begin
            pc_q     <= pc_q + 1'b1;
            cx_pix_q <= cx_pix_q + $signed({18'b0, ps});
            cx_q     <= cx_pix_q + $signed({18'b0, ps});
            cy_q     <= cy_pix_q;
            a_row_q  <= a_prow_q;
            a_pcol_q <= a_pcol_q + OutAwW'(ps);
            a_col_q  <= a_pcol_q + OutAwW'(ps);
          end else begin
            pc_q     <= pc_lo_q;
            cx_pix_q <= cx_lo_q;
            cx_q     <= cx_lo_q;
            a_pcol_q <= a_col0_q;
            a_col_q  <= a_col0_q;
            if (!pr_last) begin
              cy_pix_q  <= cy_pix_q + $signed({18'b0, ps});
              cy_q      <= cy_pix_q + $signed({18'b0, ps});
              pr_q      <= pr_q + 1'b1;
              a_prow_q  <= a_prow_q + lc_ps_tc_q;
              a_row_q   <= a_prow_q + lc_ps_tc_q;
              wc_addr_q <= wc_addr_q + out_row_bytes;
            end else begin
              pr_q     <= pr_lo_q;
              cy_pix_q <= cy_lo_q;
              cy_q     <= cy_lo_q;
              if (!q_last) begin
                q_q           <= q_q + 1'b1;
                if (32'(sub_q) == Ratio - 1) begin
                  // the next accumulator word
                  sub_q    <= '0;
                  a_qrow_q <= a_qrow_q + OutAwW'(g.trtc);
                  a_prow_q <= a_qrow_q + OutAwW'(g.trtc);
                  a_row_q  <= a_qrow_q + OutAwW'(g.trtc);
                end else begin
                  // the next slice of the same word
                  sub_q     <= sub_q + 1'b1;
                  a_prow_q  <= a_qrow_q;
                  a_row_q   <= a_qrow_q;
                  res_off_q <= res_off_q + ResHalfAw'(g.trtc);
                end
                wc_grp_addr_q <= wc_grp_addr_q + out_plane_bytes;
                wc_addr_q     <= wc_grp_addr_q + out_plane_bytes;
              end
            end
          end
        end
      end else if (tile_end_go) begin
        hp_q <= !hp_q;
      end
    end
  end
  assign it_next = tile_end_go;
  always_comb begin
    out_release_o = '0;
    if (tile_end_go) out_release_o[hp_q] = 1'b1;
  end
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni)      merged_q <= 1'b0;
    else if (tile_go) merged_q <= (pc_lo_q == '0) && (pc_end_q == g.out_w);
  end
  // the walk's rows, counted as the compute counts them (see early_q)
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      row_lin_q <= '0; row_in_q <= '0;
    end else if (tile_go) begin
      row_lin_q <= '0; row_in_q <= '0;
    end else if (state_q == PoPix && walk_go && win_last && pc_last) begin
      row_lin_q <= row_lin_q + 1'b1;
      row_in_q  <= pr_last ? '0 : row_in_q + 1'b1;
    end
  end
  assign busy_o = (state_q != PoIdle) || (cnt_q != '0) || (dv_q != DvIdle) || pipe_busy;

  // ---------------------------------------------------------------------------
  // Assertions (tests/testplan.md, "RTL assertions"): legal state, the write
  // command and data streams held until taken (only an abort or a new layer
  // withdraws them), the pixel queue never underflows.
  // ---------------------------------------------------------------------------
`ifndef UZ_NO_ASSERT
  logic                    sh_cmd_stall_q, sh_data_stall_q, sh_clear_q;
  logic [31:0]             sh_cmd_addr_q;
  logic [BeatsWidth-1:0]   sh_cmd_beats_q;
  logic [AxiDataWidth-1:0] sh_data_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      sh_cmd_stall_q <= 1'b0; sh_data_stall_q <= 1'b0; sh_clear_q <= 1'b0;
      sh_cmd_addr_q <= '0; sh_cmd_beats_q <= '0; sh_data_q <= '0;
    end else begin
      sh_cmd_stall_q  <= wr_cmd_valid_o & ~wr_cmd_ready_i;
      sh_data_stall_q <= wr_data_valid_o & ~wr_data_ready_i;
      sh_clear_q      <= abort_i | start_i;
      sh_cmd_addr_q   <= wr_cmd_addr_o;
      sh_cmd_beats_q  <= wr_cmd_beats_o;
      sh_data_q       <= wr_data_o;
    end
  end
  `ASSERT_KNOWN(PoStateKnown_A, state_q, clk_i, rst_ni)
  `ASSERT(PoStateLegal_A, 32'(state_q) <= 32'(PoTileEnd), clk_i, rst_ni)
  `ASSERT(WrCmdStable_A, !sh_cmd_stall_q || sh_clear_q ||
          (wr_cmd_valid_o && wr_cmd_addr_o == sh_cmd_addr_q && wr_cmd_beats_o == sh_cmd_beats_q),
          clk_i, rst_ni)
  `ASSERT(WrDataStable_A, !sh_data_stall_q || sh_clear_q || (wr_data_valid_o && wr_data_o == sh_data_q),
          clk_i, rst_ni)
  `ASSERT(WrCmdBeatsNonZero_A, !wr_cmd_valid_o || wr_cmd_beats_o != '0, clk_i, rst_ni)
  `ASSERT(PixelQueueNoUnderflow_A, !pix_out || cnt_q != '0, clk_i, rst_ni)
  `ASSERT(PixelQueueDepth_A, cnt_q <= CntW'(PixQueue), clk_i, rst_ni)
  // the places taken are the pixels queued and on their way (max or no pool)
  `ASSERT(PixelPlacesCurrent_A, avg || 32'(occ_q) == 32'(cnt_q) + 32'(pix_in) + 32'(s3_pix) + 32'(s2b_pix) +
          32'(s2a_pix) + 32'(s2_pix), clk_i, rst_ni)
  // the divider takes a pixel only when idle (pix_stall), and its divisor is
  // one its widths cover (uz_desc_check bounds the window)
  `ASSERT(AvgPixelIntoIdleDivider_A, !dv_in || dv_q == DvIdle, clk_i, rst_ni)
  `ASSERT(AvgDivisorInRange_A, !dv_in || (dv_n_in != '0 && 32'(dv_n_in) <= (1 << AvgNBits)), clk_i, rst_ni)
  `ASSERT_KNOWN(DvStateKnown_A, dv_q, clk_i, rst_ni)
  `ASSERT(PixelBeatInRange_A, 32'(beat_q) < WordBeats, clk_i, rst_ni)
  `ASSERT_KNOWN(WrCmdValidKnown_A, wr_cmd_valid_o, clk_i, rst_ni)
  `ASSERT_KNOWN(WrDataValidKnown_A, wr_data_valid_o, clk_i, rst_ni)
  `ASSERT_KNOWN(WrDataKnown_A, wr_data_valid_o ? wr_data_o : '0, clk_i, rst_ni)
  // the registered shift decodes and loop bounds are current wherever read
  `ASSERT(ShiftDecodeCurrent_A, !(s2a_valid_q && res_i) || res_t_q == res_t_d, clk_i, rst_ni)
  `ASSERT(DataShiftDecodeCurrent_A, !s3_valid_q || data_t_q == data_t_d, clk_i, rst_ni)
  // the registered early-rows flag is the layer's wherever a tile starts
  `ASSERT(EarlyRowsCurrent_A, !tile_go || early_q == (!g.pool_en && !g.pool_kind && (g.ksub == 3'd1) &&
                                                     (g.dw ? (Ratio == 1) : (g.cin_pad == 16'(PN)))), clk_i, rst_ni)
  `ASSERT(MulOperandCurrent_A, !(mul_req && mp_q == MpAccRow) || acc_row_a_q == acc_row_a_d, clk_i, rst_ni)
  // the walk's position registers are the formula's (cy, cx) wherever it reads
  logic signed [19:0] sh_cy, sh_cx;
  assign sh_cy = $signed(20'(mul_stride(32'(pr_q), {1'b0, ps}))) - $signed({16'b0, ppt}) + $signed({4'b0, dy_q});
  assign sh_cx = $signed(20'(mul_stride(32'(pc_q), {1'b0, ps}))) - $signed({16'b0, ppl}) + $signed({4'b0, dx_q});
  `ASSERT(PosCurrent_A, state_q != PoPix || (cy_q == sh_cy && cx_q == sh_cx), clk_i, rst_ni)
  `ASSERT(TileStartCurrent_A, !tile_go || (wc_start == wc_start_d && a_col_start == a_col_start_d), clk_i, rst_ni)
  `ASSERT(LoopBoundsCurrent_A, state_q != PoPix ||
          (pkh_m1_q == pkh - 16'd1 && pkw_m1_q == pkw - 16'd1 && pc_end_m1_q == pc_end_q - 16'd1 &&
           pr_end_m1_q == pr_end_q - 16'd1 && nq_m1_q == (no_wr >> LogPN) - 16'd1), clk_i, rst_ni)
`endif
endmodule
