// AXI4 write DMA (docs/architecture.md, "Memory interface"). A command
// (bus-aligned byte address, beats) becomes INCR bursts of at most
// MaxBurstBeats full-width beats that never cross a 4 KiB page, filled from
// a ready/valid data stream in command order (wstrb all ones). AW may run up
// to MaxOutstanding bursts ahead of the B responses; the next command is
// accepted while earlier bursts are still in flight. idle_o means no command
// is active and every announced burst has its B response: the engine waits
// for it before calling a layer done.
//
// Errors: a non-OKAY bresp sets the sticky err_o (cleared by err_clear_i).
//
// Abort (pulse or level): no further AW, the unissued rest of the command is
// dropped. Every burst already announced on AW (or waiting in the AW
// register, which AXI forbids withdrawing) still gets all its beats: the one
// waiting on W goes out unchanged, the rest carry zero strobes, so memory is
// not written. idle_o rises after the last B. From abort_i until the next
// command is accepted, data_ready_o is high and offered beats are dropped, so
// a producer that has not seen the abort never hangs; commands are refused
// while abort_i is high or the drain is still running.
//
// The AXI ports carry no _i/_o suffix so that bus models find them by the
// usual AXI names (cocotbext-axi AxiBus.from_prefix(dut, "m_axi")).
`include "uz_assert.svh"

module uz_axi_wr #(
  parameter int AddrWidth      = 32,
  parameter int DataWidth      = 128,
  parameter int IdWidth        = 4,
  parameter int MaxBurstBeats  = 256,
  parameter int MaxOutstanding = 4,
  parameter int BeatsWidth     = 24
) (
  input  logic                   clk_i,
  // The ASSERT macros use rst_ni in `disable iff`, which Verilator sees as
  // a synchronous use of an asynchronous reset; only assertions do that.
  /* verilator lint_off SYNCASYNCNET */
  input  logic                   rst_ni,
  /* verilator lint_on SYNCASYNCNET */

  // Command: write cmd_beats_i beats to byte address cmd_addr_i.
  input  logic                   cmd_valid_i,
  output logic                   cmd_ready_o,
  input  logic [AddrWidth-1:0]   cmd_addr_i,
  input  logic [BeatsWidth-1:0]  cmd_beats_i,

  // Data stream, in command order.
  input  logic                   data_valid_i,
  output logic                   data_ready_o,
  input  logic [DataWidth-1:0]   data_i,

  input  logic                   abort_i,
  output logic                   idle_o,
  output logic                   err_o,
  input  logic                   err_clear_i,

  // AXI4 master, write channels.
  output logic [IdWidth-1:0]     m_axi_awid,
  output logic [AddrWidth-1:0]   m_axi_awaddr,
  output logic [7:0]             m_axi_awlen,
  output logic [2:0]             m_axi_awsize,
  output logic [1:0]             m_axi_awburst,
  output logic                   m_axi_awlock,
  output logic [3:0]             m_axi_awcache,
  output logic [2:0]             m_axi_awprot,
  output logic [3:0]             m_axi_awqos,
  output logic                   m_axi_awvalid,
  input  logic                   m_axi_awready,
  output logic [DataWidth-1:0]   m_axi_wdata,
  output logic [DataWidth/8-1:0] m_axi_wstrb,
  output logic                   m_axi_wlast,
  output logic                   m_axi_wvalid,
  input  logic                   m_axi_wready,
  input  logic [IdWidth-1:0]     m_axi_bid,
  input  logic [1:0]             m_axi_bresp,
  input  logic                   m_axi_bvalid,
  output logic                   m_axi_bready
);
  localparam int BytesPerBeat = DataWidth / 8;
  localparam int SizeLog2     = $clog2(BytesPerBeat);
  localparam int PageBeats    = 4096 / BytesPerBeat;
  // Burst arithmetic needs room for both the command length and a page.
  localparam int CalcWidth    = (BeatsWidth > 14) ? BeatsWidth : 14;
  localparam int PtrWidth     = (MaxOutstanding > 1) ? $clog2(MaxOutstanding) : 1;
  localparam int CntWidth     = $clog2(MaxOutstanding + 1);

  `ASSERT_INIT(DataWidthPow2_A, DataWidth >= 8 && DataWidth <= 1024 && (DataWidth & (DataWidth - 1)) == 0)
  `ASSERT_INIT(MaxBurstBeatsRange_A, MaxBurstBeats >= 1 && MaxBurstBeats <= 256)
  `ASSERT_INIT(MaxOutstandingRange_A, MaxOutstanding >= 1)
  `ASSERT_INIT(AddrWidthPage_A, AddrWidth >= 12)
  `ASSERT_INIT(IdWidthRange_A, IdWidth >= 1)
  `ASSERT_INIT(BeatsWidthRange_A, BeatsWidth >= 1 && BeatsWidth <= 31)

  // ---------------------------------------------------------------------------
  // Command and burst splitting (same as uz_axi_rd)
  // ---------------------------------------------------------------------------
  logic                  cmd_active_q, cmd_active_d;
  logic [AddrWidth-1:0]  addr_q, addr_d;      // next burst address
  logic [BeatsWidth-1:0] left_q, left_d;      // beats not yet announced
  logic                  aborting_q, aborting_d;
  logic                  abort_act;
  logic                  drop_q, drop_d;      // swallow data until the next command
  logic [CntWidth-1:0]   outst_q, outst_d;    // bursts announced, B not yet seen

  logic                  aw_valid_q, aw_valid_d;
  logic [AddrWidth-1:0]  aw_addr_q, aw_addr_d;
  logic [7:0]            aw_len_q, aw_len_d;

  logic [CalcWidth-1:0]  page_left, burst_beats;
  logic [11-SizeLog2:0]  page_pos;            // beat index inside the 4 KiB page
  logic                  burst_is_last;
  logic                  cmd_fire, aw_load, b_fire;

  assign abort_act   = abort_i | aborting_q;
  assign cmd_ready_o = ~cmd_active_q & ~abort_act;
  assign cmd_fire    = cmd_valid_i & cmd_ready_o;

  assign page_pos = addr_q[11:SizeLog2];

  always_comb begin
    page_left   = CalcWidth'(PageBeats) - CalcWidth'(page_pos);
    burst_beats = CalcWidth'(left_q);
    if (burst_beats > CalcWidth'(MaxBurstBeats)) burst_beats = CalcWidth'(MaxBurstBeats);
    if (burst_beats > page_left)                 burst_beats = page_left;
  end
  assign burst_is_last = (CalcWidth'(left_q) == burst_beats);

  // AXI forbids withdrawing awvalid, so abort lets a waiting burst complete.
  // The W length FIFO holds at most outst_q entries, so the credit check
  // covers it too.
  assign aw_load = cmd_active_q & ~abort_act & (~aw_valid_q | m_axi_awready) &
                   (outst_q < CntWidth'(MaxOutstanding));

  assign b_fire = m_axi_bvalid & m_axi_bready;

  always_comb begin
    cmd_active_d = cmd_active_q;
    addr_d       = addr_q;
    left_d       = left_q;
    aw_valid_d   = aw_valid_q;
    aw_addr_d    = aw_addr_q;
    aw_len_d     = aw_len_q;
    if (m_axi_awready) aw_valid_d = 1'b0;
    if (aw_load) begin
      aw_valid_d = 1'b1;
      aw_addr_d  = addr_q;
      aw_len_d   = 8'(burst_beats - CalcWidth'(1));
      addr_d     = addr_q + (AddrWidth'(burst_beats) << SizeLog2);
      left_d     = left_q - BeatsWidth'(burst_beats);
      if (burst_is_last) cmd_active_d = 1'b0;
    end
    if (abort_act) cmd_active_d = 1'b0;   // drop the unissued rest
    if (cmd_fire) begin
      // Zero beats is a caller error (asserted); it completes at once.
      cmd_active_d = (cmd_beats_i != '0);
      addr_d       = cmd_addr_i;
      left_d       = cmd_beats_i;
    end
  end

  always_comb begin
    outst_d = outst_q;
    if (aw_load && !b_fire)      outst_d = outst_q + CntWidth'(1);
    else if (!aw_load && b_fire) outst_d = outst_q - CntWidth'(1);
  end

  assign drop_d = abort_i | (drop_q & ~cmd_fire);

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      cmd_active_q <= 1'b0;
      addr_q       <= '0;
      left_q       <= '0;
      aborting_q   <= 1'b0;
      drop_q       <= 1'b0;
      outst_q      <= '0;
      aw_valid_q   <= 1'b0;
      aw_addr_q    <= '0;
      aw_len_q     <= '0;
    end else begin
      cmd_active_q <= cmd_active_d;
      addr_q       <= addr_d;
      left_q       <= left_d;
      aborting_q   <= aborting_d;
      drop_q       <= drop_d;
      outst_q      <= outst_d;
      aw_valid_q   <= aw_valid_d;
      aw_addr_q    <= aw_addr_d;
      aw_len_q     <= aw_len_d;
    end
  end

  assign m_axi_awid    = '0;      // one ID: responses stay in order
  assign m_axi_awaddr  = aw_addr_q;
  assign m_axi_awlen   = aw_len_q;
  assign m_axi_awsize  = 3'(SizeLog2);
  assign m_axi_awburst = 2'b01;   // INCR
  assign m_axi_awlock  = 1'b0;
  assign m_axi_awcache = 4'b0011; // normal, non-cacheable, bufferable
  assign m_axi_awprot  = 3'b000;
  assign m_axi_awqos   = 4'b0000;
  assign m_axi_awvalid = aw_valid_q;

  // ---------------------------------------------------------------------------
  // Announced burst lengths (awlen), in order, for the W side to count wlast
  // ---------------------------------------------------------------------------
  logic [MaxOutstanding-1:0][7:0] wlen_q;
  logic [PtrWidth-1:0]            wlen_wptr_q, wlen_rptr_q;
  logic [CntWidth-1:0]            wlen_cnt_q, wlen_cnt_d;
  logic [7:0]                     w_beat_q, w_beat_d;   // beats of the head burst already loaded
  logic                           w_load, w_load_last;

  function automatic logic [PtrWidth-1:0] ptr_inc(logic [PtrWidth-1:0] p);
    return (p == PtrWidth'(MaxOutstanding - 1)) ? '0 : p + PtrWidth'(1);
  endfunction

  assign w_load_last = (w_beat_q == wlen_q[wlen_rptr_q]);

  always_comb begin
    wlen_cnt_d = wlen_cnt_q;
    if (aw_load && !(w_load && w_load_last))      wlen_cnt_d = wlen_cnt_q + CntWidth'(1);
    else if (!aw_load && (w_load && w_load_last)) wlen_cnt_d = wlen_cnt_q - CntWidth'(1);
    w_beat_d = w_beat_q;
    if (w_load) w_beat_d = w_load_last ? 8'd0 : w_beat_q + 8'd1;
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      wlen_q      <= '0;
      wlen_wptr_q <= '0;
      wlen_rptr_q <= '0;
      wlen_cnt_q  <= '0;
      w_beat_q    <= '0;
    end else begin
      if (aw_load) begin
        wlen_q[wlen_wptr_q] <= aw_len_d;
        wlen_wptr_q         <= ptr_inc(wlen_wptr_q);
      end
      if (w_load && w_load_last) wlen_rptr_q <= ptr_inc(wlen_rptr_q);
      wlen_cnt_q <= wlen_cnt_d;
      w_beat_q   <= w_beat_d;
    end
  end

  // ---------------------------------------------------------------------------
  // Data stream -> W: skid register plus W output register, so there is no
  // path from wready to data_ready_o, throughput is a beat per cycle, and
  // every W output is a register that holds while wvalid waits.
  // ---------------------------------------------------------------------------
  logic                 drop_now, in_fire, in_take;
  logic                 skid_valid_q, skid_valid_d;
  logic [DataWidth-1:0] skid_data_q, skid_data_d;
  logic                 w_valid_q, w_valid_d, w_strb_q, w_strb_d, w_last_q, w_last_d;
  logic [DataWidth-1:0] w_data_q, w_data_d;
  logic                 w_free, w_src_valid;

  // A beat offered in the cycle the next command is accepted is kept: it
  // belongs to that command.
  assign drop_now     = abort_act | (drop_q & ~cmd_fire);
  // While beats are dropped the skid register is empty (DropSkidEmpty_A),
  // so ready needs only the abort and the skid register: not the command
  // handshake, whose path from the write-back's command logic through here
  // back into the write-back's pixel queue was long on ECP5.
  assign data_ready_o = abort_act | ~skid_valid_q;
  assign in_fire      = data_valid_i & data_ready_o;
  assign in_take      = in_fire & ~drop_now;

  assign w_free      = ~w_valid_q | m_axi_wready;
  // In an abort, zero-strobe filler replaces the data.
  assign w_src_valid = abort_act | skid_valid_q | in_take;
  assign w_load      = w_free & (wlen_cnt_q != '0) & w_src_valid;

  always_comb begin
    w_valid_d    = w_valid_q;
    w_data_d     = w_data_q;
    w_strb_d     = w_strb_q;
    w_last_d     = w_last_q;
    skid_valid_d = skid_valid_q;
    skid_data_d  = skid_data_q;
    if (w_free) w_valid_d = 1'b0;
    if (w_load) begin
      w_valid_d = 1'b1;
      w_last_d  = w_load_last;
      w_strb_d  = ~abort_act;
      if (abort_act)         w_data_d = '0;
      else if (skid_valid_q) w_data_d = skid_data_q;
      else                   w_data_d = data_i;
    end
    if (abort_act) begin
      skid_valid_d = 1'b0;
    end else if (w_load && skid_valid_q) begin
      skid_valid_d = 1'b0;       // data_ready_o was low: nothing new arrived
    end else if (in_take && !w_load) begin
      skid_valid_d = 1'b1;       // W stage busy or no burst announced yet
      skid_data_d  = data_i;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      skid_valid_q <= 1'b0;
      skid_data_q  <= '0;
      w_valid_q    <= 1'b0;
      w_data_q     <= '0;
      w_strb_q     <= 1'b0;
      w_last_q     <= 1'b0;
    end else begin
      skid_valid_q <= skid_valid_d;
      skid_data_q  <= skid_data_d;
      w_valid_q    <= w_valid_d;
      w_data_q     <= w_data_d;
      w_strb_q     <= w_strb_d;
      w_last_q     <= w_last_d;
    end
  end

  assign m_axi_wvalid = w_valid_q;
  assign m_axi_wdata  = w_data_q;
  assign m_axi_wstrb  = {BytesPerBeat{w_strb_q}};
  assign m_axi_wlast  = w_last_q;
  assign m_axi_bready = 1'b1;    // responses are only counted

  // ---------------------------------------------------------------------------
  // Status
  // ---------------------------------------------------------------------------
  logic bus_quiet;
  assign bus_quiet  = (outst_q == '0) & (wlen_cnt_q == '0) & ~w_valid_q;
  // The drain ends when the bus is quiet and abort_i has dropped.
  assign aborting_d = abort_i | (aborting_q & ~bus_quiet);

  logic err_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      err_q <= 1'b0;
    end else if (b_fire && m_axi_bresp != 2'b00) begin
      err_q <= 1'b1;             // a new error wins over a clear
    end else if (err_clear_i) begin
      err_q <= 1'b0;
    end
  end
  assign err_o  = err_q;
  assign idle_o = ~cmd_active_q & bus_quiet;

  // ---------------------------------------------------------------------------
  // Assertions. Stability checks compare with last cycle's values kept in
  // shadow registers, since Icarus has no $past/$stable.
  // ---------------------------------------------------------------------------
`ifndef UZ_NO_ASSERT
  logic                   sh_aw_stall_q, sh_w_stall_q, sh_in_stall_q;
  logic [AddrWidth-1:0]   sh_awaddr_q;
  logic [7:0]             sh_awlen_q;
  logic [DataWidth-1:0]   sh_wdata_q, sh_in_data_q;
  logic [DataWidth/8-1:0] sh_wstrb_q;
  logic                   sh_wlast_q;
  logic                  sh_cmd_stall_q;
  logic [AddrWidth-1:0]  sh_cmd_addr_q;
  logic [BeatsWidth-1:0] sh_cmd_beats_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      sh_cmd_stall_q <= 1'b0;
      sh_cmd_addr_q  <= '0;
      sh_cmd_beats_q <= '0;
    end else begin
      sh_cmd_stall_q <= cmd_valid_i & ~cmd_ready_o;
      sh_cmd_addr_q  <= cmd_addr_i;
      sh_cmd_beats_q <= cmd_beats_i;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      sh_aw_stall_q <= 1'b0;
      sh_w_stall_q  <= 1'b0;
      sh_in_stall_q <= 1'b0;
      sh_awaddr_q   <= '0;
      sh_awlen_q    <= '0;
      sh_wdata_q    <= '0;
      sh_in_data_q  <= '0;
      sh_wstrb_q    <= '0;
      sh_wlast_q    <= 1'b0;
    end else begin
      sh_aw_stall_q <= m_axi_awvalid & ~m_axi_awready;
      sh_w_stall_q  <= m_axi_wvalid & ~m_axi_wready;
      sh_in_stall_q <= data_valid_i & ~data_ready_o;
      sh_awaddr_q   <= m_axi_awaddr;
      sh_awlen_q    <= m_axi_awlen;
      sh_wdata_q    <= m_axi_wdata;
      sh_in_data_q  <= data_i;
      sh_wstrb_q    <= m_axi_wstrb;
      sh_wlast_q    <= m_axi_wlast;
    end
  end

  `ASSERT(AwStable_A, !sh_aw_stall_q ||
          (m_axi_awvalid && m_axi_awaddr == sh_awaddr_q && m_axi_awlen == sh_awlen_q), clk_i, rst_ni)
  `ASSERT(WStable_A, !sh_w_stall_q || (m_axi_wvalid && m_axi_wdata == sh_wdata_q &&
          m_axi_wstrb == sh_wstrb_q && m_axi_wlast == sh_wlast_q), clk_i, rst_ni)
  // ready above leaves out the command handshake on this
  `ASSERT(DropSkidEmpty_A, !drop_q || !skid_valid_q, clk_i, rst_ni)
  // Producer side of the stream; an abort may withdraw it.
  `ASSERT(DataInStable_A, !sh_in_stall_q || abort_act || (data_valid_i && data_i == sh_in_data_q),
          clk_i, rst_ni)
  // Caller side of the command port; an abort may withdraw it.
  `ASSERT(CmdStable_A, !sh_cmd_stall_q || abort_act ||
          (cmd_valid_i && cmd_addr_i == sh_cmd_addr_q && cmd_beats_i == sh_cmd_beats_q), clk_i, rst_ni)
  `ASSERT(CmdAligned_A, !cmd_fire || (cmd_addr_i & AddrWidth'(BytesPerBeat - 1)) == '0, clk_i, rst_ni)
  `ASSERT(CmdBeatsNonZero_A, !cmd_fire || cmd_beats_i != '0, clk_i, rst_ni)
  `ASSERT(OutstNoOverflow_A, outst_q <= CntWidth'(MaxOutstanding), clk_i, rst_ni)
  `ASSERT(OutstNoUnderflow_A, !b_fire || outst_q != '0, clk_i, rst_ni)
  `ASSERT(WlenWithinOutst_A, wlen_cnt_q <= outst_q, clk_i, rst_ni)
  `ASSERT(WlenNoUnderflow_A, !(w_load && w_load_last) || wlen_cnt_q != '0, clk_i, rst_ni)
  `ASSERT(WBeatInBurst_A, wlen_cnt_q == '0 || w_beat_q <= wlen_q[wlen_rptr_q], clk_i, rst_ni)
  // AXI4: a B response only after its burst's data is complete.
  `ASSERT(BAfterData_A, !b_fire ||
          (CntWidth+1)'(outst_q) > (CntWidth+1)'(wlen_cnt_q) + (CntWidth+1)'(w_valid_q & w_last_q), clk_i, rst_ni)
  `ASSERT(BIdMatches_A, !m_axi_bvalid || m_axi_bid == '0, clk_i, rst_ni)
  `ASSERT(AwNoPageCross_A, !aw_load ||
          (CalcWidth'(page_pos) + burst_beats) <= CalcWidth'(PageBeats), clk_i, rst_ni)
  `ASSERT(AwLenNonZero_A, !aw_load || burst_beats != '0, clk_i, rst_ni)
  `ASSERT_KNOWN(AwValidKnown_A, m_axi_awvalid, clk_i, rst_ni)
  `ASSERT_KNOWN(WValidKnown_A, m_axi_wvalid, clk_i, rst_ni)
`endif
endmodule
