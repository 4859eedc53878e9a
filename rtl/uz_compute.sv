// The compute engine of one layer (docs/architecture.md, "Dataflow").
//
// Three stages work on the tile the loader has filled:
//   column fetch  : for each (ci-group, output row) reads the input columns
//                   the row's windows cover, InReads neighbouring columns
//                   of one input row a cycle (uz_in_buf), zeros for padding
//   window        : a shift register of the last MaxK columns; an output
//                   pixel's K x K window is whole after K columns of its row,
//                   then s more per pixel (column reuse)
//   issue         : for each oc-group q and step t, lane j multiplies
//                   element f = t*PN + j of the window (f = c*K*K + tap) by
//                   the weight with the same f, read from the weight buffer
//                   at ((q*NG + g)*K*K + t)
//   accumulate    : sums each (pixel, q) over its steps, then adds it to the
//                   accumulator in out_buf (the aligned bias on the first
//                   contribution), with one-deep forwarding for back-to-back
//                   updates of the same word
// Hand-offs go by rows where they can: the fetcher may take a half the
// loader is still filling (each read waits for its words, uz_loader
// fill_*_o), and out_rows_o counts the rows of each accumulator half
// written for the last time, which uz_post may send before the tile is done.
// Input selection (insel) packs only a group's real channels into the lanes:
// ceil(Cg*K*K/PN) steps instead of K*K.
// Depthwise (g.dw): output channel o reads input channel o only. The window
// of ci-group g then serves the one oc-group g, and each PE takes its own
// channel's taps into its lanes (per-PE operand selection): PE p lane j at
// step t multiplies win[p*K*K + t*PN + j], so PM channels run at once in
// ceil(K*K/PN) steps per window (docs/architecture.md, "Depthwise").
module uz_compute
  import uz_isa_pkg::*;
  import uz_util_pkg::*;
