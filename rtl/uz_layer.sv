// One layer of the engine: geometry derived from the descriptor, the double
// buffers, and the three processes that share them — loader, compute,
// write-back (docs/architecture.md). Runs from start_i until done_o.
module uz_layer
  import uz_isa_pkg::*;
  import uz_util_pkg::*;
#(
  parameter int PM           = 16,
  parameter int PN           = 16,
  parameter int DataWidth    = 16,
  parameter int AccWidth     = 48,
  parameter int OvsfLen      = 16,
  parameter int AlphaWidth   = 16,
  parameter int AxiDataWidth = 128,
  parameter int GenLanes     = 8,
  parameter int InBufElems   = 65536,
  parameter int WgtBufElems  = 65536,
  parameter int OutBufElems  = 32768,
  parameter int BeatsWidth   = 24,
  parameter int MaxK         = 3,
  parameter int InReads      = 4       // input words the compute's column fetcher reads a cycle
) (
  input  logic                      clk_i,
  input  logic                      rst_ni,
  input  logic                      start_i,
  input  logic                      abort_i,
  input  logic [DescBits-1:0]       desc_i,      // stable while the layer runs
  input  logic [CheckGeomBits-1:0]  geom_i,      // its sizes (uz_check_geom_t) from uz_desc_check; stable likewise
  output logic                      done_o,      // pulse: every tile written back
  // read DMA
  output logic                      rd_cmd_valid_o,
  input  logic                      rd_cmd_ready_i,
  output logic [31:0]               rd_cmd_addr_o,
  output logic [BeatsWidth-1:0]     rd_cmd_beats_o,
  input  logic                      rd_data_valid_i,
  output logic                      rd_data_ready_o,
  input  logic [AxiDataWidth-1:0]   rd_data_i,
  input  logic                      rd_data_last_i,
  // write DMA
  output logic                      wr_cmd_valid_o,
  input  logic                      wr_cmd_ready_i,
  output logic [31:0]               wr_cmd_addr_o,
  output logic [BeatsWidth-1:0]     wr_cmd_beats_o,
  output logic                      wr_data_valid_o,
  input  logic                      wr_data_ready_i,
  output logic [AxiDataWidth-1:0]   wr_data_o,
  // per-cycle events for the performance counters
  output logic                      mac_step_o,
  output logic                      mem_stall_o,
  output logic                      gen_busy_o
);
  localparam int InBufWords  = InBufElems / PN;
  localparam int WgtBufWords = WgtBufElems / (PM * PN);
  localparam int OutBufWords = OutBufElems / PM;
  localparam int BiasWords   = OutBufElems / PM;
  localparam int InAw   = $clog2(2 * InBufWords);
  localparam int WgtAw  = $clog2(2 * WgtBufWords);
  localparam int OutAw  = $clog2(OutBufWords);
  localparam int BiasAw = $clog2(2 * BiasWords);
  // residual words hold PN channels (a pixel word of the layout): PM / PN
  // of them per accumulator word, a half rounded up to a power of two of
  // words (its address is {half, word}; PM / PN need not be one)
  localparam int ResWords = 1 << $clog2(OutBufWords * (PM / PN));
  localparam int ResAw  = $clog2(2 * ResWords);

  `include "uz_assert.svh"
  `ASSERT_INIT(PmMultipleOfPn_A, PM % PN == 0)
  // a buffer half is addressed as {half, word}: a power of two of words
  // (golden.config.EngineConfig.rtl_buildable)
  `ASSERT_INIT(BufWordsPow2_A, (InBufWords & (InBufWords - 1)) == 0 && (WgtBufWords & (WgtBufWords - 1)) == 0 &&
                               (OutBufWords & (OutBufWords - 1)) == 0 && InBufWords * PN == InBufElems &&
                               WgtBufWords * PM * PN == WgtBufElems && OutBufWords * PM == OutBufElems)

  // The controller and the checker read the rest of the descriptor (magic,
  // layer id, the code mask above OvsfLen).
  /* verilator lint_off UNUSEDSIGNAL */
  uz_desc_t d;
  /* verilator lint_on UNUSEDSIGNAL */
  assign d = desc_i;
  uz_check_geom_t geom;
  assign geom = geom_i;

  // ---------------------------------------------------------- geometry
  // Decoded once here for the loader, compute and write-back (one struct,
  // uz_layer_geom_t). The sizes that take a division or a product by the
  // stride come from the descriptor check, which works them out serially
  // (uz_check_geom_t); tr * tc from the layer constants below.
  // lgeom_d is worked out from the descriptor and the check's sizes;
  // lgeom, its register, is what the three processes read: they start from
  // a register, not from these sums (on ECP5 the paths from the check's
  // registers through them were the engine's longest). The check's sizes are
  // registered a cycle before its done, so lgeom holds the layer's geometry
  // from the cycle start_i rises (LayerGeomSettled_A); trtc follows trtc_q a
  // cycle later, long before consts_valid.
  uz_layer_geom_t lgeom_d, lgeom;
  logic [31:0]    trtc_q;
  // A decomposed kernel's sub-windows a side, and a depthwise channel's
  // weight words: ceil(taps / PN) a (sub-)window (signals: Icarus 11 casts
  // no function call)
  logic [2:0]  ksub;
  /* verilator lint_off UNUSEDSIGNAL */
  logic [15:0] dw_words;   // at most 16 sub-windows of ceil(9/PN) words: 7 bits
  /* verilator lint_on UNUSEDSIGNAL */
  assign ksub     = (d.kind != KindConv) ? 3'd1 : (d.k == 4'd6) ? 3'd2 : (d.k == 4'd9) ? 3'd3 :
                    (d.k == 4'd12) ? 3'd4 : 3'd1;
  // ceil(K*K / PN) a window, a table of the kernels a depthwise layer takes
  // (a product here was the engine's longest path on ECP5, on a multiplier)
  localparam logic [15:0] DwWords1  = 16'((1 + PN - 1) / PN);
  localparam logic [15:0] DwWords3  = 16'((9 + PN - 1) / PN);
  localparam logic [15:0] DwWords5  = 16'((25 + PN - 1) / PN);
  localparam logic [15:0] DwWords7  = 16'((49 + PN - 1) / PN);
  localparam logic [15:0] DwWords11 = 16'((121 + PN - 1) / PN);
  logic [15:0] dw_win_words;
  assign dw_win_words = (ksub != 3'd1 || d.k == 4'd3) ? DwWords3 : (d.k == 4'd5) ? DwWords5 :
                        (d.k == 4'd7) ? DwWords7 : (d.k == 4'd11) ? DwWords11 : DwWords1;
  assign dw_words = uz_util_pkg::mul_subs(dw_win_words, ksub);
  always_comb begin
    // A POOL layer runs as a 1x1 convolution of stride 1 without padding.
    lgeom_d.pool_kind = (d.kind == KindPool);
    lgeom_d.pool_en   = lgeom_d.pool_kind || (d.kind == KindConv && d.pool);
    // Depthwise (golden.isa.depthwise): each output channel convolves its own
    // input channel; its K*K weights are packed into ceil(K*K/PN) words.
    lgeom_d.dw        = (d.kind == KindConv) && (d.groups > 16'd1) && (d.groups == d.in_c) && (d.groups == d.out_c);
    lgeom_d.ovsf      = d.ovsf;
    lgeom_d.insel     = d.insel;
    // A decomposed kernel (k = 6, 9, 12; golden.isa.DECOMPOSED) runs as
    // (k/3)^2 sub-windows of 3x3 that accumulate like extra ci-groups: the
    // compute's window is 3x3, the loader sees (k/3)^2 times the channels.
    lgeom_d.ksub      = ksub;
    lgeom_d.k         = lgeom_d.pool_kind ? 4'd1 : (lgeom_d.ksub != 3'd1) ? 4'd3 : d.k;
    lgeom_d.k2        = 7'(lgeom_d.k * lgeom_d.k);
    // depthwise: a channel's packed taps, whole words a sub-window
    lgeom_d.wsteps    = lgeom_d.dw ? 7'(dw_words) : lgeom_d.k2;
    lgeom_d.stride    = lgeom_d.pool_kind ? 3'd1 : d.stride;
    lgeom_d.pad_t     = lgeom_d.pool_kind ? '0 : d.pad_t;
    lgeom_d.pad_l     = lgeom_d.pool_kind ? '0 : d.pad_l;
    lgeom_d.in_c      = d.in_c;
    lgeom_d.in_h      = d.in_h;
    lgeom_d.in_w      = d.in_w;
    lgeom_d.cin_pad   = (d.in_c + 16'(PN - 1)) & ~16'(PN - 1);
    lgeom_d.cout_pad  = geom.cout_pad;   // computed: oc-groups of PM, rounded by the check
    lgeom_d.cout_wr   = (d.out_c + 16'(PN - 1)) & ~16'(PN - 1);   // written: the layout's groups of PN
    lgeom_d.conv_h    = geom.conv_h;
    lgeom_d.conv_w    = geom.conv_w;
    lgeom_d.out_h     = d.out_h;
    lgeom_d.out_w     = d.out_w;
    lgeom_d.to        = d.to;
    lgeom_d.ti        = d.ti;
    lgeom_d.tr        = d.tr;
    lgeom_d.tc        = d.tc;
    lgeom_d.ih_t      = geom.in_rows;
    lgeom_d.iw_t      = geom.in_cols;
    lgeom_d.trtc      = trtc_q;
    // The pool window (golden.isa.pool_window): the legacy square window and
    // symmetric pad, or the graph fields; a global pool's window is the plane.
    if (d.pool_global) begin
      lgeom_d.pool_kh = geom.conv_h;
      lgeom_d.pool_kw = geom.conv_w;
      lgeom_d.pool_s  = 2'd1;
      lgeom_d.pool_pt = '0;
      lgeom_d.pool_pl = '0;
    end else begin
      lgeom_d.pool_kh = (d.pool_kh != '0) ? 16'(d.pool_kh) : 16'(d.pool_k);
      lgeom_d.pool_kw = (d.pool_kw != '0) ? 16'(d.pool_kw) : 16'(d.pool_k);
      lgeom_d.pool_s  = d.pool_s;
      lgeom_d.pool_pt = 4'(d.pool_pad);
      lgeom_d.pool_pl = d.pool_asym ? d.pool_pad_l : 4'(d.pool_pad);
    end
  end
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) lgeom <= '0;
    else         lgeom <= lgeom_d;
  end

  // ---------------------------------------------------- channel slices
  // The input and output may be channel slices of larger tensors: they start
  // (off / PN) channel groups of H x W words into the tensor at in_addr /
  // out_addr (golden.funcmodel.slice_addr; off is a multiple of PN, which
  // uz_desc_check enforces) and are laid out like whole tensors of in_c /
  // out_c channels from there.
  //
  // Layer constants: tr * tc (the accumulator words of a channel group) and
  // the two slice bases, products of descriptor fields (stable while the
  // layer runs). One shared multiplier (uz_seq_mul) forms them one after the
  // other from start_i, two cycles each; consts_valid rises after the last.
  // Nothing reads them before: the loader plans no tile until consts_valid
  // (its own layer products take longer anyway), the compute and the
  // write-back start on filled tiles (ConstsBeforeTiles_A).
  localparam int LogWordBytes = $clog2(PN * DataWidth / 8);
  localparam int LogPNl       = $clog2(PN);
  typedef enum logic [2:0] {KcTrtc, KcInRows, KcInOff, KcOutRows, KcOutOff, KcDone} kc_step_e;
  logic [2:0]  kc_q;                 // a kc_step_e (plain, so it can count)
  logic        kc_run_q, consts_valid;
  logic [31:0] in_rows_q, out_rows_q;       // rows of the channel groups before the slice
  logic [31:0] in_base_q, out_base_q;
  logic [31:0] kc_a, kc_p;
  logic [15:0] kc_b;
  logic        kc_done, kc_req;
  always_comb begin
    unique case (kc_q)
      KcTrtc:    begin kc_a = 32'(d.tr);                      kc_b = d.tc;    end
      KcInRows:  begin kc_a = 32'(d.in_c_off >> LogPNl);      kc_b = d.in_h;  end
      KcInOff:   begin kc_a = in_rows_q;                      kc_b = d.in_w;  end
      KcOutRows: begin kc_a = 32'(d.out_c_off >> LogPNl);     kc_b = d.out_h; end
      default:   begin kc_a = out_rows_q;                     kc_b = d.out_w; end
    endcase
  end
  // An enum label in a port connection becomes an undriven implicit net
  // under Icarus 11 (KcDone read as z): compare in an assign instead.
  assign kc_req = kc_run_q && kc_q != KcDone;
  // Two multipliers (one more DSP): the operand selection over the
  // descriptor's fields ends at a register (with one multiplier the
  // selection, the multiplier and the sum were one path, the engine's
  // longest on ECP5 once the geometry was registered).
  uz_seq_mul #(.TwoMul(1'b1)) u_kc_mul (
    .clk_i, .rst_ni, .clear_i(start_i || abort_i), .req_i(kc_req),
    .a_i(kc_a), .b_i(kc_b), .done_o(kc_done), .p_o(kc_p)
  );
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      kc_q <= KcTrtc; kc_run_q <= 1'b0;
      trtc_q <= '0; in_rows_q <= '0; out_rows_q <= '0; in_base_q <= '0; out_base_q <= '0;
    end else if (start_i || abort_i) begin
      kc_q <= KcTrtc; kc_run_q <= start_i;
    end else if (kc_done) begin
      unique case (kc_q)
        KcTrtc:    trtc_q     <= kc_p;
        KcInRows:  in_rows_q  <= kc_p;
        KcInOff:   in_base_q  <= d.in_addr + (kc_p << LogWordBytes);
        KcOutRows: out_rows_q <= kc_p;
        default:   out_base_q <= d.out_addr + (kc_p << LogWordBytes);
      endcase
      kc_q <= kc_q + 3'd1;
    end
  end
  assign consts_valid = kc_run_q && kc_q == KcDone;

  // ---------------------------------------------------- hand-off flags
  logic [1:0] tile_full_q, tile_filled, tile_release;
  logic [1:0] out_full_q, out_done, out_release;
  // A residual half holds an output tile's residual from the loader's fill
  // until the write-back releases that tile's accumulators.
  logic [1:0] res_full_q, res_filled;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      tile_full_q <= '0;
      out_full_q  <= '0;
      res_full_q  <= '0;
    end else if (start_i || abort_i) begin
      tile_full_q <= '0;
      out_full_q  <= '0;
      res_full_q  <= '0;
    end else begin
      tile_full_q <= (tile_full_q | tile_filled) & ~tile_release;
      out_full_q  <= (out_full_q | out_done) & ~out_release;
      res_full_q  <= (res_full_q | res_filled) & ~out_release;
    end
  end
  `ASSERT(ConstsBeforeTiles_A, tile_full_q == '0 || consts_valid, clk_i, rst_ni)
  `ASSERT(NoFillOfFullHalf_A, (tile_filled & tile_full_q) == '0, clk_i, rst_ni)
  `ASSERT(NoReleaseOfEmptyHalf_A, (tile_release & ~tile_full_q) == '0, clk_i, rst_ni)
  `ASSERT(NoDoneOfFullOut_A, (out_done & out_full_q) == '0, clk_i, rst_ni)
  `ASSERT(NoFillOfFullRes_A, (res_filled & res_full_q) == '0, clk_i, rst_ni)
  // the write-back releases a tile only once its residual is in
  `ASSERT(ResReleasedOnlyWhenFull_A, !res_en || (out_release & ~res_full_q) == '0, clk_i, rst_ni)

  // ------------------------------------------------------------ buffers
  logic                     inb_wr_en;
  // The compute's column fetcher reads InReads neighbouring input words a cycle.
  logic [InReads-1:0]            inb_rd_en;
  logic [InAw-1:0]               inb_wr_addr, inb_rd_addr;
  logic [PN*DataWidth-1:0]       inb_wr_data;
  logic [InReads*PN*DataWidth-1:0] inb_rd_data;
  uz_in_buf #(.Width(PN*DataWidth), .Depth(2*InBufWords), .Reads(InReads)) u_in_buf (
    .clk_i, .rst_ni, .wr_en_i(inb_wr_en), .wr_addr_i(inb_wr_addr), .wr_data_i(inb_wr_data),
    .rd_en_i(inb_rd_en), .rd_addr_i(inb_rd_addr), .rd_data_o(inb_rd_data)
  );

  logic                        wgt_wr_en, wgt_rd_en;
  logic [PM*PN-1:0]            wgt_wr_lane_en;
  logic [WgtAw-1:0]            wgt_wr_addr, wgt_rd_addr;
  logic [PM*PN*DataWidth-1:0]  wgt_wr_data, wgt_rd_data;
  uz_ram #(.Lanes(PM*PN), .LaneWidth(DataWidth), .Depth(2*WgtBufWords)) u_wgt_buf (
    .clk_i, .wr_en_i(wgt_wr_en), .wr_lane_en_i(wgt_wr_lane_en), .wr_addr_i(wgt_wr_addr), .wr_data_i(wgt_wr_data),
    .rd_en_i(wgt_rd_en), .rd_addr_i(wgt_rd_addr), .rd_data_o(wgt_rd_data)
  );

  logic                     bias_wr_en, bias_rd_en;
  logic [BiasAw-1:0]        bias_wr_addr, bias_rd_addr;
  logic [PM*DataWidth-1:0]  bias_wr_data, bias_rd_data;
  logic [PM/PN-1:0]         bias_wr_lane_en;   // biases arrive PN channels at a time
  uz_ram #(.Lanes(PM/PN), .LaneWidth(PN*DataWidth), .Depth(2*BiasWords)) u_bias_buf (
    .clk_i, .wr_en_i(bias_wr_en), .wr_lane_en_i(bias_wr_lane_en), .wr_addr_i(bias_wr_addr), .wr_data_i(bias_wr_data),
    .rd_en_i(bias_rd_en), .rd_addr_i(bias_rd_addr), .rd_data_o(bias_rd_data)
  );

  // Accumulators: one RAM per half. The compute reads and writes the half it
  // accumulates into, the write-back reads the other one.
  logic                   c_rd_en, c_rd_half, c_wr_en, c_wr_half, p_rd_en, p_half;
  logic [OutAw-1:0]       c_rd_addr, c_wr_addr, p_rd_addr;
  logic [PM*AccWidth-1:0] c_wr_data, out_rd_data0, out_rd_data1;
  logic                   c_rd_half_q, p_half_q;
  logic                   rd_en0, rd_en1;
  logic [OutAw-1:0]       rd_addr0, rd_addr1;
  assign rd_en0   = (c_rd_en && !c_rd_half) || (p_rd_en && !p_half);
  assign rd_en1   = (c_rd_en && c_rd_half) || (p_rd_en && p_half);
  assign rd_addr0 = (c_rd_en && !c_rd_half) ? c_rd_addr : p_rd_addr;
  assign rd_addr1 = (c_rd_en && c_rd_half) ? c_rd_addr : p_rd_addr;
  uz_ram #(.Lanes(1), .LaneWidth(PM*AccWidth), .Depth(OutBufWords)) u_out_buf0 (
    .clk_i, .wr_en_i(c_wr_en && !c_wr_half), .wr_lane_en_i(1'b1), .wr_addr_i(c_wr_addr),
    .wr_data_i(c_wr_data), .rd_en_i(rd_en0), .rd_addr_i(rd_addr0), .rd_data_o(out_rd_data0)
  );
  uz_ram #(.Lanes(1), .LaneWidth(PM*AccWidth), .Depth(OutBufWords)) u_out_buf1 (
    .clk_i, .wr_en_i(c_wr_en && c_wr_half), .wr_lane_en_i(1'b1), .wr_addr_i(c_wr_addr),
    .wr_data_i(c_wr_data), .rd_en_i(rd_en1), .rd_addr_i(rd_addr1), .rd_data_o(out_rd_data1)
  );
  always_ff @(posedge clk_i) begin
    c_rd_half_q <= c_rd_half;
    p_half_q    <= p_half;
  end
  `ASSERT(OneReaderPerOutHalf_A, !(c_rd_en && p_rd_en && c_rd_half == p_half), clk_i, rst_ni)

  // Residuals, addressed like the accumulators: one half per output tile in
  // flight. The loader writes the half of the tile it reads, the write-back
  // reads each word with its accumulator word.
  logic                    res_en;     // a CONV/FC layer with a residual add
  logic                    res_wr_en, res_rd_en;
  logic [ResAw-1:0]        res_wr_addr, res_rd_addr;
  logic [PN*DataWidth-1:0] res_wr_data, res_rd_data;
  logic [ResAw-2:0]        p_res_addr;
  assign res_en      = d.res && !lgeom.pool_kind;
  assign res_rd_en   = p_rd_en && res_en;
  assign res_rd_addr = {p_half, p_res_addr};
  uz_ram #(.Lanes(1), .LaneWidth(PN*DataWidth), .Depth(2*ResWords)) u_res_buf (
    .clk_i, .wr_en_i(res_wr_en), .wr_lane_en_i(1'b1), .wr_addr_i(res_wr_addr), .wr_data_i(res_wr_data),
    .rd_en_i(res_rd_en), .rd_addr_i(res_rd_addr), .rd_data_o(res_rd_data)
  );

  // ---------------------------------------------------------- processes
  logic loader_busy, compute_busy, post_busy;
  // the loader's input fill, the compute's finished rows: each consumer may
  // start on a half before its producer is done with it
  logic            fill_valid, fill_half;
  logic [InAw-2:0] fill_addr;
  logic [31:0]     out_rows;

  uz_loader #(
    .PM(PM), .PN(PN), .DataWidth(DataWidth), .OvsfLen(OvsfLen), .AlphaWidth(AlphaWidth),
    .AxiDataWidth(AxiDataWidth), .GenLanes(GenLanes), .InBufWords(InBufWords), .WgtBufWords(WgtBufWords),
    .BiasWords(BiasWords), .BeatsWidth(BeatsWidth), .ResWords(ResWords)
  ) u_loader (
    .clk_i, .rst_ni, .start_i, .abort_i, .consts_valid_i(consts_valid), .geom_i(lgeom),
    .in_addr_i(in_base_q), .wgt_addr_i(d.wgt_addr), .bias_addr_i(d.bias_addr),
    .code_mask_i(d.code_mask[OvsfLen-1:0]), .n_codes_i(d.n_codes), .gen_shift_i(d.gen_shift),
    .res_i(res_en), .res_addr_i(d.res_addr),
    .tile_full_i(tile_full_q), .tile_filled_o(tile_filled),
    .fill_valid_o(fill_valid), .fill_half_o(fill_half), .fill_addr_o(fill_addr),
    .res_full_i(res_full_q), .res_filled_o(res_filled),
    .rd_cmd_valid_o, .rd_cmd_ready_i, .rd_cmd_addr_o, .rd_cmd_beats_o,
    .rd_data_valid_i, .rd_data_ready_o, .rd_data_i, .rd_data_last_i,
    .inb_wr_en_o(inb_wr_en), .inb_wr_addr_o(inb_wr_addr), .inb_wr_data_o(inb_wr_data),
    .wgt_wr_en_o(wgt_wr_en), .wgt_wr_lane_en_o(wgt_wr_lane_en), .wgt_wr_addr_o(wgt_wr_addr),
    .wgt_wr_data_o(wgt_wr_data),
    .bias_wr_en_o(bias_wr_en), .bias_wr_addr_o(bias_wr_addr), .bias_wr_lane_en_o(bias_wr_lane_en),
    .bias_wr_data_o(bias_wr_data),
    .res_wr_en_o(res_wr_en), .res_wr_addr_o(res_wr_addr), .res_wr_data_o(res_wr_data),
    .busy_o(loader_busy), .gen_busy_o
  );

  // The compute reads a half's input words only once they are in: the half
  // is full, or the loader, filling it, has written past them (uz_loader
  // writes each half's words in ascending order; InFillInOrder_A).
  `ASSERT(InReadsWrittenWords_A, inb_rd_en == '0 || tile_full_q[inb_rd_addr[InAw-1]] ||
          (fill_valid && fill_half == inb_rd_addr[InAw-1] &&
           {1'b0, inb_rd_addr[InAw-2:0]} + InAw'(InReads) <= {1'b0, fill_addr}), clk_i, rst_ni)

  uz_compute #(
    .PM(PM), .PN(PN), .DataWidth(DataWidth), .AccWidth(AccWidth), .MaxK(MaxK), .InBufWords(InBufWords),
    .InReads(InReads), .WgtBufWords(WgtBufWords), .OutBufWords(OutBufWords), .BiasWords(BiasWords)
  ) u_compute (
    .clk_i, .rst_ni, .start_i, .abort_i,
    .geom_i(lgeom),
    .bias_en_i(d.bias && !lgeom.pool_kind), .bias_shift_i(d.bias_shift),  // a POOL has no bias
    .tile_full_i(tile_full_q), .tile_release_o(tile_release),
    .fill_valid_i(fill_valid), .fill_half_i(fill_half), .fill_addr_i(fill_addr),
    .out_full_i(out_full_q), .out_done_o(out_done), .out_rows_o(out_rows),
    .inb_rd_en_o(inb_rd_en), .inb_rd_addr_o(inb_rd_addr), .inb_rd_data_i(inb_rd_data),
    .wgt_rd_en_o(wgt_rd_en), .wgt_rd_addr_o(wgt_rd_addr), .wgt_rd_data_i(wgt_rd_data),
    .bias_rd_en_o(bias_rd_en), .bias_rd_addr_o(bias_rd_addr), .bias_rd_data_i(bias_rd_data),
    .acc_rd_en_o(c_rd_en), .acc_half_o(c_rd_half), .acc_rd_addr_o(c_rd_addr),
    .acc_rd_data_i(c_rd_half_q ? out_rd_data1 : out_rd_data0),
    .acc_wr_en_o(c_wr_en), .acc_wr_half_o(c_wr_half), .acc_wr_addr_o(c_wr_addr), .acc_wr_data_o(c_wr_data),
    .busy_o(compute_busy), .mac_step_o, .stall_o(mem_stall_o)
  );

  uz_post #(
    .PM(PM), .PN(PN), .DataWidth(DataWidth), .AccWidth(AccWidth), .AxiDataWidth(AxiDataWidth),
    .OutBufWords(OutBufWords), .BeatsWidth(BeatsWidth)
  ) u_post (
    .clk_i, .rst_ni, .start_i, .abort_i,
    .geom_i(lgeom),
    .pool_avg_i(d.pool_avg && lgeom.pool_kind), .pool_incl_pad_i(d.pool_incl_pad),
    .relu_i(d.relu), .data_shift_i(d.data_shift),
    .clip_i(d.clip),
    // uz_desc_check rejects a clip_hi above the largest data value, so its
    // low DataWidth bits hold it
    .clip_hi_i(d.clip_hi[DataWidth-1:0]),
    .res_i(res_en), .res_shift_i(d.res_shift), .res_full_i(res_full_q), .res_rd_addr_o(p_res_addr),
    .res_rd_data_i(res_rd_data),
    .out_addr_i(out_base_q),
    .out_full_i(out_full_q), .out_release_o(out_release), .out_rows_i(out_rows),
    .acc_rd_en_o(p_rd_en), .acc_half_o(p_half), .acc_rd_addr_o(p_rd_addr),
    .acc_rd_data_i(p_half_q ? out_rd_data1 : out_rd_data0),
    .wr_cmd_valid_o, .wr_cmd_ready_i, .wr_cmd_addr_o, .wr_cmd_beats_o,
    .wr_data_valid_o, .wr_data_ready_i, .wr_data_o,
    .busy_o(post_busy)
  );

  // Done once all three processes are idle again (from the cycle after start).
  logic active_q, started_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      active_q  <= 1'b0;
      started_q <= 1'b0;
    end else if (abort_i) begin
      active_q  <= 1'b0;
      started_q <= 1'b0;
    end else begin
      started_q <= start_i;
      if (start_i) active_q <= 1'b1;
      else if (done_o) active_q <= 1'b0;
    end
  end
  assign done_o = active_q && !started_q && !start_i && !loader_busy && !compute_busy && !post_busy;

`ifndef UZ_NO_ASSERT
  // The check's sizes are the descriptor's (golden.isa.conv_dims,
  // in_tile_dims), divided and multiplied here the plain way.
  logic [31:0] ref_k, ref_conv_h, ref_conv_w, ref_in_rows, ref_in_cols, ref_cout_pad;
  always_comb begin
    ref_k       = lgeom_d.pool_kind ? 32'd1 : 32'(d.k);   // the real kernel, not the window's
    ref_conv_h  = lgeom_d.pool_kind ? 32'(d.in_h) :
                  (32'(d.in_h) + 32'(d.pad_t) + 32'(d.pad_b) - ref_k) / 32'(lgeom_d.stride) + 1;
    ref_conv_w  = lgeom_d.pool_kind ? 32'(d.in_w) :
                  (32'(d.in_w) + 32'(d.pad_l) + 32'(d.pad_r) - ref_k) / 32'(lgeom_d.stride) + 1;
    ref_in_rows = (32'(d.tr) - 1) * 32'(lgeom_d.stride) + ref_k;
    ref_in_cols = (32'(d.tc) - 1) * 32'(lgeom_d.stride) + ref_k;
    ref_cout_pad = (32'(d.out_c) + PM - 1) / PM * PM;
  end
  `ASSERT(GeomFromCheck_A, !active_q || (32'(geom.conv_h) == ref_conv_h && 32'(geom.conv_w) == ref_conv_w &&
                                         32'(geom.in_rows) == ref_in_rows && 32'(geom.in_cols) == ref_in_cols &&
                                         32'(geom.cout_pad) == ref_cout_pad),
          clk_i, rst_ni)
  // the processes read the registered geometry: it must be the layer's when
  // the tile walks load their first tile and once the layer's constants are in
  `ASSERT(LayerGeomSettled_A, !(start_i || (active_q && consts_valid)) || lgeom == lgeom_d, clk_i, rst_ni)
`endif
endmodule
