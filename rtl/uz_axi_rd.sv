// AXI4 read DMA (docs/architecture.md, "Memory interface"). A command
// (bus-aligned byte address, beats) becomes INCR bursts of at most
// MaxBurstBeats full-width beats that never cross a 4 KiB page. Up to
// MaxOutstanding bursts run ahead of the data; the next command is accepted
// while earlier data still returns. All bursts use ID 0, so data comes back
// in command order and leaves as a ready/valid stream with data_last_o on
// each command's last beat.
//
// Errors: a non-OKAY rresp sets the sticky err_o; the beat is delivered
// anyway so nothing waits forever. Abort (pulse or level): no further
// bursts, the unissued rest of the command is dropped, beats still in the
// output stage are withdrawn and every outstanding R beat is accepted and
// discarded; idle_o rises once the bus is quiet. Commands are refused while
// abort_i is high or the drain is still running.
//
// The AXI ports carry no _i/_o suffix so that bus models find them by the
// usual AXI names (cocotbext-axi AxiBus.from_prefix(dut, "m_axi")).
`include "uz_assert.svh"

module uz_axi_rd #(
  parameter int AddrWidth      = 32,
  parameter int DataWidth      = 128,
  parameter int IdWidth        = 4,
  parameter int MaxBurstBeats  = 256,
  parameter int MaxOutstanding = 4,
  parameter int BeatsWidth     = 24
) (
  input  logic                  clk_i,
  // The ASSERT macros use rst_ni in `disable iff`, which Verilator sees as
  // a synchronous use of an asynchronous reset; only assertions do that.
  /* verilator lint_off SYNCASYNCNET */
  input  logic                  rst_ni,
  /* verilator lint_on SYNCASYNCNET */

  // Command: read cmd_beats_i beats from byte address cmd_addr_i.
  input  logic                  cmd_valid_i,
  output logic                  cmd_ready_o,
  input  logic [AddrWidth-1:0]  cmd_addr_i,
  input  logic [BeatsWidth-1:0] cmd_beats_i,

  // Data stream, in command order.
  output logic                  data_valid_o,
  input  logic                  data_ready_i,
  output logic [DataWidth-1:0]  data_o,
  output logic                  data_last_o,

  input  logic                  abort_i,
  output logic                  idle_o,
  output logic                  err_o,
  input  logic                  err_clear_i,

  // AXI4 master, read channels.
  output logic [IdWidth-1:0]    m_axi_arid,
  output logic [AddrWidth-1:0]  m_axi_araddr,
  output logic [7:0]            m_axi_arlen,
  output logic [2:0]            m_axi_arsize,
  output logic [1:0]            m_axi_arburst,
  output logic                  m_axi_arlock,
  output logic [3:0]            m_axi_arcache,
  output logic [2:0]            m_axi_arprot,
  output logic [3:0]            m_axi_arqos,
  output logic                  m_axi_arvalid,
  input  logic                  m_axi_arready,
  input  logic [IdWidth-1:0]    m_axi_rid,
  input  logic [DataWidth-1:0]  m_axi_rdata,
  input  logic [1:0]            m_axi_rresp,
  input  logic                  m_axi_rlast,
  input  logic                  m_axi_rvalid,
  output logic                  m_axi_rready
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
  // Command and burst splitting
  // ---------------------------------------------------------------------------
  logic                  cmd_active_q, cmd_active_d;
  logic [AddrWidth-1:0]  addr_q, addr_d;      // next burst address
  logic [BeatsWidth-1:0] left_q, left_d;      // beats not yet issued
  logic                  aborting_q, aborting_d;
  logic                  abort_act;
  logic [CntWidth-1:0]   outst_q, outst_d;    // bursts issued, last beat not yet seen

  logic                  ar_valid_q, ar_valid_d;
  logic [AddrWidth-1:0]  ar_addr_q, ar_addr_d;
  logic [7:0]            ar_len_q, ar_len_d;

  logic [CalcWidth-1:0]  page_left, burst_beats;
  logic [11-SizeLog2:0]  page_pos;            // beat index inside the 4 KiB page
  logic                  burst_is_last;
  logic                  cmd_fire, ar_load, r_fire, r_burst_done;

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

  // A new burst may replace the AR register only once the old one is taken;
  // AXI forbids withdrawing arvalid, so abort lets a waiting burst complete.
  assign ar_load = cmd_active_q & ~abort_act & (~ar_valid_q | m_axi_arready) &
                   (outst_q < CntWidth'(MaxOutstanding));

  assign r_fire       = m_axi_rvalid & m_axi_rready;
  assign r_burst_done = r_fire & m_axi_rlast;

  always_comb begin
    cmd_active_d = cmd_active_q;
    addr_d       = addr_q;
    left_d       = left_q;
    ar_valid_d   = ar_valid_q;
    ar_addr_d    = ar_addr_q;
    ar_len_d     = ar_len_q;
    if (m_axi_arready) ar_valid_d = 1'b0;
    if (ar_load) begin
      ar_valid_d = 1'b1;
      ar_addr_d  = addr_q;
      ar_len_d   = 8'(burst_beats - CalcWidth'(1));
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
    if (ar_load && !r_burst_done)      outst_d = outst_q + CntWidth'(1);
    else if (!ar_load && r_burst_done) outst_d = outst_q - CntWidth'(1);
  end

  // The drain ends when nothing is outstanding and abort_i has dropped.
  assign aborting_d = abort_i | (aborting_q & (outst_q != '0));

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      cmd_active_q <= 1'b0;
      addr_q       <= '0;
      left_q       <= '0;
      aborting_q   <= 1'b0;
      outst_q      <= '0;
      ar_valid_q   <= 1'b0;
      ar_addr_q    <= '0;
      ar_len_q     <= '0;
    end else begin
      cmd_active_q <= cmd_active_d;
      addr_q       <= addr_d;
      left_q       <= left_d;
      aborting_q   <= aborting_d;
      outst_q      <= outst_d;
      ar_valid_q   <= ar_valid_d;
      ar_addr_q    <= ar_addr_d;
      ar_len_q     <= ar_len_d;
    end
  end

  assign m_axi_arid    = '0;      // one ID: responses stay in order
  assign m_axi_araddr  = ar_addr_q;
  assign m_axi_arlen   = ar_len_q;
  assign m_axi_arsize  = 3'(SizeLog2);
  assign m_axi_arburst = 2'b01;   // INCR
  assign m_axi_arlock  = 1'b0;
  assign m_axi_arcache = 4'b0011; // normal, non-cacheable, bufferable
  assign m_axi_arprot  = 3'b000;
  assign m_axi_arqos   = 4'b0000;
  assign m_axi_arvalid = ar_valid_q;

  // ---------------------------------------------------------------------------
  // Per-burst "ends a command" flags, in issue order, to mark data_last_o
  // ---------------------------------------------------------------------------
  logic [MaxOutstanding-1:0] lastf_q;
  logic [PtrWidth-1:0]       lastf_wptr_q, lastf_rptr_q;

  function automatic logic [PtrWidth-1:0] ptr_inc(logic [PtrWidth-1:0] p);
    return (p == PtrWidth'(MaxOutstanding - 1)) ? '0 : p + PtrWidth'(1);
  endfunction

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      lastf_q      <= '0;
      lastf_wptr_q <= '0;
      lastf_rptr_q <= '0;
    end else begin
      if (ar_load) begin
        lastf_q[lastf_wptr_q] <= burst_is_last;
        lastf_wptr_q          <= ptr_inc(lastf_wptr_q);
      end
      if (r_burst_done) lastf_rptr_q <= ptr_inc(lastf_rptr_q);
    end
  end

  // ---------------------------------------------------------------------------
  // R -> data stream: output register plus skid register, so there is no
  // path from data_ready_i to rready and throughput is a beat per cycle.
  // ---------------------------------------------------------------------------
  logic                 out_valid_q, out_valid_d, out_last_q, out_last_d;
  logic [DataWidth-1:0] out_data_q, out_data_d;
  logic                 skid_valid_q, skid_valid_d, skid_last_q, skid_last_d;
  logic [DataWidth-1:0] skid_data_q, skid_data_d;
  logic                 r_last_of_cmd;

  assign m_axi_rready  = ~skid_valid_q | abort_act;
  assign r_last_of_cmd = m_axi_rlast & lastf_q[lastf_rptr_q];

  always_comb begin
    out_valid_d  = out_valid_q;
    out_data_d   = out_data_q;
    out_last_d   = out_last_q;
    skid_valid_d = skid_valid_q;
    skid_data_d  = skid_data_q;
    skid_last_d  = skid_last_q;
    if (abort_act) begin
      out_valid_d  = 1'b0;       // discard: the consumer is being aborted too
      skid_valid_d = 1'b0;
    end else if (!out_valid_q || data_ready_i) begin
      if (skid_valid_q) begin    // rready is low, so no R beat this cycle
        out_valid_d  = 1'b1;
        out_data_d   = skid_data_q;
        out_last_d   = skid_last_q;
        skid_valid_d = 1'b0;
      end else begin
        out_valid_d = r_fire;
        out_data_d  = m_axi_rdata;
        out_last_d  = r_last_of_cmd;
      end
    end else if (r_fire) begin   // output stalled: park the beat
      skid_valid_d = 1'b1;
      skid_data_d  = m_axi_rdata;
      skid_last_d  = r_last_of_cmd;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      out_valid_q  <= 1'b0;
      out_data_q   <= '0;
      out_last_q   <= 1'b0;
      skid_valid_q <= 1'b0;
      skid_data_q  <= '0;
      skid_last_q  <= 1'b0;
    end else begin
      out_valid_q  <= out_valid_d;
      out_data_q   <= out_data_d;
      out_last_q   <= out_last_d;
      skid_valid_q <= skid_valid_d;
      skid_data_q  <= skid_data_d;
      skid_last_q  <= skid_last_d;
    end
  end

  assign data_valid_o = out_valid_q;
  assign data_o       = out_data_q;
  assign data_last_o  = out_last_q;

  // ---------------------------------------------------------------------------
  // Status
  // ---------------------------------------------------------------------------
  logic err_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      err_q <= 1'b0;
    end else if (r_fire && m_axi_rresp != 2'b00) begin
      err_q <= 1'b1;             // a new error wins over a clear
    end else if (err_clear_i) begin
      err_q <= 1'b0;
    end
  end
  assign err_o  = err_q;
  assign idle_o = ~cmd_active_q & (outst_q == '0) & ~out_valid_q & ~skid_valid_q;

  // ---------------------------------------------------------------------------
  // Assertions. Stability checks compare with last cycle's values kept in
  // shadow registers, since Icarus has no $past/$stable.
  // ---------------------------------------------------------------------------
`ifndef UZ_NO_ASSERT
  logic                 sh_ar_stall_q, sh_data_stall_q;
  logic [AddrWidth-1:0] sh_araddr_q;
  logic [7:0]           sh_arlen_q;
  logic [DataWidth-1:0] sh_data_q;
  logic                 sh_last_q;
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
      sh_ar_stall_q   <= 1'b0;
      sh_data_stall_q <= 1'b0;
      sh_araddr_q     <= '0;
      sh_arlen_q      <= '0;
      sh_data_q       <= '0;
      sh_last_q       <= 1'b0;
    end else begin
      sh_ar_stall_q   <= m_axi_arvalid & ~m_axi_arready;
      sh_data_stall_q <= data_valid_o & ~data_ready_i;
      sh_araddr_q     <= m_axi_araddr;
      sh_arlen_q      <= m_axi_arlen;
      sh_data_q       <= data_o;
      sh_last_q       <= data_last_o;
    end
  end

  `ASSERT(ArStable_A, !sh_ar_stall_q ||
          (m_axi_arvalid && m_axi_araddr == sh_araddr_q && m_axi_arlen == sh_arlen_q), clk_i, rst_ni)
  // The data stream may only be withdrawn by an abort.
  `ASSERT(DataStable_A, !sh_data_stall_q || aborting_q ||
          (data_valid_o && data_o == sh_data_q && data_last_o == sh_last_q), clk_i, rst_ni)
  // Caller side of the command port; an abort may withdraw it.
  `ASSERT(CmdStable_A, !sh_cmd_stall_q || abort_act ||
          (cmd_valid_i && cmd_addr_i == sh_cmd_addr_q && cmd_beats_i == sh_cmd_beats_q), clk_i, rst_ni)
  `ASSERT(CmdAligned_A, !cmd_fire || (cmd_addr_i & AddrWidth'(BytesPerBeat - 1)) == '0, clk_i, rst_ni)
  `ASSERT(CmdBeatsNonZero_A, !cmd_fire || cmd_beats_i != '0, clk_i, rst_ni)
  `ASSERT(OutstNoOverflow_A, outst_q <= CntWidth'(MaxOutstanding), clk_i, rst_ni)
  `ASSERT(OutstNoUnderflow_A, !r_burst_done || outst_q != '0, clk_i, rst_ni)
  `ASSERT(RBeatExpected_A, !r_fire || outst_q != '0, clk_i, rst_ni)
  `ASSERT(RIdMatches_A, !m_axi_rvalid || m_axi_rid == '0, clk_i, rst_ni)
  `ASSERT(ArNoPageCross_A, !ar_load ||
          (CalcWidth'(page_pos) + burst_beats) <= CalcWidth'(PageBeats), clk_i, rst_ni)
  `ASSERT(ArLenNonZero_A, !ar_load || burst_beats != '0, clk_i, rst_ni)
  `ASSERT_KNOWN(ArValidKnown_A, m_axi_arvalid, clk_i, rst_ni)
  `ASSERT_KNOWN(DataValidKnown_A, data_valid_o, clk_i, rst_ni)
`endif
endmodule
