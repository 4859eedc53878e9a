// The compute engine of one layer (docs/architecture.md, "Dataflow").
//
// Three stages work on the tile the loader has filled:
//   window loader : for each (pixel, ci-group) reads the K*K input words
//                   into win[f], f = c*K*K + tap (zeros for padding), two
//                   taps of a row per cycle (uz_in_buf): K*ceil(K/2) cycles;
//                   two window banks, so loading overlaps issuing
//   issue         : for each oc-group q and step t, lane j multiplies
//                   win[t*PN + j] by the weight with the same f, read from
//                   the weight buffer at ((q*NG + g)*K*K + t)
//   accumulate    : sums each (pixel, q) over its steps, then adds it to the
//                   accumulator in out_buf (the aligned bias on the first
//                   contribution), with one-deep forwarding for back-to-back
//                   updates of the same word
// Input selection (insel) packs only a group's real channels into the lanes:
// ceil(Cg*K*K/PN) steps instead of K*K.
// Depthwise (dw_i): output channel o reads input channel o only. The window
// of ci-group g then serves the one oc-group g, and each PE takes its own
// channel's taps into its lanes (per-PE operand selection): PE p lane j at
// step t multiplies win[p*K*K + t*PN + j], so PM channels run at once in
// ceil(K*K/PN) steps per window (docs/architecture.md, "Depthwise").
module uz_compute
  import uz_isa_pkg::*;
