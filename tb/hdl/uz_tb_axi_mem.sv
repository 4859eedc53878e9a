// Simulation-only AXI4 slave memory for cycle-accurate benchmarks (make bench).
// Not synthesizable: a flat word array, file I/O, plusargs.
//
// Bus: DataWidth-bit data, AddrWidth-bit byte addresses. INCR bursts of up
// to 256 beats (FIXED keeps the address; WRAP is taken as INCR, which the
// engine never issues); a beat moves the whole bus word that holds its
// address, so narrow sizes work too. IDs are echoed; responses come back in
// order per channel.
//
// Timing:
//  - Latency: R valid rises LatencyCycles cycles after the cycle of the AR
//    handshake, and B valid LatencyCycles cycles after the cycle of the last W
//    handshake (minimum 2, smaller values count as 2). Bursts pipeline: the
//    latency of a burst overlaps the data of the bursts before it.
//  - Up to MaxOutstanding read bursts (and as many write bursts) are
//    accepted; AR/AW ready fall when the queue is full.
//  - Bandwidth: a token bucket shared by reads and writes earns
//    BytesPerCycleNum/BytesPerCycleDen bytes per cycle, holds at most
//    BurstBeats beats' worth, and every data beat (R or W) spends
//    DataWidth/8 bytes. When reads and writes compete for scarce tokens they
//    alternate. With Num/Den >= DataWidth/8 there is no limit at all: each
//    channel may move a beat every cycle.
//  - Plusargs override the rate and the latency at run time, so one build
//    serves every bandwidth: +UZ_BW_NUM=<n> +UZ_BW_DEN=<n> +UZ_LATENCY=<n>.
//
// Contents: zero, then +UZ_MEM_IN=<file> is loaded at time 0 with $readmemh
// (one DataWidth-bit hex word per line, word address = byte address /
// (DataWidth/8)).
//
// Dump: a cycle with dump_i high writes words [dump_lo_i, dump_hi_i) (word
// addresses, clipped to the memory) with $writememh to the file
// "<+UZ_MEM_OUT>.<n>", n = dump_count_o before the dump (0, 1, ...); the
// file is complete when the clock edge that samples dump_i has been
// simulated. dump_count_o counts the dumps requested.
//
// Errors: any beat outside [0, MemBytes) answers SLVERR (reads return zero,
// writes are dropped); a write burst answers SLVERR when any of its beats
// did. The simulation never stops on a bad address.
//
// Counters: rd_bytes_o / wr_bytes_o count DataWidth/8 bytes per completed R
// / W beat handshake (bus bytes, whatever the strobes).
//
// Simulators: written for Verilator (the benchmarks); Icarus 11 -g2012
// accepts it too, but stores four-state words, so give it a small MemBytes.
`include "uz_assert.svh"

module uz_tb_axi_mem #(
  parameter int DataWidth        = 128,
  parameter int AddrWidth        = 32,
  parameter int IdWidth          = 4,
  parameter int MemBytes         = 256 * 1024 * 1024,
  parameter int BytesPerCycleNum = 16,
  parameter int BytesPerCycleDen = 1,
  parameter int LatencyCycles    = 16,
  parameter int MaxOutstanding   = 8,
  parameter int BurstBeats       = 4,
  localparam int StrbWidth       = DataWidth / 8
) (
  input  logic                 clk_i,
  // The ASSERT macros use rst_ni in `disable iff`, which Verilator sees as
  // a synchronous use of an asynchronous reset; only assertions do that.
  /* verilator lint_off SYNCASYNCNET */
  input  logic                 rst_ni,
  /* verilator lint_on SYNCASYNCNET */

  // AXI4 slave
  input  logic [IdWidth-1:0]   s_axi_awid,
  input  logic [AddrWidth-1:0] s_axi_awaddr,
  input  logic [7:0]           s_axi_awlen,
  input  logic [2:0]           s_axi_awsize,
  input  logic [1:0]           s_axi_awburst,
  input  logic                 s_axi_awlock,
  input  logic [3:0]           s_axi_awcache,
  input  logic [2:0]           s_axi_awprot,
  input  logic [3:0]           s_axi_awqos,
  input  logic                 s_axi_awvalid,
  output logic                 s_axi_awready,
  input  logic [DataWidth-1:0] s_axi_wdata,
  input  logic [StrbWidth-1:0] s_axi_wstrb,
  input  logic                 s_axi_wlast,
  input  logic                 s_axi_wvalid,
  output logic                 s_axi_wready,
  output logic [IdWidth-1:0]   s_axi_bid,
  output logic [1:0]           s_axi_bresp,
  output logic                 s_axi_bvalid,
  input  logic                 s_axi_bready,
  input  logic [IdWidth-1:0]   s_axi_arid,
  input  logic [AddrWidth-1:0] s_axi_araddr,
  input  logic [7:0]           s_axi_arlen,
  input  logic [2:0]           s_axi_arsize,
  input  logic [1:0]           s_axi_arburst,
  input  logic                 s_axi_arlock,
  input  logic [3:0]           s_axi_arcache,
  input  logic [2:0]           s_axi_arprot,
  input  logic [3:0]           s_axi_arqos,
  input  logic                 s_axi_arvalid,
  output logic                 s_axi_arready,
  output logic [IdWidth-1:0]   s_axi_rid,
  output logic [DataWidth-1:0] s_axi_rdata,
  output logic [1:0]           s_axi_rresp,
  output logic                 s_axi_rlast,
  output logic                 s_axi_rvalid,
  input  logic                 s_axi_rready,

  // contents dump (word addresses)
  input  logic                 dump_i,
  input  logic [31:0]          dump_lo_i,
  input  logic [31:0]          dump_hi_i,
  output logic [31:0]          dump_count_o,

  // traffic counters
  output logic [63:0]          rd_bytes_o,
  output logic [63:0]          wr_bytes_o
);
  localparam int BeatBytes = DataWidth / 8;
  localparam int SizeLog2  = $clog2(BeatBytes);
  localparam int MemWords  = MemBytes / BeatBytes;
  localparam int WordWidth = (MemWords > 1) ? $clog2(MemWords) : 1;   // word index
  localparam int PtrWidth  = (MaxOutstanding > 1) ? $clog2(MaxOutstanding) : 1;
  localparam int CntWidth  = $clog2(MaxOutstanding + 1);
  localparam logic [1:0] RespOkay   = 2'b00;
  localparam logic [1:0] RespSlvErr = 2'b10;
  localparam logic [1:0] BurstFixed = 2'b00;

  `ASSERT_INIT(DataWidthLegal_A, DataWidth >= 8 && DataWidth <= 1024 && (DataWidth & (DataWidth - 1)) == 0)
  `ASSERT_INIT(AddrWidthLegal_A, AddrWidth >= 12 && AddrWidth <= 32)
  `ASSERT_INIT(MemBytesLegal_A, MemBytes > 0 && MemBytes % BeatBytes == 0 && WordWidth + SizeLog2 <= AddrWidth)
  `ASSERT_INIT(RateLegal_A, BytesPerCycleNum > 0 && BytesPerCycleDen > 0)
  `ASSERT_INIT(MaxOutstandingLegal_A, MaxOutstanding >= 1)
  `ASSERT_INIT(BurstBeatsLegal_A, BurstBeats >= 2)

  // ------------------------------------------------------------ storage
  logic [DataWidth-1:0] mem [MemWords];

  // Run-time settings (parameters, overridden by plusargs).
  longint unsigned bw_num, bw_den, latency;
  string           in_file, out_base;
  logic            out_set;

  initial begin
    bw_num  = 64'(BytesPerCycleNum);
    bw_den  = 64'(BytesPerCycleDen);
    latency = 64'(LatencyCycles);
    if ($value$plusargs("UZ_BW_NUM=%d", bw_num)) begin end
    if ($value$plusargs("UZ_BW_DEN=%d", bw_den)) begin end
    if ($value$plusargs("UZ_LATENCY=%d", latency)) begin end
    if (bw_num == 0 || bw_den == 0) begin
      $display("uz_tb_axi_mem: bandwidth %0d/%0d is not positive; using the full rate", bw_num, bw_den);
      bw_num = 64'(BeatBytes);
      bw_den = 1;
    end
    if (latency < 2) latency = 2;
    out_set = 1'b0;
    if ($value$plusargs("UZ_MEM_OUT=%s", out_base)) out_set = 1'b1;
    for (int i = 0; i < MemWords; i++) mem[i] = '0;
    if ($value$plusargs("UZ_MEM_IN=%s", in_file)) $readmemh(in_file, mem);
  end

  // ------------------------------------------------------- cycle counter
  logic [63:0] cyc_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) cyc_q <= '0;
    else         cyc_q <= cyc_q + 64'd1;
  end

  // Beat address helpers.
  function automatic logic [AddrWidth-1:0] next_addr(logic [AddrWidth-1:0] a, logic [2:0] size,
                                                     logic fixed);
    logic [AddrWidth-1:0] step;
    step = AddrWidth'(1) << size;
    return fixed ? a : (a & ~(step - AddrWidth'(1))) + step;
  endfunction

  function automatic logic in_range(logic [AddrWidth-1:0] a);
    return 64'(a) < 64'(MemBytes);
  endfunction

  function automatic logic [PtrWidth-1:0] ptr_inc(logic [PtrWidth-1:0] p);
    return (p == PtrWidth'(MaxOutstanding - 1)) ? '0 : p + PtrWidth'(1);
  endfunction

  // ------------------------------------------------------- token bucket
  // Credit is kept in units of 1/bw_den byte: a cycle earns bw_num, a beat
  // costs BeatBytes * bw_den.
  logic [63:0] credit_q, credit_d, cost, cap;
  logic        unlimited, w_tok, r_tok, r_starved_q, r_starved_d, last_w_q;
  logic        r_load, w_fire;

  assign cost      = 64'(BeatBytes) * bw_den;
  assign cap       = 64'(BurstBeats) * cost;
  assign unlimited = bw_num >= cost;
  // Writes decide from registers only (wready has no path from any input).
  // When the last beat was a write and a read beat was refused for want of
  // tokens in the cycle before, the writes let the read go first: under
  // contention the two alternate.
  assign w_tok     = unlimited ||
                     (credit_q >= cost && (!(r_starved_q && last_w_q) || credit_q >= 2 * cost));
  assign r_tok     = unlimited || (credit_q - (w_fire ? cost : 64'd0)) >= cost;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni)     last_w_q <= 1'b0;
    else if (w_fire) last_w_q <= 1'b1;
    else if (r_load) last_w_q <= 1'b0;
  end

  always_comb begin
    logic [63:0] c;
    c = credit_q + bw_num - (w_fire ? cost : 64'd0) - (r_load ? cost : 64'd0);
    credit_d = (unlimited || c > cap) ? cap : c;
  end

  // ------------------------------------------------------- read channel
  logic [IdWidth-1:0]   ar_id_q   [MaxOutstanding];
  logic [AddrWidth-1:0] ar_addr_q [MaxOutstanding];
  logic [7:0]           ar_len_q  [MaxOutstanding];
  logic [2:0]           ar_size_q [MaxOutstanding];
  logic                 ar_fixed_q[MaxOutstanding];
  logic [63:0]          ar_due_q  [MaxOutstanding];
  logic [PtrWidth-1:0]  ar_wptr_q, ar_rptr_q;
  logic [CntWidth-1:0]  ar_cnt_q;
  logic                 ar_fire, ar_pop;

  // the burst being returned
  logic                 rb_act_q, rb_act_d;
  logic [AddrWidth-1:0] rb_addr_q, rb_addr_d;
  logic [8:0]           rb_left_q, rb_left_d;    // beats still to load
  logic [IdWidth-1:0]   rb_id_q, rb_id_d;
  logic [2:0]           rb_size_q, rb_size_d;
  logic                 rb_fixed_q, rb_fixed_d;

  logic                 r_valid_q, r_valid_d, r_last_q, r_last_d;
  logic [IdWidth-1:0]   r_id_q, r_id_d;
  logic [1:0]           r_resp_q, r_resp_d;
  logic [DataWidth-1:0] r_data_q;
  logic                 r_want, r_head_due, r_fire;
  logic [AddrWidth-1:0] r_addr;
  logic [8:0]           r_left;
  logic [2:0]           r_size;
  logic                 r_fixed;

  assign s_axi_arready = ar_cnt_q < CntWidth'(MaxOutstanding);
  assign ar_fire       = s_axi_arvalid && s_axi_arready;
  assign r_fire        = r_valid_q && s_axi_rready;
  assign r_head_due    = ar_cnt_q != '0 && cyc_q + 64'd1 >= ar_due_q[ar_rptr_q];
  assign r_want        = (!r_valid_q || s_axi_rready) && (rb_act_q || r_head_due);
  assign r_load        = r_want && r_tok;
  assign ar_pop        = r_load && !rb_act_q;
  assign r_starved_d   = r_want && !r_tok;

  // the beat loaded this cycle: from the active burst or the queue's head
  assign r_addr  = rb_act_q ? rb_addr_q  : ar_addr_q[ar_rptr_q];
  assign r_left  = rb_act_q ? rb_left_q  : 9'(ar_len_q[ar_rptr_q]) + 9'd1;
  assign r_size  = rb_act_q ? rb_size_q  : ar_size_q[ar_rptr_q];
  assign r_fixed = rb_act_q ? rb_fixed_q : ar_fixed_q[ar_rptr_q];

  always_comb begin
    rb_act_d   = rb_act_q;
    rb_addr_d  = rb_addr_q;
    rb_left_d  = rb_left_q;
    rb_id_d    = rb_id_q;
    rb_size_d  = rb_size_q;
    rb_fixed_d = rb_fixed_q;
    r_valid_d  = r_valid_q && !s_axi_rready;
    r_last_d   = r_last_q;
    r_id_d     = r_id_q;
    r_resp_d   = r_resp_q;
    if (r_load) begin
      if (!rb_act_q) rb_id_d = ar_id_q[ar_rptr_q];
      rb_size_d  = r_size;
      rb_fixed_d = r_fixed;
      rb_addr_d  = next_addr(r_addr, r_size, r_fixed);
      rb_left_d  = r_left - 9'd1;
      rb_act_d   = r_left != 9'd1;
      r_valid_d  = 1'b1;
      r_last_d   = r_left == 9'd1;
      r_id_d     = rb_act_q ? rb_id_q : ar_id_q[ar_rptr_q];
      r_resp_d   = in_range(r_addr) ? RespOkay : RespSlvErr;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      ar_wptr_q   <= '0;
      ar_rptr_q   <= '0;
      ar_cnt_q    <= '0;
      rb_act_q    <= 1'b0;
      rb_addr_q   <= '0;
      rb_left_q   <= '0;
      rb_id_q     <= '0;
      rb_size_q   <= '0;
      rb_fixed_q  <= 1'b0;
      r_valid_q   <= 1'b0;
      r_last_q    <= 1'b0;
      r_id_q      <= '0;
      r_resp_q    <= RespOkay;
      r_starved_q <= 1'b0;
      credit_q    <= '0;
    end else begin
      if (ar_fire) begin
        ar_id_q[ar_wptr_q]    <= s_axi_arid;
        ar_addr_q[ar_wptr_q]  <= s_axi_araddr;
        ar_len_q[ar_wptr_q]   <= s_axi_arlen;
        ar_size_q[ar_wptr_q]  <= s_axi_arsize;
        ar_fixed_q[ar_wptr_q] <= s_axi_arburst == BurstFixed;
        ar_due_q[ar_wptr_q]   <= cyc_q + latency;
        ar_wptr_q             <= ptr_inc(ar_wptr_q);
      end
      if (ar_pop) ar_rptr_q <= ptr_inc(ar_rptr_q);
      ar_cnt_q    <= ar_cnt_q + CntWidth'(ar_fire) - CntWidth'(ar_pop);
      rb_act_q    <= rb_act_d;
      rb_addr_q   <= rb_addr_d;
      rb_left_q   <= rb_left_d;
      rb_id_q     <= rb_id_d;
      rb_size_q   <= rb_size_d;
      rb_fixed_q  <= rb_fixed_d;
      r_valid_q   <= r_valid_d;
      r_last_q    <= r_last_d;
      r_id_q      <= r_id_d;
      r_resp_q    <= r_resp_d;
      r_starved_q <= r_starved_d;
      credit_q    <= credit_d;
    end
  end

  // The data register sits with the array (no reset): a combinational read
  // of the array would make Icarus watch every word.
  always_ff @(posedge clk_i) begin
    if (r_load) r_data_q <= in_range(r_addr) ? mem[r_addr[SizeLog2 +: WordWidth]] : '0;
  end

  assign s_axi_rvalid = r_valid_q;
  assign s_axi_rdata  = r_data_q;
  assign s_axi_rresp  = r_resp_q;
  assign s_axi_rlast  = r_last_q;
  assign s_axi_rid    = r_id_q;

  // ------------------------------------------------------ write channels
  logic [IdWidth-1:0]   aw_id_q   [MaxOutstanding];
  logic [AddrWidth-1:0] aw_addr_q [MaxOutstanding];
  logic [7:0]           aw_len_q  [MaxOutstanding];
  logic [2:0]           aw_size_q [MaxOutstanding];
  logic                 aw_fixed_q[MaxOutstanding];
  logic [PtrWidth-1:0]  aw_wptr_q, aw_rptr_q;
  logic [CntWidth-1:0]  aw_cnt_q;
  logic                 aw_fire, aw_pop;

  logic [7:0]           wb_beat_q;               // beats done in the head burst
  logic [AddrWidth-1:0] wb_addr_q;               // address of the next beat (wb_beat_q > 0)
  logic                 wb_err_q;
  logic [AddrWidth-1:0] w_addr;
  logic                 w_ok, w_last;

  logic [IdWidth-1:0]   b_id_q  [MaxOutstanding];
  logic [1:0]           b_resp_q[MaxOutstanding];
  logic [63:0]          b_due_q [MaxOutstanding];
  logic [PtrWidth-1:0]  b_wptr_q, b_rptr_q;
  logic [CntWidth-1:0]  b_cnt_q;
  logic                 b_push, b_pop;
  logic                 bo_valid_q;
  logic [IdWidth-1:0]   bo_id_q;
  logic [1:0]           bo_resp_q;

  assign s_axi_awready = aw_cnt_q < CntWidth'(MaxOutstanding);
  assign aw_fire       = s_axi_awvalid && s_axi_awready;
  assign s_axi_wready  = aw_cnt_q != '0 && b_cnt_q < CntWidth'(MaxOutstanding) && w_tok;
  assign w_fire        = s_axi_wvalid && s_axi_wready;
  assign w_addr        = (wb_beat_q == 8'd0) ? aw_addr_q[aw_rptr_q] : wb_addr_q;
  assign w_ok          = in_range(w_addr);
  assign w_last        = wb_beat_q == aw_len_q[aw_rptr_q];
  assign aw_pop        = w_fire && w_last;
  assign b_push        = aw_pop;
  assign b_pop         = b_cnt_q != '0 && (!bo_valid_q || s_axi_bready) &&
                         cyc_q + 64'd1 >= b_due_q[b_rptr_q];

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      aw_wptr_q  <= '0;
      aw_rptr_q  <= '0;
      aw_cnt_q   <= '0;
      wb_beat_q  <= '0;
      wb_addr_q  <= '0;
      wb_err_q   <= 1'b0;
      b_wptr_q   <= '0;
      b_rptr_q   <= '0;
      b_cnt_q    <= '0;
      bo_valid_q <= 1'b0;
      bo_id_q    <= '0;
      bo_resp_q  <= RespOkay;
    end else begin
      if (aw_fire) begin
        aw_id_q[aw_wptr_q]    <= s_axi_awid;
        aw_addr_q[aw_wptr_q]  <= s_axi_awaddr;
        aw_len_q[aw_wptr_q]   <= s_axi_awlen;
        aw_size_q[aw_wptr_q]  <= s_axi_awsize;
        aw_fixed_q[aw_wptr_q] <= s_axi_awburst == BurstFixed;
        aw_wptr_q             <= ptr_inc(aw_wptr_q);
      end
      if (aw_pop) aw_rptr_q <= ptr_inc(aw_rptr_q);
      aw_cnt_q <= aw_cnt_q + CntWidth'(aw_fire) - CntWidth'(aw_pop);
      if (w_fire) begin
        wb_beat_q <= w_last ? 8'd0 : wb_beat_q + 8'd1;
        wb_addr_q <= next_addr(w_addr, aw_size_q[aw_rptr_q], aw_fixed_q[aw_rptr_q]);
        wb_err_q  <= w_last ? 1'b0 : (wb_err_q || !w_ok);
      end
      if (b_push) begin
        b_id_q[b_wptr_q]   <= aw_id_q[aw_rptr_q];
        b_resp_q[b_wptr_q] <= (wb_err_q || !w_ok) ? RespSlvErr : RespOkay;
        b_due_q[b_wptr_q]  <= cyc_q + latency;
        b_wptr_q           <= ptr_inc(b_wptr_q);
      end
      if (b_pop) begin
        b_rptr_q   <= ptr_inc(b_rptr_q);
        bo_valid_q <= 1'b1;
        bo_id_q    <= b_id_q[b_rptr_q];
        bo_resp_q  <= b_resp_q[b_rptr_q];
      end else if (s_axi_bready) begin
        bo_valid_q <= 1'b0;
      end
      b_cnt_q <= b_cnt_q + CntWidth'(b_push) - CntWidth'(b_pop);
    end
  end

  assign s_axi_bvalid = bo_valid_q;
  assign s_axi_bid    = bo_id_q;
  assign s_axi_bresp  = bo_resp_q;

  // The memory array: written by W beats, dumped on request.
  logic [31:0] dump_cnt_q;
  logic [31:0] dump_hi;

  assign dump_hi = (dump_hi_i > 32'(MemWords)) ? 32'(MemWords) : dump_hi_i;

  always @(posedge clk_i) begin
    if (w_fire && w_ok) begin
      for (int b = 0; b < StrbWidth; b++) begin
        if (s_axi_wstrb[b]) mem[w_addr[SizeLog2 +: WordWidth]][b*8 +: 8] <= s_axi_wdata[b*8 +: 8];
      end
    end
    if (dump_i) begin
      if (!out_set) begin
        $display("uz_tb_axi_mem: dump requested without +UZ_MEM_OUT; nothing written");
      end else if (dump_lo_i < dump_hi) begin
        $writememh($sformatf("%s.%0d", out_base, dump_cnt_q), mem, dump_lo_i, dump_hi - 32'd1);
      end else begin
        $display("uz_tb_axi_mem: empty dump [%0d, %0d) of %0d words", dump_lo_i, dump_hi_i, MemWords);
      end
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) dump_cnt_q <= '0;
    else if (dump_i) dump_cnt_q <= dump_cnt_q + 32'd1;
  end
  assign dump_count_o = dump_cnt_q;

  // ------------------------------------------------------------ counters
  logic [63:0] rd_bytes_q, wr_bytes_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      rd_bytes_q <= '0;
      wr_bytes_q <= '0;
    end else begin
      if (r_fire) rd_bytes_q <= rd_bytes_q + 64'(BeatBytes);
      if (w_fire) wr_bytes_q <= wr_bytes_q + 64'(BeatBytes);
    end
  end
  assign rd_bytes_o = rd_bytes_q;
  assign wr_bytes_o = wr_bytes_q;

  // Fields the model does not interpret.
  logic unused_axi;
  assign unused_axi = ^{s_axi_awlock, s_axi_awcache, s_axi_awprot, s_axi_awqos, s_axi_awburst[1],
                        s_axi_arlock, s_axi_arcache, s_axi_arprot, s_axi_arqos, s_axi_arburst[1]};

  // The master's wlast must agree with the burst length.
  `ASSERT(WLastMatchesLen_A, !w_fire || s_axi_wlast == w_last, clk_i, rst_ni)
endmodule