#(
  parameter int PM          = 16,
  parameter int PN          = 16,
  parameter int DataWidth   = 16,
  parameter int AccWidth    = 48,
  parameter int MaxK        = 3,
  parameter int InBufWords  = 4096,  // per half, words of PN elements
  parameter int WgtBufWords = 4096,  // per half, words of PM*PN elements
  parameter int OutBufWords = 2048,  // per half, words of PM accumulators
  parameter int BiasWords   = 2048,  // per half, words of PM biases
  parameter int InReads     = 4,     // input words (columns) uz_in_buf returns per read
  localparam int InAw   = $clog2(2 * InBufWords),
  localparam int WgtAw  = $clog2(2 * WgtBufWords),
  localparam int OutAw  = $clog2(OutBufWords),
  localparam int BiasAw = $clog2(2 * BiasWords)
) (
  input  logic                         clk_i,
  input  logic                         rst_ni,
  input  logic                         start_i,
  input  logic                         abort_i,
  // layer constants, stable while the layer runs: the geometry (a
  // uz_util_pkg::uz_layer_geom_t), then the bias
  input  logic [uz_util_pkg::LayerGeomBits-1:0] geom_i,
  input  logic                         bias_en_i,
  input  logic [7:0]                   bias_shift_i,
  // tile hand-off with the loader (one flag per buffer half)
  input  logic [1:0]                   tile_full_i,
  output logic [1:0]                   tile_release_o,
  // the loader's input fill (uz_loader fill_*_o): a half may be started
  // while its input arrives, each read waiting for its words
  input  logic                         fill_valid_i,
  input  logic                         fill_half_i,
  input  logic [InAw-2:0]              fill_addr_i,
  // output-tile hand-off with the write-back
  input  logic [1:0]                   out_full_i,
  output logic [1:0]                   out_done_o,
  // rows of the output tile in each accumulator half whose accumulators are
  // final, in the fetch order (ci-group, row; half h in bits 16h + 15 .. 16h):
  // the write-back may send a row of a layer whose words take one write each
  output logic [31:0]                  out_rows_o,
  // input buffer read port (uz_in_buf): the word at the address and the next
  output logic [InReads-1:0]           inb_rd_en_o,
  output logic [InAw-1:0]              inb_rd_addr_o,
  input  logic [InReads*PN*DataWidth-1:0] inb_rd_data_i,  // word i: column u + i
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
  // ci-groups of PN per oc-group of PM: a depthwise or POOL oc-group takes
  // its channels from Ratio windows, one after the other.
  localparam int Ratio    = PM / PN;
  localparam int SubW     = (Ratio > 1) ? $clog2(Ratio) : 1;
  // PM need not be a power of two: a tile's oc-groups are no / PM by a
  // product with the reciprocal (a shift when it is one).
  localparam int PmDivShift = 17 + $clog2(PM);
  localparam logic [63:0] PmDivMagic = uz_util_pkg::div_magic(PM, 17);
  // The kernel sizes uz_desc_check admits (golden.isa.KERNELS) up to MaxK.
  function automatic int kval(input int i);
    case (i)
      0:       return 1;
      1:       return 3;
      2:       return 5;
      3:       return 7;
      default: return 11;
    endcase
  endfunction
  localparam int NumK = (MaxK >= 11) ? 5 : (MaxK >= 7) ? 4 : (MaxK >= 5) ? 3 : (MaxK >= 3) ? 2 : 1;
  // The layer's geometry, one struct from uz_layer (a plain vector on the
  // port: Icarus 11). Each block reads only part of it.
  /* verilator lint_off UNUSEDSIGNAL */
  uz_layer_geom_t g;
  /* verilator lint_on UNUSEDSIGNAL */
  assign g = geom_i;

  // v * stride (uz_util_pkg::mul_stride) and v * K*K (K one of the kernels
  // above) by shifts and adds: no multiplier on an address or lane-count path.
  function automatic logic [31:0] mul_k2(logic [31:0] v, logic [3:0] k);
    case (k)
      4'd3:    mul_k2 = (v << 3) + v;                       // 9
      4'd5:    mul_k2 = (v << 4) + (v << 3) + v;            // 25
      4'd7:    mul_k2 = (v << 5) + (v << 4) + v;            // 49
      4'd11:   mul_k2 = (v << 7) - (v << 3) + v;            // 121
      default: mul_k2 = v;                                  // 1
    endcase
  endfunction

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
    .clk_i, .rst_ni, .start_i, .next_i(it_next), .chan_follow_i(g.pool_kind || g.dw),
    .cout_i(g.cout_pad), .cin_i(g.cin_pad), .rows_i(g.conv_h), .cols_i(g.conv_w),
    .to_i(g.to), .ti_i(g.ti), .tr_i(g.tr), .tc_i(g.tc),
    .valid_o(it_valid), .o0_o(o0), .r0_o(r0), .c0_o(c0), .i0_o(i0),
    .no_o(no), .nr_o(nr), .nc_o(nc), .ni_o(ni),
    .first_ti_o(it_first_ti), .last_ti_o(it_last_ti), .last_o(it_last)
  );

  // Halves: the in/weight half alternates per tile, the accumulator half per
  // output tile.
  logic hw_q, ho_q;

  // ------------------------------------------------------ column fetcher
  // Rows of output pixels stream through the window column by column
  // (docs/architecture.md, "Window: line-buffer columns"): for each ci-group
  // gl and output row py of the tile, the fetcher reads the input columns
  // u = 0 .. U-1 (U = (nc-1)*s + K) of the K input rows the row needs,
  // InReads neighbouring columns at a time (uz_in_buf returns consecutive
  // words), K cycles a group of columns. A pixel then costs s new columns
  // instead of a whole K x K window. When the stride passes K (a 1x1/2
  // projection) the unused columns are skipped and columns go singly.
  typedef enum logic [1:0] {FeIdle, FeWaitTile, FeFetch} fe_state_e;
  fe_state_e fe_state_q, fe_state_d;

  // Per-row facts the window side needs, carried with each column group so
  // the fetcher can run ahead into the next row or tile.
  typedef struct packed {
    logic             hw;
    logic             ho;
    logic             init;          // first contribution: start from the bias
    logic             last_row;      // last row of the last ci-group of the tile
    logic             out_last;      // the tile completes its output tile
    logic [15:0]      gquo;          // gl / Ratio: the oc-group a depthwise or POOL window feeds
    logic [SubW-1:0]  gsub;          // gl mod Ratio: which PN-slice of it
    logic [15:0]      nq;            // oc-groups each window serves
    logic [15:0]      q0;            // the first of them (depthwise: the window's own)
    logic [15:0]      ng;            // ci-groups in the tile
    logic [15:0]      nc;            // pixels in the row
    logic [OutAw-1:0] pix_row;       // py * tc: the row's first pixel in the output tile
    logic [31:0]      wbase;         // weight word of (q0, gl, step 0)
    logic [31:0]      wq_step;       // weight words from one oc-group to the next
    logic [31:0]      acc0;          // accumulator word of (q0, pixel 0)
    logic [7:0]       steps;
    logic [WinAw:0]   lane_limit;    // f values below this are real
  } row_meta_t;

  localparam int LogReads = $clog2(InReads);
  logic [15:0] gl_q, py_q, u_q;            // ci-group, output row, first column of the group
  // gl_q as gl / Ratio and gl mod Ratio, counted (Ratio need not be a power of two)
  logic [15:0]     gquo_q;
  logic [SubW-1:0] gsub_q;
  logic [3:0]  ky_q, kxc_q;                // input row; column in the pixel (skip mode)
  logic [15:0] ng_tile, nq_tile, ucols_d;
  logic [15:0] ucols_q, nr_m1_q, ng_m1_q;  // registered: see below
  logic        skip_cols;                  // stride above K: columns go singly, unused ones skipped
  logic [15:0] u_adv;                      // the next group's first column
  logic [LogReads:0] ncols;                // columns in this group (1 .. InReads)
  logic        row_done;                   // this group ends the row
  logic [OutAw-1:0] pix_row_q;
  // Weight and accumulator bases kept by counters: the word of (q, gl, t) is
  // (q*ng + gl)*K*K + t (depthwise: gl*wsteps + t), the accumulator of
  // (q, pixel) q*tr*tc + pixel.
  logic [31:0]      wgl_q, accg_q, wq_step_q;

  assign ng_tile   = ni >> LogPN;
  /* verilator lint_off UNUSEDSIGNAL */
  logic [31:0] nq_div;     // the quotient's 32 bits: Icarus 11 cannot size-cast a function call
  /* verilator lint_on UNUSEDSIGNAL */
  assign nq_div    = uz_util_pkg::div_by_magic(32'(no), PmDivMagic, PmDivShift);
  assign nq_tile   = nq_div[15:0];
  assign skip_cols = 16'(g.stride) > 16'(g.k);
  // (nc - 1) * s + K: a stride of at most 7, shift-and-add
  assign ucols_d   = 16'(mul_stride(32'(nc) - 1, g.stride)) + 16'(g.k);
  // The row's column count and the tile's last row and ci-group come from
  // the iterator's sizes through subtract, compare and shift-add chains;
  // on the fetcher's step enable they made the block's longest path. They
  // change only when the iterator moves, and the fetcher reads them in
  // FeFetch only, which it enters at least a cycle later (from FeWaitTile):
  // registered, they are always current there (UcolsCurrent_A).
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      ucols_q <= '0; nr_m1_q <= '0; ng_m1_q <= '0;
    end else begin
      ucols_q <= ucols_d;
      nr_m1_q <= nr - 16'd1;
      ng_m1_q <= ng_tile - 16'd1;
    end
  end
  assign ncols     = skip_cols ? (LogReads+1)'(1) :
                     (32'(ucols_q) - 32'(u_q) >= InReads) ? (LogReads+1)'(InReads) : (LogReads+1)'(ucols_q - u_q);
  assign u_adv     = !skip_cols ? u_q + 16'(InReads) :
                     (kxc_q == g.k - 1) ? u_q + 16'(g.stride) - 16'(g.k) + 16'd1 : u_q + 16'd1;
  assign row_done  = (u_adv >= ucols_q);
  // row_done, kept in a register (RowDoneCurrent_A): the compare of the next
  // group's first column with the row's columns, fanned out to every enable
  // of the fetcher, was the block's longest path on ECP5. It is set as a
  // group becomes current: a row's first group from the column count (as a
  // tile starts from ucols_d, current there while ucols_q may still hold the
  // last tile's), a row's next group from u_adv advanced once more.
  logic        row_done_q;
  logic [3:0]  kxc_adv;                    // kxc_q after this group
  logic [15:0] first_adv, u_adv2;          // the columns after a row's first group, after the next
  assign kxc_adv   = (kxc_q == g.k - 1) ? '0 : kxc_q + 1'b1;
  assign first_adv = !skip_cols ? 16'(InReads) : (g.k == 4'd1) ? 16'(g.stride) : 16'd1;
  assign u_adv2    = !skip_cols ? u_adv + 16'(InReads) :
                     (kxc_adv == g.k - 1) ? u_adv + 16'(g.stride) - 16'(g.k) + 16'd1 : u_adv + 16'd1;

  // Incremental addresses and coordinates: the word read this cycle is
  // raddr_q = gl*IH*IW + (py*s + ky)*IW + u (tile-relative), at input row
  // y_q and column x_q (absolute, signed: padding makes them negative).
  logic [31:0] plane_q, s_iw_q;            // IH*IW and s*IW of the tile: layer constants
  logic        plane_ok_q;                 // plane_q holds this layer's
  logic [31:0] gbase_q, rbase_q, raddr_q;  // addresses of (gl), (gl, py), the read
  logic signed [19:0] y_tile, x_tile;      // the tile's first input row and column
  // A decomposed kernel (g.ksub > 1) runs its ksub x ksub sub-windows of 3x3
  // one after the other, each over all the tile's ci-groups, like that many
  // more ci-groups: sub-window (a, b) reads input rows 3a + ky and columns
  // 3b + kx of each pixel's k x k footprint, and its weights follow the
  // previous sub-window's (golden.isa.DECOMPOSED: [sub][channel][3x3]).
  logic [1:0]  sa_q, sb_q;                 // the sub-window's row and column (0 .. ksub-1)
  logic [3:0]  suby_q, subx_q;             // 3a and 3b
  logic [31:0] subrow_off_q;               // 3a * IW: the sub-window row's first word
  // depthwise: the sub-window's first weight word of a channel (its taps
  // packed into whole words a sub-window: sub * ceil(9/PN))
  logic [31:0] subw_q;
  logic [31:0] dw_win_words;               // ceil(K*K/PN): a depthwise window's weight words
  assign dw_win_words = (32'(g.k2) + 32'(PN - 1)) >> LogPN;
  logic        sub_first, sub_last, sb_last;
  // The sub-window's first input row and column, and the same a cycle
  // later: the fetcher reads the registered copies (the sum sat on the
  // engine's longest ECP5 path, from the geometry to the issue stage). They
  // are current wherever read: a group's end is at least a cycle after the
  // tile starts (tile_go, which takes the tile's origin itself) and after a
  // sub-window's (its k = 3 rows come first); SubOriginCurrent_A.
  logic signed [19:0] y_sub, x_sub, y_sub_q, x_sub_q;
  logic [15:0] ng_subs;                    // the tile's ci-groups times the sub-windows
  assign ng_subs   = uz_util_pkg::mul_subs(ng_tile, g.ksub);   // (Icarus 11 casts no call)
  assign sb_last   = (32'(sb_q) == 32'(g.ksub) - 1);
  assign sub_first = (sa_q == '0) && (sb_q == '0);
  assign sub_last  = (32'(sa_q) == 32'(g.ksub) - 1) && sb_last;
  assign y_sub     = y_tile + $signed({16'b0, suby_q});
  assign x_sub     = x_tile + $signed({16'b0, subx_q});
  logic signed [19:0] ybase_q, y_q, x_q;
  // IH*IW on a shared two-cycle multiplier as the layer starts; the first
  // tile waits for it (the loader takes far longer to fill it).
  logic        plane_done, plane_req;
  logic [31:0] plane_p;
  assign plane_req = !plane_ok_q && (fe_state_q == FeWaitTile);
  uz_seq_mul u_plane_mul (
    .clk_i, .rst_ni, .clear_i(abort_i || start_i), .req_i(plane_req),
    .a_i(32'(g.ih_t)), .b_i(g.iw_t), .done_o(plane_done), .p_o(plane_p)
  );
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      plane_ok_q <= 1'b0;
      plane_q    <= '0;
    end else if (abort_i || start_i) begin
      plane_ok_q <= 1'b0;
    end else if (plane_done) begin
      plane_ok_q <= 1'b1;
      plane_q    <= plane_p;
    end
  end
  always_ff @(posedge clk_i) begin
    s_iw_q <= mul_stride(32'(g.iw_t), g.stride);
  end
  assign y_tile = $signed({4'b0, 16'(mul_stride(32'(r0), g.stride))}) - $signed({16'b0, g.pad_t});
  assign x_tile = $signed({4'b0, 16'(mul_stride(32'(c0), g.stride))}) - $signed({16'b0, g.pad_l});
  // A row whose last column group is right padding only (a 7-pixel row at
  // K = 3: columns -1 .. 7 in groups of 4, the last holding column 7 alone)
  // reads nothing there, yet the group would cost K cycles and a slot: with
  // two slots, the next row's first group then waits for the window to
  // drain the row. The group before it takes its columns instead (its slot
  // holds up to 2 * InReads, those past InReads zeros), so the row ends a
  // group early. The same in every row of a tile (not with sub-windows):
  // fold_q and fold_u_q, that group's first column, set as the tile starts;
  // fold_cur_q, the current group is that one.
  logic        fold_q, fold_cur_q, fold_d;
  logic [15:0] fold_u_q, u_last_d;
  assign u_last_d = (ucols_d - 16'd1) & ~16'(InReads - 1);   // the row's last group's first column
  assign fold_d   = !skip_cols && (g.ksub == 3'd1) && (u_last_d >= 16'(InReads)) &&
                    (x_tile + $signed({4'b0, u_last_d}) >= $signed({4'b0, g.in_w}));
  always_ff @(posedge clk_i) begin
    y_sub_q <= y_sub;
    x_sub_q <= x_sub;
  end

  // Column i of the group is read when it exists and lies inside the input
  // (else it is padding: zeros).
  logic [InReads-1:0] col_read;
  always_comb begin
    for (int i = 0; i < InReads; i++) begin
      col_read[i] = (i < 32'(ncols)) && (y_q >= 0) && (y_q < $signed({4'b0, g.in_h})) &&
                    (x_q + 20'(i) >= 0) && (x_q + 20'(i) < $signed({4'b0, g.in_w}));
    end
  end

  // Real channels of this group (input selection packs only these): of the
  // channels from the group's first, i0 + gl*PN, up to in_c. The count left,
  // in_c - i0 - gl*PN, is a register (set as the tile starts, less PN a
  // ci-group): the add and compares from gl_q were on the path to the slot's
  // step count (ChanLeftCurrent_A).
  logic signed [17:0] chan_left_q;
  logic [15:0]    cg;
  logic [WinAw:0] lane_limit;
  always_comb begin
    if (chan_left_q <= 18'sd0)                  cg = '0;
    else if (chan_left_q >= $signed(18'(PN)))   cg = 16'(PN);
    else                                   cg = 16'(chan_left_q);
    if (g.dw)         lane_limit = (WinAw+1)'(g.k2);
    else if (g.insel) lane_limit = (WinAw+1)'(mul_k2(32'(cg), g.k));
    else              lane_limit = (WinAw+1)'(PN * 32'(g.k2));
  end

  row_meta_t new_meta;
  always_comb begin
    new_meta            = '0;
    new_meta.hw         = hw_q;
    new_meta.ho         = ho_q;
    // depthwise: the first of the Ratio windows of an oc-group starts it
    new_meta.init       = it_first_ti && sub_first && (g.dw ? (gsub_q == '0) : (gl_q == '0));
    new_meta.last_row   = (py_q == nr_m1_q) && (gl_q == ng_m1_q) && sub_last;
    new_meta.out_last   = it_last_ti;
    new_meta.gquo       = gquo_q;
    new_meta.gsub       = gsub_q;
    new_meta.nq         = g.dw ? 16'd1 : nq_tile;
    new_meta.q0         = g.dw ? gquo_q : '0;
    new_meta.ng         = ng_tile;
    new_meta.nc         = nc;
    new_meta.pix_row    = pix_row_q;
    new_meta.wbase      = wgl_q;
    new_meta.wq_step    = wq_step_q;
    new_meta.acc0       = g.dw ? accg_q : '0;
    new_meta.lane_limit = lane_limit;
    new_meta.steps      = 8'((lane_limit + (WinAw+1)'(PN - 1)) >> LogPN);
  end

  // Column slots: two, so one fills while the window takes the other.
  localparam int ColW = PN * DataWidth;
  logic [ColW-1:0]   cp_q [2][InReads][MaxK];  // [slot][column of the group][input row]
  logic [1:0]        cp_full_q;
  logic [LogReads+1:0] cp_ncols_q [2];         // columns in the slot (with a folded padding group's)
  logic [1:0]        cp_first_q;               // the slot starts a row
  row_meta_t       cp_meta_q [2];
  logic              fslot_q;              // slot being filled
  logic              cslot_q;              // slot the window takes from next
  logic [LogReads+1:0] ccol_q;             // and its column

  // The word read last cycle lands in its slot.
  logic               wr_pending_q, wr_slot_q, wr_last_q;
  logic [InReads-1:0] wr_read_q;           // columns read (the others are padding or absent)
  logic [3:0]         wr_ky_q;

  logic win_shift, slot_pop;               // window side (below)
  logic slot_free, fe_step, tile_go, it_last_unit;
  // A slot may be refilled in the cycle its last column is taken: the first
  // word lands a cycle later.
  assign slot_free = !cp_full_q[fslot_q] && !(wr_pending_q && wr_slot_q == fslot_q && !wr_last_q) ||
                     (slot_pop && cslot_q == fslot_q);
  // The half is full, or the loader is filling its input (the tile's bias
  // and weights are in by then): reads then wait for their words (in_ready).
  logic filling;
  assign filling = fill_valid_i && (fill_half_i == hw_q);
  // The words a read takes are in: the half is full, the read is all
  // padding, or the loader has written past them (InReads words from raddr_q,
  // some of them perhaps padding: a wait of a few words at worst). The
  // tile's last read waits for the full half, so the release that follows
  // it never comes before the loader is done (a strided tile need not read
  // its last input words).
  logic in_ready;
  assign in_ready  = tile_full_i[hw_q] || (!(ky_q == g.k - 1 && it_last_unit) && ((col_read == '0) ||
                     (filling && ({1'b0, raddr_q[InAw-2:0]} + InAw'(InReads) <= {1'b0, fill_addr_i}))));
  assign fe_step   = (fe_state_q == FeFetch) && ((ky_q != '0) || slot_free) && in_ready;
  assign it_last_unit = (row_done_q || fold_cur_q) && (py_q == nr_m1_q) && (gl_q == ng_m1_q) && sub_last;

  // A half's full flag stays set until the issue stage releases the tile in
  // it, so with tiles of one or two windows the fetcher could come back to
  // that half while it still holds the previous tile (and an accumulator
  // half while its output tile is still being summed). A half the fetcher
  // has taken is therefore busy until its full flag falls (released by the
  // issue stage, or drained by the write-back).
  logic [1:0] in_busy_q, out_busy_q, tile_full_prev_q, out_full_prev_q;
  assign tile_go = it_valid && plane_ok_q && (tile_full_i[hw_q] || filling) && !in_busy_q[hw_q] &&
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
      if (fe_state_q == FeWaitTile && tile_go) begin
        in_busy_q[hw_q] <= 1'b1;
        if (it_first_ti) out_busy_q[ho_q] <= 1'b1;
      end
    end
  end

  always_comb begin
    fe_state_d = fe_state_q;
    unique case (fe_state_q)
      FeIdle:     ;
      FeWaitTile: if (!it_valid) fe_state_d = FeIdle;
                  else if (tile_go) fe_state_d = FeFetch;
      FeFetch:    if (fe_step && ky_q == g.k - 1 && it_last_unit) fe_state_d = FeWaitTile;
      // unreachable: every encoding of the state is an arm above
      /* verilator coverage_off */
      default:    fe_state_d = FeIdle;
      /* verilator coverage_on */
    endcase
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      fe_state_q <= FeIdle;
      gl_q <= '0; py_q <= '0; u_q <= '0; ky_q <= '0; kxc_q <= '0;
      gquo_q <= '0; gsub_q <= '0;
      hw_q <= 1'b0; ho_q <= 1'b0; fslot_q <= 1'b0;
      gbase_q <= '0; rbase_q <= '0; raddr_q <= '0; pix_row_q <= '0;
      wgl_q <= '0; accg_q <= '0; wq_step_q <= '0; chan_left_q <= '0; row_done_q <= 1'b0;
      fold_q <= 1'b0; fold_cur_q <= 1'b0; fold_u_q <= '0;
      ybase_q <= '0; y_q <= '0; x_q <= '0;
      sa_q <= '0; sb_q <= '0; suby_q <= '0; subx_q <= '0; subrow_off_q <= '0; subw_q <= '0;
      wr_pending_q <= 1'b0;
      wr_slot_q <= 1'b0; wr_read_q <= '0; wr_last_q <= 1'b0;
      wr_ky_q <= '0;
      cp_first_q <= '0;
      for (int b = 0; b < 2; b++) cp_ncols_q[b] <= '0;
      for (int b = 0; b < 2; b++) cp_meta_q[b] <= '0;
    end else if (abort_i || start_i) begin
      fe_state_q   <= start_i ? FeWaitTile : FeIdle;
      hw_q <= 1'b0; ho_q <= 1'b0; fslot_q <= 1'b0;
      wr_pending_q <= 1'b0;
    end else begin
      fe_state_q   <= fe_state_d;
      wr_pending_q <= fe_step;
      if (fe_state_q == FeWaitTile && tile_go) begin
        gl_q <= '0; py_q <= '0; u_q <= '0; ky_q <= '0; kxc_q <= '0;
        gquo_q <= '0; gsub_q <= '0;
        gbase_q <= '0; rbase_q <= '0; raddr_q <= '0; pix_row_q <= '0;
        wgl_q <= '0; accg_q <= '0;
        sa_q <= '0; sb_q <= '0; suby_q <= '0; subx_q <= '0; subrow_off_q <= '0; subw_q <= '0;
        // once per tile, a product of a group count (of every sub-window)
        // and K*K (7 bits)
        wq_step_q <= mul_k2(32'(ng_subs), g.k);
        row_done_q <= (first_adv >= ucols_d);
        fold_q     <= fold_d;
        fold_u_q   <= u_last_d - 16'(InReads);
        fold_cur_q <= fold_d && (u_last_d == 16'(InReads));
        chan_left_q <= $signed({2'b0, g.in_c}) - $signed({2'b0, i0});
        ybase_q <= y_tile; y_q <= y_tile; x_q <= x_tile;
      end
      if (fe_step) begin
        if (ky_q == '0) begin
          cp_meta_q[fslot_q]  <= new_meta;
          cp_ncols_q[fslot_q] <= fold_cur_q ? (LogReads+2)'(ucols_q - u_q) : (LogReads+2)'(ncols);
          cp_first_q[fslot_q] <= (u_q == '0);
        end
        wr_slot_q  <= fslot_q;
        wr_ky_q    <= ky_q;
        wr_read_q  <= col_read;
        wr_last_q  <= (ky_q == g.k - 1);
        if (ky_q != g.k - 1) begin
          ky_q    <= ky_q + 1'b1;
          raddr_q <= raddr_q + 32'(g.iw_t);
          y_q     <= y_q + 20'sd1;
        end else begin
          // the group is read: on to the next group, row, ci-group or tile
          ky_q    <= '0;
          fslot_q <= !fslot_q;
          y_q     <= ybase_q;
          row_done_q <= (row_done_q || fold_cur_q) ? (first_adv >= ucols_q) : (u_adv2 >= ucols_q);
          fold_cur_q <= fold_q && ((row_done_q || fold_cur_q) ? (fold_u_q == '0) : (u_adv == fold_u_q));
          if (!row_done_q && !fold_cur_q) begin
            u_q     <= u_adv;
            kxc_q   <= kxc_adv;
            raddr_q <= rbase_q + 32'(u_adv);
            x_q     <= x_sub_q + $signed({4'b0, u_adv});
          end else begin
            u_q <= '0; kxc_q <= '0;
            x_q <= x_sub_q;
            if (py_q != nr_m1_q) begin
              py_q      <= py_q + 1'b1;
              pix_row_q <= pix_row_q + OutAw'(g.tc);
              rbase_q   <= rbase_q + s_iw_q;
              raddr_q   <= rbase_q + s_iw_q;
              ybase_q   <= ybase_q + $signed({17'b0, g.stride});
              y_q       <= ybase_q + $signed({17'b0, g.stride});
            end else begin
              py_q      <= '0;
              pix_row_q <= '0;
              ybase_q   <= y_sub_q;
              y_q       <= y_sub_q;
              if (gl_q != ng_m1_q) begin
                gl_q    <= gl_q + 1'b1;
                if (32'(gsub_q) == Ratio - 1) begin
                  gsub_q <= '0;
                  gquo_q <= gquo_q + 1'b1;
                end else begin
                  gsub_q <= gsub_q + 1'b1;
                end
                chan_left_q <= chan_left_q - $signed(18'(PN));
                // depthwise: the oc-group's weights and accumulators move
                // on after its Ratio windows
                if (!g.dw || 32'(gsub_q) == Ratio - 1) begin
                  wgl_q  <= wgl_q + 32'(g.dw ? g.wsteps : g.k2);
                  accg_q <= accg_q + g.trtc;
                end
                gbase_q <= gbase_q + plane_q;
                rbase_q <= gbase_q + plane_q;
                raddr_q <= gbase_q + plane_q;
              end else if (!sub_last) begin
                // the next sub-window: the ci-groups again, from its
                // corner of the footprint; its weights follow on
                gl_q <= '0;
                gquo_q <= '0; gsub_q <= '0;
                chan_left_q <= $signed({2'b0, g.in_c}) - $signed({2'b0, i0});
                // dense: the next group's weights; depthwise: the sub-window's
                // words of the first oc-group, its accumulators from the first
                wgl_q  <= g.dw ? subw_q + dw_win_words : wgl_q + 32'(g.k2);
                subw_q <= subw_q + dw_win_words;
                accg_q <= '0;
                if (sb_last) begin
                  sa_q <= sa_q + 1'b1; sb_q <= '0;
                  suby_q <= suby_q + 4'd3; subx_q <= '0;
                  subrow_off_q <= subrow_off_q + mul_stride(32'(g.iw_t), 3'd3);
                  gbase_q <= subrow_off_q + mul_stride(32'(g.iw_t), 3'd3);
                  rbase_q <= subrow_off_q + mul_stride(32'(g.iw_t), 3'd3);
                  raddr_q <= subrow_off_q + mul_stride(32'(g.iw_t), 3'd3);
                  ybase_q <= y_sub_q + 20'sd3;
                  y_q     <= y_sub_q + 20'sd3;
                  x_q     <= x_sub_q - $signed({16'b0, subx_q});
                end else begin
                  sb_q <= sb_q + 1'b1;
                  subx_q <= subx_q + 4'd3;
                  gbase_q <= subrow_off_q + 32'(subx_q) + 32'd3;
                  rbase_q <= subrow_off_q + 32'(subx_q) + 32'd3;
                  raddr_q <= subrow_off_q + 32'(subx_q) + 32'd3;
                  x_q     <= x_sub_q + 20'sd3;
                end
              end else begin
                // tile done: on to the next one (other half)
                gl_q <= '0;
                gquo_q <= '0; gsub_q <= '0;
                sa_q <= '0; sb_q <= '0; suby_q <= '0; subx_q <= '0; subrow_off_q <= '0; subw_q <= '0;
                hw_q <= !hw_q;
                if (it_last_ti) ho_q <= !ho_q;
              end
            end
          end
        end
      end
    end
  end
  assign it_next = fe_step && (ky_q == g.k - 1) && it_last_unit;

  assign inb_rd_en_o   = fe_step ? col_read : '0;
  assign inb_rd_addr_o = InAw'({hw_q, (InAw-1)'(raddr_q)});

  // Slot flags: full once the group's last row has landed, empty once the
  // window has taken its columns.
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      cp_full_q <= '0;
    end else if (abort_i || start_i) begin
      cp_full_q <= '0;
    end else begin
      if (slot_pop) cp_full_q[cslot_q] <= 1'b0;
      if (wr_pending_q && wr_last_q) cp_full_q[wr_slot_q] <= 1'b1;
    end
  end

  // The arriving words (zeros for padding) go to their row of the slot.
  always_ff @(posedge clk_i) begin
    if (wr_pending_q) begin
      for (int r = 0; r < MaxK; r++) begin
        if (wr_ky_q == 4'(r)) begin
          for (int i = 0; i < InReads; i++) begin
            cp_q[wr_slot_q][i][r] <= wr_read_q[i] ? inb_rd_data_i[i*ColW +: ColW] : '0;
          end
        end
      end
    end
  end

  // ---------------------------------------------------------- window
  // win_q[ky][x] holds the last MaxK columns taken, the newest at x = MaxK-1:
  // tap (ky, kx) of a K x K window is win_q[ky][MaxK-K+kx]. Columns only
  // shift (fixed connections, no run-time write index). The window is whole
  // when K columns of a row (then s more per pixel) have shifted in; it may
  // take the next pixel's first column in the cycle its last step issues.
  logic [ColW-1:0] win_q [MaxK][MaxK];
  logic [3:0]      need_q, need_d, need_base;  // columns still to shift in
  logic            wfull_q;                    // the window holds a whole pixel
  logic [15:0]     px_q;                       // its pixel in the row
  row_meta_t       rmeta_q;                    // its row
  logic            win_consumed;               // issue stage: the pixel's last step
  logic            row_last_px;
  logic [3:0]      need_next_px;
  logic            need_nz_q;                  // need_q != 0
  logic            row_load;                   // a row's first column shifts in
  logic            k_load_ok_q;                // the layer's rows load their K first columns at once
  // the meta of the slot the window takes from (only its flags are read)
  /* verilator lint_off UNUSEDSIGNAL */
  row_meta_t       cmeta;
  /* verilator lint_on UNUSEDSIGNAL */
  logic            c_nq_one, c_nc_one, c_steps_one;   // the row's sizes are 1
  assign cmeta       = cp_meta_q[cslot_q];
  assign c_nq_one    = (cmeta.nq == 16'd1);
  assign c_nc_one    = (cmeta.nc == 16'd1);
  assign c_steps_one = (cmeta.steps == 8'd1);

  // The window's shift enable reaches every window flip-flop: it is made of
  // registered flags only (row_last_px_q, the issue stage's last_t_q and
  // last_q_q, need_nz_q), not of compares against the row's sizes. A
  // consumed window always needs a new column (K and the stride are at
  // least 1: NeedNextNonZero_A), so need_base != 0 is
  // win_consumed || need_q != 0.
  logic            row_last_px_q;              // px_q == rmeta_q.nc - 1
  assign row_last_px  = row_last_px_q;
  assign need_next_px = skip_cols ? g.k : 4'(g.stride);
  assign need_base    = !win_consumed ? need_q : row_last_px ? g.k : need_next_px;
  assign win_shift    = cp_full_q[cslot_q] && (win_consumed || need_nz_q);
  assign row_load     = win_shift && cp_first_q[cslot_q] && (ccol_q == '0);
  // A row's first K columns load at once where its first column group
  // holds them (K up to InReads, columns not skipped): the row then costs
  // no window fill, only its pixels (without it, K - 1 cycles a row: 14%
  // of a 14-wide depthwise row).
  logic            row_k_load;                 // this shift loads K columns
  logic [3:0]      cols_taken;
  assign row_k_load   = row_load && k_load_ok_q;
  assign cols_taken   = row_k_load ? g.k : 4'd1;
  assign need_d       = need_base - (win_shift ? cols_taken : 4'd0);
  assign slot_pop     = win_shift && (32'(ccol_q) + 32'(cols_taken) == 32'(cp_ncols_q[cslot_q]));

  // a layer constant (uz_layer's registered geometry), read from the first
  // row load on, long after the start
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) k_load_ok_q <= 1'b0;
    else         k_load_ok_q <= !skip_cols && (g.k > 4'd1) && (32'(g.k) <= InReads);
  end
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      need_q <= '0; need_nz_q <= 1'b0; wfull_q <= 1'b0; px_q <= '0; cslot_q <= 1'b0; ccol_q <= '0;
      rmeta_q <= '0; row_last_px_q <= 1'b1;
    end else if (abort_i || start_i) begin
      need_q <= g.k; need_nz_q <= (g.k != '0); wfull_q <= 1'b0; px_q <= '0; cslot_q <= 1'b0; ccol_q <= '0;
    end else begin
      need_q    <= need_d;
      need_nz_q <= (need_d != '0);
      wfull_q   <= (need_d == '0) && (win_shift || (wfull_q && !win_consumed));
      if (win_consumed && !row_last_px) begin
        px_q          <= px_q + 1'b1;
        row_last_px_q <= (px_q + 16'd2 == rmeta_q.nc);
      end
      if (win_shift) begin
        if (row_load) begin
          rmeta_q       <= cp_meta_q[cslot_q];
          px_q          <= '0;
          row_last_px_q <= c_nc_one;
        end
        if (slot_pop) begin
          cslot_q <= !cslot_q;
          ccol_q  <= '0;
        end else begin
          ccol_q  <= ccol_q + (LogReads+2)'(cols_taken);
        end
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (win_shift) begin
      for (int r = 0; r < MaxK; r++) begin
        for (int x = 0; x < MaxK - 1; x++) win_q[r][x] <= win_q[r][x+1];
        win_q[r][MaxK-1] <= (ccol_q >= (LogReads+2)'(InReads)) ? '0 : cp_q[cslot_q][LogReads'(ccol_q)][r];
        // a row's K first columns at once: column x of the group to the
        // window's column MaxK - K + x (the other columns are not read)
        if (row_k_load) begin
          for (int ki = 0; ki < NumK; ki++) begin
            if (kval(ki) > 1 && kval(ki) <= InReads && kval(ki) <= MaxK && 32'(g.k) == kval(ki)) begin
              for (int x = 0; x < InReads; x++) begin
                if (x < kval(ki)) win_q[r][MaxK - kval(ki) + x] <= cp_q[cslot_q][x][r];
              end
            end
          end
        end
      end
    end
  end

  // Window metadata for the issue stage.
  typedef struct packed {
    logic        hw;
    logic        ho;
    logic        init;
    logic        tile_last;     // last window of the tile
    logic        out_last;
    logic [15:0] gquo;
    logic [SubW-1:0] gsub;
    logic [15:0] nq;
    logic [15:0] q0;
    logic [15:0] ng;
    logic [OutAw-1:0] pix;      // pixel index in the output tile
    logic [31:0] wbase;
    logic [31:0] wq_step;
    logic [31:0] acc0;
    logic [7:0]  steps;
    logic [WinAw:0] lane_limit;
  } win_meta_t;
  win_meta_t m;
  always_comb begin
    m            = '0;
    m.hw         = rmeta_q.hw;
    m.ho         = rmeta_q.ho;
    m.init       = rmeta_q.init;
    m.tile_last  = rmeta_q.last_row && row_last_px;
    m.out_last   = rmeta_q.out_last;
    m.gquo       = rmeta_q.gquo;
    m.gsub       = rmeta_q.gsub;
    m.nq         = rmeta_q.nq;
    m.q0         = rmeta_q.q0;
    m.ng         = rmeta_q.ng;
    m.pix        = rmeta_q.pix_row + OutAw'(px_q);
    m.steps      = rmeta_q.steps;
    m.wbase      = rmeta_q.wbase;
    m.wq_step    = rmeta_q.wq_step;
    m.acc0       = rmeta_q.acc0;
    m.lane_limit = rmeta_q.lane_limit;
  end

  // ------------------------------------------------------------- issue
  // Operands. Lane j at step t takes f = t*PN + j of the window (f = c*K*K +
  // tap; input selection packs a group's real channels the same way), and in
  // a depthwise layer PE p lane j takes tap t*PN + j of channel p. Each
  // lane's candidates for every legal K and step are fixed wires of the
  // window; the step and K only select among them.
  logic [7:0] t_q;
  logic [PN*DataWidth-1:0]    op_dense;
  logic [PM*PN*DataWidth-1:0] op_dw;
  for (genvar j = 0; j < PN; j++) begin : gen_lane
    logic [DataWidth-1:0] per_k [NumK];
    for (genvar ki = 0; ki < NumK; ki++) begin : gen_k
      localparam int K  = kval(ki);
      localparam int K2 = K * K;
      localparam int Aw = (K2 > 1) ? $clog2(K2) : 1;
      logic [DataWidth-1:0] cand [2**Aw];   // a power of two: any index is in range
      for (genvar t = 0; t < 2**Aw; t++) begin : gen_t
        localparam int F = t * PN + j;
        if (t < K2) begin : gen_tap
          assign cand[t] = win_q[(F % K2) / K][MaxK - K + (F % K2) % K][(F / K2) * DataWidth +: DataWidth];
        end else begin : gen_off
          assign cand[t] = '0;
        end
      end
      assign per_k[ki] = (32'(t_q) < K2) ? cand[Aw'(t_q)] : '0;
    end
    always_comb begin
      op_dense[j*DataWidth +: DataWidth] = '0;
      for (int ki = 0; ki < NumK; ki++) begin
        if (32'(g.k) == kval(ki)) op_dense[j*DataWidth +: DataWidth] = per_k[ki];
      end
    end
  end
  for (genvar p = 0; p < PM; p++) begin : gen_dw_pe
    for (genvar j = 0; j < PN; j++) begin : gen_lane
      logic [DataWidth-1:0] per_k [NumK];
      for (genvar ki = 0; ki < NumK; ki++) begin : gen_k
        localparam int K     = kval(ki);
        localparam int K2    = K * K;
        localparam int Steps = (K2 + PN - 1) / PN;
        localparam int Aw    = (Steps > 1) ? $clog2(Steps) : 1;
        logic [DataWidth-1:0] cand [2**Aw];
        for (genvar t = 0; t < 2**Aw; t++) begin : gen_t
          localparam int Tap = t * PN + j;
          if (t < Steps && Tap < K2) begin : gen_tap
            assign cand[t] = win_q[Tap / K][MaxK - K + Tap % K][(p % PN) * DataWidth +: DataWidth];
          end else begin : gen_off    // lanes past the taps are off
            assign cand[t] = '0;
          end
        end
        assign per_k[ki] = (32'(t_q) < Steps) ? cand[Aw'(t_q)] : '0;
      end
      // PE p serves the window's channel p mod PN when the window is the
      // (p / PN)-th of its oc-group; otherwise it adds nothing
      logic pe_on;
      assign pe_on = 32'(m.gsub) == p / PN;
      always_comb begin
        op_dw[(p*PN+j)*DataWidth +: DataWidth] = '0;
        for (int ki = 0; ki < NumK; ki++) begin
          if (32'(g.k) == kval(ki) && pe_on) op_dw[(p*PN+j)*DataWidth +: DataWidth] = per_k[ki];
        end
      end
    end
  end

  logic [15:0] q_q;
  logic        issue;
  assign issue = wfull_q;
  // "Last step" and "last oc-group" are flags kept with t_q and q_q (compared
  // one step ahead), and "first oc-group" likewise: the compares against the
  // window's sizes, through win_consumed to the window's shift enable, were
  // the block's longest path (18.9 ns on ECP5). A row's first column loads
  // the flags of its sizes; the issue stage is then at its first step
  // (IssueFlagsCurrent_A checks the flags wherever they are read).
  logic  last_t_q, last_q_q, q_first_q;
  wire   last_t = last_t_q;
  wire   last_q = last_q_q;
  assign win_consumed = issue && last_t && last_q;
  logic [15:0] q_abs;       // oc-group in the tile
  assign q_abs = q_q + m.q0;
  // Weight and accumulator words of oc-group q: counters from the window's
  // bases, stepped when q advances.
  logic [31:0] wq_q, accq_q, wq_base, accq_base;
  assign wq_base   = q_first_q ? m.wbase : wq_q;
  assign accq_base = q_first_q ? m.acc0 : accq_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      q_q <= '0; t_q <= '0; wq_q <= '0; accq_q <= '0;
      last_t_q <= 1'b1; last_q_q <= 1'b1; q_first_q <= 1'b1;
    end else if (abort_i || start_i) begin
      q_q <= '0; t_q <= '0; q_first_q <= 1'b1;
    end else begin
      if (issue) begin
        if (!last_t) begin
          t_q      <= t_q + 1'b1;
          last_t_q <= (t_q + 8'd2 == m.steps);
        end else begin
          t_q      <= '0;
          last_t_q <= (rmeta_q.steps == 8'd1);
          if (!last_q) begin
            q_q       <= q_q + 1'b1;
            last_q_q  <= (q_q + 16'd2 == m.nq);
            q_first_q <= 1'b0;
            wq_q      <= wq_base + m.wq_step;
            accq_q    <= accq_base + g.trtc;
          end else begin
            q_q       <= '0;
            last_q_q  <= (rmeta_q.nq == 16'd1);
            q_first_q <= 1'b1;
          end
        end
      end
      // a new row's sizes (its first window issues at least a cycle later)
      if (row_load) begin
        last_t_q <= c_steps_one;
        last_q_q <= c_nq_one;
      end
    end
  end

  /* verilator lint_off UNUSEDSIGNAL */
  logic [31:0] wgt_word;  // computed in 32 bits; the buffer uses the low bits
  /* verilator lint_on UNUSEDSIGNAL */
  assign wgt_word      = wq_base + 32'(t_q);
  assign wgt_rd_en_o   = issue && !g.pool_kind;
  assign wgt_rd_addr_o = WgtAw'({m.hw, (WgtAw-1)'(wgt_word)});

  // Stage 1: operands registered, weights arrive from the buffer.
  localparam int TagWidth = 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + OutAw + BiasAw - 1;
  typedef struct packed {
    logic             first_t;
    logic             last_t;
    logic             init;
    logic             hw;
    logic             ho;
    logic             tile_end;   // last step of the tile
    logic             row_end;    // last step of a row's last pixel
    logic             out_last;
    logic [OutAw-1:0] acc_addr;
    logic [BiasAw-2:0] bias_word;
  } tag_t;

  logic                     s1_valid_q;
  logic [PM*PN*DataWidth-1:0] s1_x_q;
  logic [PN-1:0]            s1_en_q;
  tag_t                     s1_tag_q;
  logic [PM-1:0]            s1_pool_one_q;   // POOL: PE p's lane p mod PN takes weight 1

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
      end
      s1_x_q <= g.dw ? op_dw : {PM{op_dense}};
      s1_tag_q.first_t   <= (t_q == '0);
      s1_tag_q.last_t    <= last_t;
      s1_tag_q.init      <= m.init;
      s1_tag_q.hw        <= m.hw;
      s1_tag_q.ho        <= m.ho;
      s1_tag_q.tile_end  <= m.tile_last && last_t && last_q;
      s1_tag_q.row_end   <= row_last_px && last_t && last_q;
      s1_tag_q.out_last  <= m.out_last;
      s1_tag_q.acc_addr  <= OutAw'(accq_base + 32'(m.pix));
      s1_tag_q.bias_word <= (BiasAw-1)'(q_abs);
      for (int p = 0; p < PM; p++)
        s1_pool_one_q[p] <= (q_q == m.gquo) && (32'(m.gsub) == p / PN);
    end
  end

  // A POOL layer multiplies by the identity: output channel q*PM+p takes
  // input channel gl*PN+j when the two are equal, nothing is loaded. That
  // is q = gl / Ratio, p / PN = gl mod Ratio and j = p mod PN: compares of
  // counters, made at issue (s1_pool_one_q). The POOL flag has a kept copy
  // per PE lane: one register selecting all PM*PN*DataWidth weight bits was
  // the compute's longest path on ECP5, nearly all routing.
  logic [PM*PN*DataWidth-1:0] s1_w;
  for (genvar p = 0; p < PM; p++) begin : gen_pool_pe
    for (genvar j = 0; j < PN; j++) begin : gen_pool_lane
      logic pool_q;
      (* keep *)
      always_ff @(posedge clk_i) begin
        if (issue) pool_q <= g.pool_kind;
      end
      if (p % PN == j) begin : gen_one
        assign s1_w[(p*PN+j)*DataWidth +: DataWidth] =
          pool_q ? DataWidth'(s1_pool_one_q[p]) : wgt_rd_data_i[(p*PN+j)*DataWidth +: DataWidth];
      end else begin : gen_zero
        assign s1_w[(p*PN+j)*DataWidth +: DataWidth] =
          pool_q ? '0 : wgt_rd_data_i[(p*PN+j)*DataWidth +: DataWidth];
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
  // The bias is read as its step enters the PE array (stage 1), not as it
  // leaves: its alignment (a run-time shift, rounding and saturation) then
  // gets a cycle of its own, and the aligned words wait in a PeLatency-deep
  // line for A1, instead of adding to the accumulator write in A1.
  assign bias_rd_en_o   = s1_valid_q && s1_tag_q.last_t && s1_tag_q.init;
  assign bias_rd_addr_o = BiasAw'({s1_tag_q.hw, s1_tag_q.bias_word});

  // Bias onto the accumulator's fractional length: the shared shift, its
  // amount decoded once (uz_shift_round_sat's t = clamp(shift + AccWidth, 0,
  // DataWidth + AccWidth)) and registered: a layer constant, read at the
  // first bias read, long after the start (BiasShiftDecodeCurrent_A).
  localparam int BsZw = DataWidth + AccWidth;
  localparam int BsTw = $clog2(BsZw + 1);
  /* verilator lint_off UNUSEDSIGNAL */
  logic [31:0]        bias_t_dec;   // whole, then narrowed (Icarus 11 casts no call)
  /* verilator lint_on UNUSEDSIGNAL */
  logic [BsTw-1:0]    bias_t_d, bias_t_q;
  assign bias_t_dec = uz_util_pkg::shift_decode(32'($signed(bias_shift_i)), AccWidth, BsZw);
  assign bias_t_d   = BsTw'(bias_t_dec);
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) bias_t_q <= '0;
    else         bias_t_q <= bias_t_d;
  end
  logic [PM*AccWidth-1:0] bias_aligned;
  for (genvar p = 0; p < PM; p++) begin : gen_bias
    uz_shift_round_sat #(.InWidth(DataWidth), .OutWidth(AccWidth), .ShiftWidth(BsTw), .PreDecoded(1'b1))
        u_bias_shift (
      .data_i (bias_rd_data_i[p*DataWidth +: DataWidth]),
      .shift_i(bias_t_q),
      .data_o (bias_aligned[p*AccWidth +: AccWidth])
    );
  end

  // bias_al_q[i]: aligned in the cycle after stage 1, i + 1 cycles ago.
  logic [PM*AccWidth-1:0] bias_al_q [PeLatency];
  always_ff @(posedge clk_i) begin
    bias_al_q[0] <= bias_aligned;
    for (int i = 1; i < PeLatency; i++) bias_al_q[i] <= bias_al_q[i-1];
  end

  logic [PM*AccWidth-1:0] a1_base;
  logic [PM*AccWidth-1:0] acc_wr_data_q;  // last word written, for forwarding
  always_comb begin
    if (a1_tag_q.init)  a1_base = bias_en_i ? bias_al_q[PeLatency-1] : '0;
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

  // Rows of each accumulator half written for the last time (a row's last
  // pixel accumulated), counted from the output tile's start: the count is
  // cleared as the write-back hands the half back (its full flag falls),
  // before the compute may take the half again.
  logic [15:0] out_rows_q [2];
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      out_rows_q[0] <= '0; out_rows_q[1] <= '0;
    end else if (abort_i || start_i) begin
      out_rows_q[0] <= '0; out_rows_q[1] <= '0;
    end else begin
      for (int h = 0; h < 2; h++) begin
        if (out_full_prev_q[h] && !out_full_i[h]) out_rows_q[h] <= '0;
        else if (a1_valid_q && a1_tag_q.row_end && a1_tag_q.ho == 1'(h)) out_rows_q[h] <= out_rows_q[h] + 1'b1;
      end
    end
  end
  assign out_rows_o = {out_rows_q[1], out_rows_q[0]};

  // Busy until the last tile has left the pipeline.
  logic busy_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) busy_q <= 1'b0;
    else if (abort_i) busy_q <= 1'b0;
    else if (start_i) busy_q <= 1'b1;
    else if (a1_valid_q && a1_tag_q.tile_end && !it_valid && fe_state_q == FeIdle) busy_q <= 1'b0;
  end
  assign busy_o     = busy_q;
  assign mac_step_o = issue;
  assign stall_o    = busy_q && !issue && (fe_state_q == FeWaitTile) && it_valid;

  // ---------------------------------------------------------------------------
  // Assertions (tests/testplan.md, "RTL assertions"): legal window-loader
  // state, window banks never overwritten while full, every buffer access
  // inside its half (the halves take the low address bits, so an address
  // beyond the half would alias silently).
  // ---------------------------------------------------------------------------
  `include "uz_assert.svh"
`ifndef UZ_NO_ASSERT
  `ASSERT_KNOWN(FeStateKnown_A, fe_state_q, clk_i, rst_ni)
  `ASSERT(FeStateLegal_A, 32'(fe_state_q) <= 32'(FeFetch), clk_i, rst_ni)
  // a column group never lands in a slot the window has not emptied
  `ASSERT(SlotNoOverwrite_A, !wr_pending_q || !cp_full_q[wr_slot_q], clk_i, rst_ni)
  `ASSERT(SlotRowInRange_A, !wr_pending_q || (wr_ky_q < g.k && 32'(g.k) <= MaxK), clk_i, rst_ni)
  `ASSERT(NeedInRange_A, need_q <= g.k || !busy_o, clk_i, rst_ni)
  // the registered row and tile sizes are current whenever the fetcher reads them
  logic sizes_current;
  assign sizes_current = (ucols_q == ucols_d) && (nr_m1_q == nr - 16'd1) && (ng_m1_q == ng_tile - 16'd1);
  `ASSERT(UcolsCurrent_A, fe_state_q != FeFetch || sizes_current, clk_i, rst_ni)
  `ASSERT(RowDoneCurrent_A, fe_state_q != FeFetch || row_done_q == row_done, clk_i, rst_ni)
  `ASSERT(GlSplitCurrent_A, 32'(gquo_q) * Ratio + 32'(gsub_q) == 32'(gl_q) && 32'(gsub_q) < Ratio,
          clk_i, rst_ni)
  `ASSERT(ChanLeftCurrent_A, fe_state_q != FeFetch ||
          chan_left_q == $signed({2'b0, g.in_c}) - $signed({2'b0, i0}) - $signed({2'b0, gl_q << LogPN}),
          clk_i, rst_ni)
  // a decomposed kernel's sub-window: in range, its corner and first word
  // counted right, a 3x3 window; the group's base word includes the corner
  `ASSERT(SubWindowCurrent_A, fe_state_q != FeFetch ||
          (32'(sa_q) < 32'(g.ksub) && 32'(sb_q) < 32'(g.ksub) && 32'(suby_q) == 3 * 32'(sa_q) &&
           32'(subx_q) == 3 * 32'(sb_q) && subrow_off_q == 32'(suby_q) * 32'(g.iw_t) &&
           (g.ksub == 3'd1 || (g.k == 4'd3 && !g.pool_kind))),
          clk_i, rst_ni)
  // a folded group is the row's second-to-last, and the last is padding only
  `ASSERT(FoldPaddingOnly_A, !(fe_step && ky_q == g.k - 1 && fold_cur_q) ||
          (!row_done_q && 32'(u_q) + 2 * InReads >= 32'(ucols_q) &&
           x_q + 20'(InReads) >= $signed({4'b0, g.in_w})), clk_i, rst_ni)
  // the registered sub-window origin is current where a group's end reads it
  `ASSERT(SubOriginCurrent_A, !(fe_step && ky_q == g.k - 1) || (x_sub_q == x_sub && y_sub_q == y_sub),
          clk_i, rst_ni)
  `ASSERT(GroupBaseCurrent_A, fe_state_q != FeFetch ||
          gbase_q == 32'(gl_q) * plane_q + subrow_off_q + 32'(subx_q), clk_i, rst_ni)
  `ASSERT(IssueFromWholeWindow_A, !mac_step_o || (wfull_q && need_q == '0), clk_i, rst_ni)
  // a row's first column arrives only into an empty window
  `ASSERT(RowStartsEmpty_A, !(win_shift && cp_first_q[cslot_q] && ccol_q == '0) || need_base == g.k, clk_i, rst_ni)
  // every word of a read lies inside the half
  for (genvar i = 0; i < InReads; i++) begin : gen_rd_check
    `ASSERT(InbRdInHalf_A, !inb_rd_en_o[i] || raddr_q + i < 32'(InBufWords), clk_i, rst_ni)
  end
  `ASSERT(WgtRdInHalf_A, !wgt_rd_en_o || wgt_word < 32'(WgtBufWords), clk_i, rst_ni)
  `ASSERT(BiasRdInHalf_A, !issue || 32'(q_abs) < 32'(BiasWords), clk_i, rst_ni)
  `ASSERT(AccAddrInHalf_A, !issue || 32'(q_abs) * g.trtc + 32'(m.pix) < 32'(OutBufWords), clk_i, rst_ni)
  // a depthwise window serves its own oc-group, which the tile holds
  `ASSERT(DwGroupInTile_A, !(issue && g.dw) || m.q0 < m.ng, clk_i, rst_ni)
  `ASSERT(PixInTile_A, !issue || 32'(rmeta_q.pix_row) + 32'(px_q) < 32'(OutBufWords), clk_i, rst_ni)
  `ASSERT_NEVER(ReleaseBothHalves_A, tile_release_o == 2'b11, clk_i, rst_ni)
  `ASSERT_INIT(SquashCoversPe_A, PeLatency <= 7)
  `ASSERT_NEVER(StartWhileSquashing_A, start_i && squash_q != '0, clk_i, rst_ni)
  `ASSERT_KNOWN(CpBusyKnown_A, busy_o, clk_i, rst_ni)
  `ASSERT_KNOWN(AccWrEnKnown_A, acc_wr_en_o, clk_i, rst_ni)
  // the issue and window flags equal the compares they replace wherever read
  // the registered row-load flag is the layer's wherever a row loads
  `ASSERT(KLoadOkCurrent_A, !row_load || k_load_ok_q == (!skip_cols && (g.k > 4'd1) && (32'(g.k) <= InReads)),
          clk_i, rst_ni)
  `ASSERT(IssueFlagsCurrent_A, !issue || (last_t_q == (t_q == m.steps - 8'd1) && last_q_q == (q_q == m.nq - 16'd1) &&
          q_first_q == (q_q == '0) && row_last_px_q == (px_q == rmeta_q.nc - 16'd1)), clk_i, rst_ni)
  `ASSERT(NeedNzCurrent_A, !busy_o || need_nz_q == (need_q != '0), clk_i, rst_ni)
  `ASSERT(NeedNextNonZero_A, !win_consumed || need_base != '0, clk_i, rst_ni)
  logic bias_rd_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) bias_rd_q <= 1'b0;
    else         bias_rd_q <= bias_rd_en_o;
  end
  `ASSERT(BiasShiftDecodeCurrent_A, !bias_rd_q || bias_t_q == bias_t_d, clk_i, rst_ni)
`endif
endmodule