#(
  parameter int PM          = 16,
  parameter int PN          = 16,
  parameter int DataWidth   = 16,
  parameter int AccWidth    = 48,
  parameter int MaxK        = 11,
  parameter int InBufWords  = 4096,  // per half, words of PN elements
  parameter int WgtBufWords = 4096,  // per half, words of PM*PN elements
  parameter int OutBufWords = 2048,  // per half, words of PM accumulators
  parameter int BiasWords   = 2048,  // per half, words of PM biases
  localparam int InAw   = $clog2(2 * InBufWords),
  localparam int WgtAw  = $clog2(2 * WgtBufWords),
  localparam int OutAw  = $clog2(OutBufWords),
  localparam int BiasAw = $clog2(2 * BiasWords)
) (
  input  logic                         clk_i,
  input  logic                         rst_ni,
  input  logic                         start_i,
  input  logic                         abort_i,
  // layer constants, stable while the layer runs
  input  logic [3:0]                   k_i,
  input  logic [6:0]                   k2_i,
  input  logic [2:0]                   stride_i,
  input  logic [3:0]                   pad_t_i,
  input  logic [3:0]                   pad_l_i,
  input  logic [15:0]                  in_c_i,
  input  logic [15:0]                  in_h_i,
  input  logic [15:0]                  in_w_i,
  input  logic [15:0]                  cin_pad_i,
  input  logic [15:0]                  cout_pad_i,
  input  logic [15:0]                  conv_h_i,
  input  logic [15:0]                  conv_w_i,
  input  logic [15:0]                  to_i,
  input  logic [15:0]                  ti_i,
  input  logic [15:0]                  tr_i,
  input  logic [15:0]                  tc_i,
  input  logic [15:0]                  iw_t_i,      // input tile width with halo
  input  logic [15:0]                  ih_t_i,      // input tile height with halo
  input  logic [31:0]                  trtc_i,      // tr * tc
  input  logic                         pool_kind_i,
  input  logic                         insel_i,
  input  logic                         dw_i,        // depthwise CONV (golden.isa.depthwise)
  input  logic [6:0]                   wsteps_i,    // weight words per (channel, ci-group)
  input  logic                         bias_en_i,
  input  logic [7:0]                   bias_shift_i,
  // tile hand-off with the loader (one flag per buffer half)
  input  logic [1:0]                   tile_full_i,
  output logic [1:0]                   tile_release_o,
  // output-tile hand-off with the write-back
  input  logic [1:0]                   out_full_i,
  output logic [1:0]                   out_done_o,
  // input buffer read port (uz_in_buf): the word at the address and the next
  output logic [1:0]                   inb_rd_en_o,
  output logic [InAw-1:0]              inb_rd_addr_o,
  input  logic [PN*DataWidth-1:0]      inb_rd_data_i,
  input  logic [PN*DataWidth-1:0]      inb_rd_data_next_i,
  // weight buffer read port
  output logic                         wgt_rd_en_o,
  output logic [WgtAw-1:0]             wgt_rd_addr_o,
  input  logic [PM*PN*DataWidth-1:0]   wgt_rd_data_i,
  // bias buffer read port
  output logic                         bias_rd_en_o,
  output logic [BiasAw-1:0]            bias_rd_addr_o,
  input  logic [PM*DataWidth-1:0]      bias_rd_data_i,
  // accumulator buffer: read and write port of the half in use
  output logic                         acc_rd_en_o,
  output logic                         acc_half_o,
  output logic [OutAw-1:0]             acc_rd_addr_o,
  input  logic [PM*AccWidth-1:0]       acc_rd_data_i,
  output logic                         acc_wr_en_o,
  output logic                         acc_wr_half_o,
  output logic [OutAw-1:0]             acc_wr_addr_o,
  output logic [PM*AccWidth-1:0]       acc_wr_data_o,
  // status and counters
  output logic                         busy_o,
  output logic                         mac_step_o,   // a step entered the PE array
  output logic                         stall_o       // nothing to issue: waiting for the loader
);
  localparam int MaxK2   = MaxK * MaxK;
  localparam int WinLen  = PN * MaxK2;
  localparam int WinAw   = $clog2(WinLen);
  localparam int LogPN   = $clog2(PN);
  // Depthwise steps per window: at most ceil(MaxK^2 / PN).
  localparam int MaxSteps = (MaxK2 + PN - 1) / PN;
  localparam int StepW    = (MaxSteps > 1) ? $clog2(MaxSteps) : 1;

  // ------------------------------------------------------------ tiles
  logic        it_next, it_valid, it_first_ti, it_last_ti;
  logic [15:0] r0, c0, i0, no, nr, nc, ni;
  // The compute needs no output-channel origin (accumulators are per tile)
  // and sees the layer's end as the iterator running out.
  /* verilator lint_off UNUSEDSIGNAL */
  logic        it_last;
  logic [15:0] o0;
  /* verilator lint_on UNUSEDSIGNAL */

  uz_tile_iter #(.OuterOnly(1'b0)) u_iter (
    .clk_i, .rst_ni, .start_i, .next_i(it_next), .chan_follow_i(pool_kind_i || dw_i),
    .cout_i(cout_pad_i), .cin_i(cin_pad_i), .rows_i(conv_h_i), .cols_i(conv_w_i),
    .to_i, .ti_i, .tr_i, .tc_i,
    .valid_o(it_valid), .o0_o(o0), .r0_o(r0), .c0_o(c0), .i0_o(i0),
    .no_o(no), .nr_o(nr), .nc_o(nc), .ni_o(ni),
    .first_ti_o(it_first_ti), .last_ti_o(it_last_ti), .last_o(it_last)
  );

  // Halves: the in/weight half alternates per tile, the accumulator half per
  // output tile.
  logic hw_q, ho_q;

  // ------------------------------------------------------ window loader
  typedef enum logic [1:0] {WlIdle, WlWaitTile, WlLoad} wl_state_e;
  wl_state_e   wl_state_q;
  logic [15:0] py_q, px_q, gl_q;          // pixel in tile, ci-group in tile
  logic [3:0]  ky_q, kx_q;
  logic [6:0]  tap_q;
  logic        wb_q;                       // window bank being filled
  logic [1:0]  win_full_q;
  logic        wr_pending_q;               // input words arrive this cycle
  logic [6:0]  wr_tap_q;
  logic        wr_pair_q;                  // and the word of tap wr_tap_q + 1
  logic        wr_zero_q, wr_zero_next_q;
  logic        wr_last_q;

  // Window metadata handed to the issue stage.
  typedef struct packed {
    logic        hw;
    logic        ho;
    logic        init;          // first contribution: start from the bias
    logic        tile_last;     // last window of the tile
    logic        out_last;      // the tile completes its output tile
    logic [15:0] gl;
    logic [15:0] nq;            // oc-groups the window serves
    logic [15:0] q0;            // the first of them (depthwise: the window's own)
    logic [15:0] ng;            // ci-groups in the tile
    logic [OutAw-1:0] pix;      // pixel index in the output tile
    logic [7:0]  steps;
    logic [WinAw:0] lane_limit; // f values below this are real
  } win_meta_t;
  win_meta_t win_meta_q [2];

  logic [DataWidth-1:0] win_q [2][WinLen];

  // Input position of the current tap (signed: padding makes it negative).
  logic signed [19:0] in_y, in_x;
  logic               in_range, in_range_next;
  // Two taps this cycle: kx and kx + 1 of the same window row.
  logic               pair;
  logic               last_tap;
  assign pair     = (kx_q != k_i - 1);
  assign last_tap = (7'(tap_q + 7'(pair)) == k2_i - 1);
  logic [15:0]        ng_tile, nq_tile;
  logic [15:0]        cg;
  logic [WinAw:0]     lane_limit;

  assign ng_tile = ni >> LogPN;
  assign nq_tile = no >> $clog2(PM);
  assign in_y = $signed({4'b0, r0}) * $signed({17'b0, stride_i}) + $signed({4'b0, py_q}) * $signed({17'b0, stride_i})
                - $signed({16'b0, pad_t_i}) + $signed({16'b0, ky_q});
  assign in_x = $signed({4'b0, c0}) * $signed({17'b0, stride_i}) + $signed({4'b0, px_q}) * $signed({17'b0, stride_i})
                - $signed({16'b0, pad_l_i}) + $signed({16'b0, kx_q});
  assign in_range = (in_y >= 0) && (in_y < $signed({4'b0, in_h_i})) &&
                    (in_x >= 0) && (in_x < $signed({4'b0, in_w_i}));
  assign in_range_next = pair && (in_y >= 0) && (in_y < $signed({4'b0, in_h_i})) &&
                         (in_x + 1 >= 0) && (in_x + 1 < $signed({4'b0, in_w_i}));
  // Real channels of this group (input selection packs only these).
  always_comb begin
    logic [16:0] first_c;
    first_c = {1'b0, i0} + 17'(32'(gl_q) * PN);
    if (first_c >= {1'b0, in_c_i})                cg = '0;
    else if ({1'b0, in_c_i} - first_c >= 17'(PN)) cg = 16'(PN);
    else                                          cg = in_c_i - first_c[15:0];
    if (dw_i)         lane_limit = (WinAw+1)'(k2_i);
    else if (insel_i) lane_limit = (WinAw+1)'(cg * k2_i);
    else              lane_limit = (WinAw+1)'(PN * k2_i);
  end

  // Word address in the input buffer: (g*IH + py*s + ky)*IW + px*s + kx.
  // Computed in 32 bits; the buffer half uses the low address bits.
  /* verilator lint_off UNUSEDSIGNAL */
  logic [31:0] inb_addr;
  /* verilator lint_on UNUSEDSIGNAL */
  assign inb_addr = ((32'(gl_q) * 32'(ih_t_i) + 32'(py_q) * 32'(stride_i) + 32'(ky_q)) * 32'(iw_t_i))
                    + 32'(px_q) * 32'(stride_i) + 32'(kx_q);

  // Metadata of the window about to be loaded (assigned whole: Icarus cannot
  // assign one member of an array element).
  win_meta_t new_meta;
  always_comb begin
    new_meta            = '0;
    new_meta.hw         = hw_q;
    new_meta.ho         = ho_q;
    new_meta.init       = it_first_ti && (dw_i || gl_q == '0);
    new_meta.tile_last  = (py_q == nr - 1) && (px_q == nc - 1) && (gl_q == ng_tile - 1);
    new_meta.out_last   = it_last_ti;
    new_meta.gl         = gl_q;
    new_meta.nq         = dw_i ? 16'd1 : nq_tile;
    new_meta.q0         = dw_i ? gl_q : '0;
    new_meta.ng         = ng_tile;
    new_meta.pix        = OutAw'(32'(py_q) * 32'(tc_i) + 32'(px_q));
    new_meta.lane_limit = lane_limit;
    new_meta.steps      = 8'((lane_limit + (WinAw+1)'(PN - 1)) >> LogPN);
  end

  logic win_consumed;       // issue stage frees bank rb
  logic rb_q;               // window bank being issued
  // A half's full flag stays set until the issue stage releases the tile in
  // it, so with tiles of one or two windows the window loader could come
  // back to that half while it still holds the previous tile (and an
  // accumulator half while its output tile is still being summed). A half
  // the window loader has taken is therefore busy until its full flag falls
  // (released by the issue stage, or drained by the write-back).
  logic       tile_go;
  logic [1:0] in_busy_q, out_busy_q, tile_full_prev_q, out_full_prev_q;
  assign tile_go = it_valid && tile_full_i[hw_q] && !in_busy_q[hw_q] &&
                   !(it_first_ti && (out_full_i[ho_q] || out_busy_q[ho_q]));
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      in_busy_q <= '0; out_busy_q <= '0; tile_full_prev_q <= '0; out_full_prev_q <= '0;
    end else if (abort_i || start_i) begin
      in_busy_q <= '0; out_busy_q <= '0; tile_full_prev_q <= '0; out_full_prev_q <= '0;
    end else begin
      tile_full_prev_q <= tile_full_i;
      out_full_prev_q  <= out_full_i;
      for (int h = 0; h < 2; h++) begin
        if (tile_full_prev_q[h] && !tile_full_i[h]) in_busy_q[h] <= 1'b0;
        if (out_full_prev_q[h] && !out_full_i[h])   out_busy_q[h] <= 1'b0;
      end
      if (wl_state_q == WlWaitTile && tile_go) begin
        in_busy_q[hw_q] <= 1'b1;
        if (it_first_ti) out_busy_q[ho_q] <= 1'b1;
      end
    end
  end

  // A bank may start loading in the cycle its window is issued for the last
  // time: the first word lands a cycle later, after that read.
  logic bank_free, wl_step;
  assign bank_free = !win_full_q[wb_q] || (win_consumed && rb_q == wb_q);
  assign wl_step   = (wl_state_q == WlLoad) && ((tap_q != '0) || bank_free);
  logic wr_bank_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      wl_state_q   <= WlIdle;
      py_q <= '0; px_q <= '0; gl_q <= '0; ky_q <= '0; kx_q <= '0; tap_q <= '0;
      wb_q <= 1'b0; hw_q <= 1'b0; ho_q <= 1'b0;
      win_full_q   <= '0;
      wr_pending_q <= 1'b0;
      wr_tap_q <= '0; wr_pair_q <= 1'b0; wr_zero_q <= 1'b0; wr_zero_next_q <= 1'b0; wr_last_q <= 1'b0;
      wr_bank_q <= 1'b0;
      for (int b = 0; b < 2; b++) win_meta_q[b] <= '0;
    end else if (abort_i || start_i) begin
      wl_state_q   <= start_i ? WlWaitTile : WlIdle;
      py_q <= '0; px_q <= '0; gl_q <= '0; ky_q <= '0; kx_q <= '0; tap_q <= '0;
      wb_q <= 1'b0; hw_q <= 1'b0; ho_q <= 1'b0;
      win_full_q   <= '0;
      wr_pending_q <= 1'b0;
    end else begin
      // The word read last cycle lands in its window bank.
      wr_pending_q <= wl_step;
      if (win_consumed) win_full_q[rb_q] <= 1'b0;
      if (wr_pending_q && wr_last_q) win_full_q[wr_bank_q] <= 1'b1;
      unique case (wl_state_q)
        WlIdle: ;
        WlWaitTile: begin
          if (!it_valid) wl_state_q <= WlIdle;
          else if (tile_go) begin
            py_q <= '0; px_q <= '0; gl_q <= '0;
            ky_q <= '0; kx_q <= '0; tap_q <= '0;
            wl_state_q <= WlLoad;
          end
        end
        WlLoad: begin
          if (wl_step) begin
            if (tap_q == '0) win_meta_q[wb_q] <= new_meta;
            wr_tap_q       <= tap_q;
            wr_pair_q      <= pair;
            wr_zero_q      <= !in_range;
            wr_zero_next_q <= !in_range_next;
            wr_last_q      <= last_tap;
            wr_bank_q      <= wb_q;
            if (last_tap) begin
              tap_q <= '0; ky_q <= '0; kx_q <= '0;
              wb_q  <= !wb_q;
              // next (pixel, group) of the tile
              if (gl_q != ng_tile - 1) begin
                gl_q <= gl_q + 1'b1;
              end else begin
                gl_q <= '0;
                if (px_q != nc - 1) begin
                  px_q <= px_q + 1'b1;
                end else begin
                  px_q <= '0;
                  if (py_q != nr - 1) begin
                    py_q <= py_q + 1'b1;
                  end else begin
                    py_q <= '0;
                    // tile done: on to the next one (other half)
                    hw_q <= !hw_q;
                    if (it_last_ti) ho_q <= !ho_q;
                    wl_state_q <= WlWaitTile;
                  end
                end
              end
            end else begin
              tap_q <= tap_q + (pair ? 7'd2 : 7'd1);
              if (kx_q + (pair ? 4'd2 : 4'd1) >= k_i) begin
                kx_q <= '0;
                ky_q <= ky_q + 1'b1;
              end else begin
                kx_q <= kx_q + (pair ? 4'd2 : 4'd1);
              end
            end
          end
        end
        // unreachable: every encoding of the state is an arm above
        /* verilator coverage_off */
        default: wl_state_q <= WlIdle;
        /* verilator coverage_on */
      endcase
    end
  end
  assign it_next = wl_step && last_tap && (gl_q == ng_tile - 1) &&
                   (px_q == nc - 1) && (py_q == nr - 1);

  assign inb_rd_en_o   = {wl_step && in_range_next, wl_step && in_range};
  assign inb_rd_addr_o = InAw'({hw_q, (InAw-1)'(inb_addr)});

  // Scatter the arriving words into the window: channel c of tap t at c*K2+t.
  always_ff @(posedge clk_i) begin
    if (wr_pending_q) begin
      for (int c = 0; c < PN; c++) begin
        win_q[wr_bank_q][WinAw'(c * 32'(k2_i) + 32'(wr_tap_q))] <=
          wr_zero_q ? '0 : inb_rd_data_i[c*DataWidth +: DataWidth];
        if (wr_pair_q) begin
          win_q[wr_bank_q][WinAw'(c * 32'(k2_i) + 32'(wr_tap_q) + 1)] <=
            wr_zero_next_q ? '0 : inb_rd_data_next_i[c*DataWidth +: DataWidth];
        end
      end
    end
  end

  // ------------------------------------------------------------- issue
  // Depthwise operand of PE p, lane j at step t: win[p*K*K + t*PN + j]. One
  // arm per legal kernel size, so each lane selects among the few (K, t)
  // positions it can read rather than the whole window.
  function automatic logic [WinAw-1:0] dw_index(input int p, input int j, input logic [3:0] k,
                                                  input logic [StepW-1:0] t);
    int base;
    case (k)
      4'd3:    base = p * 9;
      4'd5:    base = p * 25;
      4'd7:    base = p * 49;
      4'd11:   base = p * 121;
      default: base = p;          // K = 1 (uz_desc_check admits no other size)
    endcase
    dw_index = WinAw'(base + 32'(t) * PN + j);
  endfunction

  logic [15:0] q_q;
  logic [7:0]  t_q;
  logic        issue;
  win_meta_t   m;
  assign m     = win_meta_q[rb_q];
  assign issue = win_full_q[rb_q];
  wire   last_t = (t_q == m.steps - 1);
  wire   last_q = (q_q == m.nq - 1);
  assign win_consumed = issue && last_t && last_q;
  logic [15:0] q_abs;       // oc-group in the tile
  assign q_abs = q_q + m.q0;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      q_q <= '0; t_q <= '0; rb_q <= 1'b0;
    end else if (abort_i || start_i) begin
      q_q <= '0; t_q <= '0; rb_q <= 1'b0;
    end else if (issue) begin
      if (!last_t) begin
        t_q <= t_q + 1'b1;
      end else begin
        t_q <= '0;
        if (!last_q) begin
          q_q <= q_q + 1'b1;
        end else begin
          q_q  <= '0;
          rb_q <= !rb_q;
        end
      end
    end
  end

  /* verilator lint_off UNUSEDSIGNAL */
  logic [31:0] wgt_word;  // computed in 32 bits; the buffer uses the low bits
  /* verilator lint_on UNUSEDSIGNAL */
  assign wgt_word      = dw_i ? 32'(q_abs) * 32'(wsteps_i) + 32'(t_q)
                              : (32'(q_q) * 32'(m.ng) + 32'(m.gl)) * 32'(k2_i) + 32'(t_q);
  assign wgt_rd_en_o   = issue && !pool_kind_i;
  assign wgt_rd_addr_o = WgtAw'({m.hw, (WgtAw-1)'(wgt_word)});

  // Stage 1: operands registered, weights arrive from the buffer.
  localparam int TagWidth = 1 + 1 + 1 + 1 + 1 + 1 + 1 + OutAw + BiasAw - 1;
  typedef struct packed {
    logic             first_t;
    logic             last_t;
    logic             init;
    logic             hw;
    logic             ho;
    logic             tile_end;   // last step of the tile
    logic             out_last;
    logic [OutAw-1:0] acc_addr;
    logic [BiasAw-2:0] bias_word;
  } tag_t;

  logic                     s1_valid_q;
  logic [PM*PN*DataWidth-1:0] s1_x_q;
  logic [PN-1:0]            s1_en_q;
  tag_t                     s1_tag_q;
  logic                     s1_pool_q;
  logic [15:0]              s1_q_q, s1_gl_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      s1_valid_q <= 1'b0;
    end else begin
      s1_valid_q <= issue && !abort_i;
    end
  end
  always_ff @(posedge clk_i) begin
    if (issue) begin
      for (int j = 0; j < PN; j++) begin
        s1_en_q[j] <= ((WinAw+1)'(32'(t_q) * PN + j) < m.lane_limit);
        for (int p = 0; p < PM; p++) begin
          if (!dw_i)
            s1_x_q[(p*PN+j)*DataWidth +: DataWidth] <= win_q[rb_q][WinAw'(32'(t_q) * PN + j)];
          else if (32'(t_q) * PN + j < 32'(k2_i))   // lanes past the taps are off
            s1_x_q[(p*PN+j)*DataWidth +: DataWidth] <= win_q[rb_q][dw_index(p, j, k_i, StepW'(t_q))];
          else
            s1_x_q[(p*PN+j)*DataWidth +: DataWidth] <= '0;
        end
      end
      s1_tag_q.first_t   <= (t_q == '0);
      s1_tag_q.last_t    <= last_t;
      s1_tag_q.init      <= m.init;
      s1_tag_q.hw        <= m.hw;
      s1_tag_q.ho        <= m.ho;
      s1_tag_q.tile_end  <= m.tile_last && last_t && last_q;
      s1_tag_q.out_last  <= m.out_last;
      s1_tag_q.acc_addr  <= OutAw'(32'(q_abs) * trtc_i + 32'(m.pix));
      s1_tag_q.bias_word <= (BiasAw-1)'(q_abs);
      s1_pool_q <= pool_kind_i;
      s1_q_q    <= q_q;
      s1_gl_q   <= m.gl;
    end
  end

  // A POOL layer multiplies by the identity: output channel q*PM+p takes
  // input channel gl*PN+j, nothing is loaded.
  logic [PM*PN*DataWidth-1:0] s1_w;
  always_comb begin
    s1_w = wgt_rd_data_i;
    if (s1_pool_q) begin
      for (int p = 0; p < PM; p++) begin
        for (int j = 0; j < PN; j++) begin
          s1_w[(p*PN+j)*DataWidth +: DataWidth] =
            ((s1_q_q == s1_gl_q) && (p == j)) ? DataWidth'(1) : '0;
        end
      end
    end
  end

  logic                    pe_valid;
  logic [TagWidth-1:0]     pe_tag_raw;
  tag_t                    pe_tag;
  localparam int SumWidth = 2 * DataWidth + $clog2(PN);
  logic [PM*SumWidth-1:0]  pe_sum;

  uz_pe_array #(.PM(PM), .PN(PN), .DataWidth(DataWidth), .TagWidth(TagWidth)) u_pe (
    .clk_i, .rst_ni,
    .in_valid_i(s1_valid_q), .in_x_i(s1_x_q), .in_w_i(s1_w), .in_lane_en_i(s1_en_q),
    .in_tag_i(s1_tag_q),
    .out_valid_o(pe_valid), .out_sum_o(pe_sum), .out_tag_o(pe_tag_raw)
  );
  assign pe_tag = pe_tag_raw;

  // An abort empties the stages before the PE array, but the steps already
  // inside it still come out during its latency: they must not reach the
  // accumulators or release a half the abort has cleared.
  localparam int PeLatency = 1 + ($clog2(PN) + 1) / 2;   // uz_pe_array's Latency
  logic [2:0] squash_q;
  logic       pe_live;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni)                 squash_q <= '0;
    else if (abort_i)            squash_q <= 3'(PeLatency);
    else if (squash_q != '0)     squash_q <= squash_q - 1'b1;
  end
  assign pe_live = pe_valid && squash_q == '0;

  // ------------------------------------------------------- accumulate
  logic [PM*AccWidth-1:0] acc_q;
  logic [PM*AccWidth-1:0] acc_sum;
  always_comb begin
    for (int p = 0; p < PM; p++) begin
      acc_sum[p*AccWidth +: AccWidth] =
        (pe_tag.first_t ? '0 : acc_q[p*AccWidth +: AccWidth]) +
        AccWidth'($signed(pe_sum[p*SumWidth +: SumWidth]));
    end
  end

  logic                   a1_valid_q;
  // The last stage needs only the tag fields that steer the write.
  /* verilator lint_off UNUSEDSIGNAL */
  tag_t                   a1_tag_q;
  /* verilator lint_on UNUSEDSIGNAL */
  logic [PM*AccWidth-1:0] a1_acc_q;
  logic                   a1_fwd_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      acc_q      <= '0;
      a1_valid_q <= 1'b0;
      a1_fwd_q   <= 1'b0;
    end else begin
      if (pe_valid) acc_q <= acc_sum;
      a1_valid_q <= pe_live && pe_tag.last_t && !abort_i;
      // The word A1 writes this cycle is the one A0 reads: forward it.
      a1_fwd_q <= pe_valid && pe_tag.last_t && acc_wr_en_o &&
                  (acc_wr_addr_o == pe_tag.acc_addr) && (acc_wr_half_o == pe_tag.ho);
    end
  end
  always_ff @(posedge clk_i) begin
    if (pe_valid && pe_tag.last_t) begin
      a1_tag_q <= pe_tag;
      a1_acc_q <= acc_sum;
    end
  end

  assign acc_rd_en_o    = pe_live && pe_tag.last_t && !pe_tag.init;
  assign acc_half_o     = pe_valid ? pe_tag.ho : a1_tag_q.ho;
  assign acc_rd_addr_o  = pe_tag.acc_addr;
  assign bias_rd_en_o   = pe_live && pe_tag.last_t && pe_tag.init;
  assign bias_rd_addr_o = BiasAw'({pe_tag.hw, pe_tag.bias_word});

  // Bias onto the accumulator's fractional length: the shared shift.
  logic [PM*AccWidth-1:0] bias_aligned;
  for (genvar p = 0; p < PM; p++) begin : gen_bias
    uz_shift_round_sat #(.InWidth(DataWidth), .OutWidth(AccWidth), .ShiftWidth(8)) u_bias_shift (
      .data_i (bias_rd_data_i[p*DataWidth +: DataWidth]),
      .shift_i(bias_shift_i),
      .data_o (bias_aligned[p*AccWidth +: AccWidth])
    );
  end

  logic [PM*AccWidth-1:0] a1_base;
  logic [PM*AccWidth-1:0] acc_wr_data_q;  // last word written, for forwarding
  always_comb begin
    if (a1_tag_q.init)  a1_base = bias_en_i ? bias_aligned : '0;
    else if (a1_fwd_q)  a1_base = acc_wr_data_q;
    else                a1_base = acc_rd_data_i;
  end

  always_comb begin
    for (int p = 0; p < PM; p++) begin
      acc_wr_data_o[p*AccWidth +: AccWidth] = a1_base[p*AccWidth +: AccWidth] + a1_acc_q[p*AccWidth +: AccWidth];
    end
  end
  always_ff @(posedge clk_i) begin
    if (acc_wr_en_o) acc_wr_data_q <= acc_wr_data_o;
  end
  assign acc_wr_en_o   = a1_valid_q;
  assign acc_wr_half_o = a1_tag_q.ho;
  assign acc_wr_addr_o = a1_tag_q.acc_addr;

  // Hand-offs: the in/weight half (and its bias) is free once the tile's last
  // step has been accumulated; the accumulator half goes to the write-back
  // when that tile completes its output tile.
  always_comb begin
    tile_release_o = '0;
    out_done_o     = '0;
    if (a1_valid_q && a1_tag_q.tile_end) begin
      tile_release_o[a1_tag_q.hw] = 1'b1;
      if (a1_tag_q.out_last) out_done_o[a1_tag_q.ho] = 1'b1;
    end
  end

  // Busy until the last tile has left the pipeline.
  logic busy_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) busy_q <= 1'b0;
    else if (abort_i) busy_q <= 1'b0;
    else if (start_i) busy_q <= 1'b1;
    else if (a1_valid_q && a1_tag_q.tile_end && !it_valid && wl_state_q == WlIdle) busy_q <= 1'b0;
  end
  assign busy_o     = busy_q;
  assign mac_step_o = issue;
  assign stall_o    = busy_q && !issue && (wl_state_q == WlWaitTile) && it_valid;

  // ---------------------------------------------------------------------------
  // Assertions (tests/testplan.md, "RTL assertions"): legal window-loader
  // state, window banks never overwritten while full, every buffer access
  // inside its half (the halves take the low address bits, so an address
  // beyond the half would alias silently).
  // ---------------------------------------------------------------------------
  `include "uz_assert.svh"
`ifndef UZ_NO_ASSERT
  `ASSERT_KNOWN(WlStateKnown_A, wl_state_q, clk_i, rst_ni)
  `ASSERT(WlStateLegal_A, 32'(wl_state_q) <= 32'(WlLoad), clk_i, rst_ni)
  `ASSERT(WinNoOverwrite_A, !wr_pending_q || !win_full_q[wr_bank_q], clk_i, rst_ni)
  `ASSERT(WinTapInRange_A, !wr_pending_q || (wr_tap_q < k2_i && 32'(k2_i) <= MaxK2), clk_i, rst_ni)
  `ASSERT(IssueFromFullBank_A, !mac_step_o || win_full_q[rb_q], clk_i, rst_ni)
  // both words of a two-tap read lie inside the half
  `ASSERT(InbRdInHalf_A, (!inb_rd_en_o[0] || inb_addr < 32'(InBufWords)) &&
                         (!inb_rd_en_o[1] || inb_addr + 1 < 32'(InBufWords)), clk_i, rst_ni)
  `ASSERT(WgtRdInHalf_A, !wgt_rd_en_o || wgt_word < 32'(WgtBufWords), clk_i, rst_ni)
  `ASSERT(BiasRdInHalf_A, !issue || 32'(q_abs) < 32'(BiasWords), clk_i, rst_ni)
  `ASSERT(AccAddrInHalf_A, !issue || 32'(q_abs) * trtc_i + 32'(m.pix) < 32'(OutBufWords), clk_i, rst_ni)
  // a depthwise window serves its own oc-group, which the tile holds
  `ASSERT(DwGroupInTile_A, !(issue && dw_i) || m.q0 < m.ng, clk_i, rst_ni)
  `ASSERT(PixInTile_A, !wl_step || 32'(py_q) * 32'(tc_i) + 32'(px_q) < 32'(OutBufWords), clk_i, rst_ni)
  `ASSERT_NEVER(ReleaseBothHalves_A, tile_release_o == 2'b11, clk_i, rst_ni)
  `ASSERT_INIT(SquashCoversPe_A, PeLatency <= 7)
  `ASSERT_NEVER(StartWhileSquashing_A, start_i && squash_q != '0, clk_i, rst_ni)
  `ASSERT_KNOWN(CpBusyKnown_A, busy_o, clk_i, rst_ni)
  `ASSERT_KNOWN(AccWrEnKnown_A, acc_wr_en_o, clk_i, rst_ni)
`endif
endmodule
