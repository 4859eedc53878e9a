`include "uz_assert.svh"

// Control and status registers on an AXI4-Lite slave: the register map of
// docs/architecture.md, "Control and status". All registers are 32 bits; the
// low two address bits are ignored (a partial write is selected by wstrb).
//
// Behaviour the map leaves open, decided here:
// - Unmapped addresses, and writes to read-only registers: reads return 0,
//   writes are ignored, both with an OKAY response (software probing the map
//   never takes a bus error).
// - CTRL reads back IRQ_EN in bit 2; START and ABORT read as 0. Every CTRL
//   write with wstrb[0] set loads IRQ_EN from bit 2.
// - START is accepted only while the engine is idle (STATUS.BUSY = 0); while
//   busy it is ignored: no start_o pulse, DONE/ERROR, the per-layer counters
//   and TOTAL_CYCLES stay as they are. An accepted START clears DONE, ERROR,
//   TOTAL_CYCLES and the per-layer counters. ABORT pulses abort_o always; if
//   START and ABORT are written together, ABORT wins and START is dropped.
// - STATUS.BUSY is busy_i or a start_o pulse in flight, so neither a read
//   nor a second START right after START finds the engine idle. The engine
//   must raise busy_i in the cycle after start_o and hold it until it pulses
//   done_i or err_i.
// - A done_i or err_i in the same cycle as a clear (W1C or START) wins: an
//   event is never lost.
// - ERR keeps the first error since ERROR was last clear: further err_i
//   pulses while ERROR is set do not overwrite it (the root cause, not the
//   abort that followed it). It is not cleared otherwise (reset: 0, ErrNone).
// - LAYER_COUNT and PERF_SEL are 16 bits wide (layer numbers are 16 bits);
//   their upper bits read as 0.
// - Per-layer counters are pushed by the engine once per layer (perf_valid_i)
//   and kept for layers 0..MaxPerfLayers-1; pushes for later layers are
//   dropped. A layer with no push since the last START, or PERF_SEL >=
//   MaxPerfLayers, reads as 0. They live in a memory without reset (a RAM on
//   an FPGA) read at PERF_SEL, so a new PERF_SEL shows from the next cycle.
// - 64-bit counters are read as two halves without a snapshot. They only
//   change while busy; software reading TOTAL_CYCLES during a run reads hi,
//   lo, hi and retries if hi moved.
// - Channels: AW and W are taken in any order (or together) into one holding
//   register each; a write takes effect when both are there and the B channel
//   is free (or freeing). One read at a time: arready is low while rvalid
//   waits. bvalid, rvalid and rdata hold until bready/rready.
module uz_csr #(
  parameter int AddrWidth     = 8,
  parameter int PM            = 16,
  parameter int PN            = 16,
  parameter int DataWidth     = 16,
  parameter int OvsfLen       = 16,
  parameter int MaxPerfLayers = 64
) (
  input  logic                 clk_i,
  // rst_ni resets the flops asynchronously and disables the ASSERT macros
  // (disable iff, a synchronous use): both intended.
  /* verilator lint_off SYNCASYNCNET */
  input  logic                 rst_ni,
  /* verilator lint_on SYNCASYNCNET */

  // AXI4-Lite slave
  input  logic [AddrWidth-1:0] s_axil_awaddr,
  input  logic [2:0]           s_axil_awprot,
  input  logic                 s_axil_awvalid,
  output logic                 s_axil_awready,
  input  logic [31:0]          s_axil_wdata,
  input  logic [3:0]           s_axil_wstrb,
  input  logic                 s_axil_wvalid,
  output logic                 s_axil_wready,
  output logic [1:0]           s_axil_bresp,
  output logic                 s_axil_bvalid,
  input  logic                 s_axil_bready,
  input  logic [AddrWidth-1:0] s_axil_araddr,
  input  logic [2:0]           s_axil_arprot,
  input  logic                 s_axil_arvalid,
  output logic                 s_axil_arready,
  output logic [31:0]          s_axil_rdata,
  output logic [1:0]           s_axil_rresp,
  output logic                 s_axil_rvalid,
  input  logic                 s_axil_rready,

  // Engine side
  output logic                 start_o,        // pulse: accepted CTRL.START
  output logic                 abort_o,        // pulse: CTRL.ABORT
  output logic [31:0]          desc_addr_o,
  output logic [15:0]          layer_count_o,
  input  logic                 busy_i,
  input  logic                 done_i,         // pulse: program finished
  input  logic                 err_i,          // pulse: program stopped on an error
  input  logic [7:0]           err_code_i,     // uz_isa_pkg::uz_err_e
  input  logic [15:0]          err_layer_i,
  input  logic [15:0]          cur_layer_i,
  input  logic                 perf_valid_i,   // pulse: counters of one finished layer
  input  logic [15:0]          perf_layer_i,
  input  logic [63:0]          perf_cycles_i,
  input  logic [63:0]          perf_mac_busy_i,
  input  logic [63:0]          perf_mem_stall_i,
  input  logic [63:0]          perf_gen_busy_i,
  output logic                 irq_o
);

  // Byte offsets of the register map.
  localparam int OffCtrl       = 'h00;
  localparam int OffStatus     = 'h04;
  localparam int OffErr        = 'h08;
  localparam int OffDescAddr   = 'h0C;
  localparam int OffLayerCount = 'h10;
  localparam int OffId         = 'h14;
  localparam int OffConfig     = 'h18;
  localparam int OffPerfSel    = 'h20;
  localparam int OffCyclesLo   = 'h24;
  localparam int OffCyclesHi   = 'h28;
  localparam int OffMacLo      = 'h2C;
  localparam int OffMacHi      = 'h30;
  localparam int OffStallLo    = 'h34;
  localparam int OffStallHi    = 'h38;
  localparam int OffGenLo      = 'h3C;
  localparam int OffGenHi      = 'h40;
  localparam int OffTotalLo    = 'h44;
  localparam int OffTotalHi    = 'h48;

  localparam logic [31:0] IdValue = 32'h757A_0001;  // "uz", version 1
  localparam int WordWidth = AddrWidth - 2;
  localparam int PerfIdxWidth = (MaxPerfLayers > 1) ? $clog2(MaxPerfLayers) : 1;

  localparam logic [31:0] ConfigValue = {8'($clog2(OvsfLen)), 8'(DataWidth), 8'(PN), 8'(PM)};

  `ASSERT_INIT(AddrWidthFitsMap, AddrWidth >= 7 && AddrWidth <= 32)
  `ASSERT_INIT(ConfigFieldsFit, PM >= 1 && PM < 256 && PN >= 1 && PN < 256 &&
                                DataWidth >= 1 && DataWidth < 256)
  `ASSERT_INIT(OvsfLenPow2, OvsfLen >= 1 && (1 << $clog2(OvsfLen)) == OvsfLen)
  `ASSERT_INIT(PerfDepthLegal, MaxPerfLayers >= 1 && MaxPerfLayers <= 65536)

  function automatic logic [WordWidth-1:0] word(input int off);
    return WordWidth'(off >> 2);
  endfunction

  // Byte-lane merge for writes honouring wstrb.
  function automatic logic [31:0] merge(input logic [31:0] old, input logic [31:0] data,
                                        input logic [3:0] strb);
    logic [31:0] m;
    m = {{8{strb[3]}}, {8{strb[2]}}, {8{strb[1]}}, {8{strb[0]}}};
    return (old & ~m) | (data & m);
  endfunction

  // ---------------------------------------------------------------------------
  // Write channel: AW and W each have a one-entry holding register.
  // ---------------------------------------------------------------------------
  logic                 aw_full_q, w_full_q, bvalid_q;
  logic [WordWidth-1:0] awaddr_q;  // word address
  logic [31:0]          wdata_q;
  logic [3:0]           wstrb_q;
  logic                 aw_avail, w_avail, wr_fire;
  logic [WordWidth-1:0] wr_word;
  logic [31:0]          wr_data;
  logic [3:0]           wr_strb;

  assign s_axil_awready = ~aw_full_q;
  assign s_axil_wready  = ~w_full_q;
  assign s_axil_bvalid  = bvalid_q;
  assign s_axil_bresp   = 2'b00;  // OKAY

  // A channel's beat is "available" from the holding register or straight off
  // the bus (ready is high whenever the register is empty).
  assign aw_avail = aw_full_q | s_axil_awvalid;
  assign w_avail  = w_full_q | s_axil_wvalid;
  assign wr_fire  = aw_avail & w_avail & (~bvalid_q | s_axil_bready);
  assign wr_word  = aw_full_q ? awaddr_q : s_axil_awaddr[AddrWidth-1:2];
  assign wr_data  = w_full_q ? wdata_q : s_axil_wdata;
  assign wr_strb  = w_full_q ? wstrb_q : s_axil_wstrb;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      aw_full_q <= 1'b0;
      w_full_q  <= 1'b0;
      bvalid_q  <= 1'b0;
      awaddr_q  <= '0;
      wdata_q   <= '0;
      wstrb_q   <= '0;
    end else begin
      aw_full_q <= aw_avail & ~wr_fire;
      w_full_q  <= w_avail & ~wr_fire;
      if (s_axil_awvalid && !aw_full_q) awaddr_q <= s_axil_awaddr[AddrWidth-1:2];
      if (s_axil_wvalid && !w_full_q) begin
        wdata_q <= s_axil_wdata;
        wstrb_q <= s_axil_wstrb;
      end
      if (wr_fire)            bvalid_q <= 1'b1;
      else if (s_axil_bready) bvalid_q <= 1'b0;
    end
  end

  // ---------------------------------------------------------------------------
  // Registers
  // ---------------------------------------------------------------------------
  logic        irq_en_q, done_q, error_q, start_q, abort_q;
  logic [7:0]  err_code_q;
  logic [15:0] err_layer_q, layer_count_q, perf_sel_q;
  logic [31:0] desc_addr_q;
  logic [63:0] total_q;
  logic        ctrl_wr, status_wr, start_req, abort_req, start_accept, busy;
  logic        done_clr, error_clr;

  assign busy      = busy_i | start_q;
  assign ctrl_wr   = wr_fire && wr_word == word(OffCtrl) && wr_strb[0];
  assign status_wr = wr_fire && wr_word == word(OffStatus) && wr_strb[0];
  assign abort_req = ctrl_wr & wr_data[1];
  assign start_req = ctrl_wr & wr_data[0] & ~wr_data[1];
  assign start_accept = start_req & ~busy;
  assign done_clr     = start_accept | (status_wr & wr_data[1]);
  assign error_clr    = start_accept | (status_wr & wr_data[2]);

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      irq_en_q      <= 1'b0;
      done_q        <= 1'b0;
      error_q       <= 1'b0;
      start_q       <= 1'b0;
      abort_q       <= 1'b0;
      err_code_q    <= '0;
      err_layer_q   <= '0;
      desc_addr_q   <= '0;
      layer_count_q <= '0;
      perf_sel_q    <= '0;
      total_q       <= '0;
    end else begin
      start_q <= start_accept;
      abort_q <= abort_req;
      if (ctrl_wr) irq_en_q <= wr_data[2];

      // Sticky flags: clear (W1C or START) first, so a set in the same cycle wins.
      if (done_clr)  done_q <= 1'b0;
      if (error_clr) error_q <= 1'b0;
      if (done_i)    done_q <= 1'b1;
      if (err_i) begin
        error_q <= 1'b1;
        if (!error_q || error_clr) begin
          err_code_q  <= err_code_i;
          err_layer_q <= err_layer_i;
        end
      end

      if (wr_fire) begin
        if (wr_word == word(OffDescAddr)) desc_addr_q <= merge(desc_addr_q, wr_data, wr_strb);
        if (wr_word == word(OffLayerCount)) begin
          layer_count_q <= 16'(merge({16'd0, layer_count_q}, wr_data, wr_strb));
        end
        if (wr_word == word(OffPerfSel)) begin
          perf_sel_q <= 16'(merge({16'd0, perf_sel_q}, wr_data, wr_strb));
        end
      end

      if (start_accept) total_q <= '0;
      else if (busy_i)  total_q <= total_q + 64'd1;
    end
  end

  assign start_o       = start_q;
  assign abort_o       = abort_q;
  assign desc_addr_o   = desc_addr_q;
  assign layer_count_o = layer_count_q;
  assign irq_o         = irq_en_q & (done_q | error_q);

  // ---------------------------------------------------------------------------
  // Per-layer counters: a memory of {gen, stall, mac, cycles} per layer, plus a
  // valid bit per layer so unwritten entries (and stale ones from before the
  // last START) read as 0 without resetting the memory.
  // ---------------------------------------------------------------------------
  logic [255:0]             perf_mem [MaxPerfLayers];
  logic [255:0]             perf_rd_q;
  logic [MaxPerfLayers-1:0] perf_vld_q;
  logic                     perf_rd_vld_q;
  logic                     perf_we, perf_sel_in_range;
  logic [PerfIdxWidth-1:0]  perf_wr_idx, perf_rd_idx;

  assign perf_we           = perf_valid_i && 32'(perf_layer_i) < MaxPerfLayers;
  assign perf_sel_in_range = 32'(perf_sel_q) < MaxPerfLayers;
  assign perf_wr_idx       = perf_layer_i[PerfIdxWidth-1:0];
  assign perf_rd_idx       = perf_sel_q[PerfIdxWidth-1:0];

  always_ff @(posedge clk_i) begin
    if (perf_we) perf_mem[perf_wr_idx] <= {perf_gen_busy_i, perf_mem_stall_i,
                                           perf_mac_busy_i, perf_cycles_i};
    perf_rd_q <= perf_mem[perf_rd_idx];
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      perf_vld_q    <= '0;
      perf_rd_vld_q <= 1'b0;
    end else begin
      if (start_accept) perf_vld_q <= '0;
      if (perf_we) perf_vld_q[perf_wr_idx] <= 1'b1;
      perf_rd_vld_q <= perf_sel_in_range & perf_vld_q[perf_rd_idx];
    end
  end

  // ---------------------------------------------------------------------------
  // Read channel: one read at a time; rdata is a snapshot taken at the AR
  // handshake and held until rready.
  // ---------------------------------------------------------------------------
  logic                 rvalid_q, ar_fire, rd_hi;
  logic [31:0]          rdata_q, rd_value;
  logic [63:0]          rd_src;
  logic [WordWidth-1:0] rd_word;
  logic [255:0]         perf_shown;
  logic [63:0]          perf_cycles, perf_mac, perf_stall, perf_gen;

  assign s_axil_arready = ~rvalid_q;
  assign s_axil_rvalid  = rvalid_q;
  assign s_axil_rdata   = rdata_q;
  assign s_axil_rresp   = 2'b00;  // OKAY
  assign ar_fire        = s_axil_arvalid & ~rvalid_q;
  assign rd_word        = s_axil_araddr[AddrWidth-1:2];
  assign perf_shown     = perf_rd_vld_q ? perf_rd_q : '0;
  // Part selects stay out of always_comb: Icarus 11 would widen its
  // sensitivity to the whole vector and warn about it.
  assign perf_cycles    = perf_shown[63:0];
  assign perf_mac       = perf_shown[127:64];
  assign perf_stall     = perf_shown[191:128];
  assign perf_gen       = perf_shown[255:192];
  assign rd_value       = rd_hi ? rd_src[63:32] : rd_src[31:0];

  // The word at the read address, as a 64-bit source and the half to show.
  always_comb begin
    rd_src = '0;
    rd_hi  = 1'b0;
    case (rd_word)
      word(OffCtrl):       rd_src = {61'd0, irq_en_q, 2'b00};
      word(OffStatus):     rd_src = {32'd0, cur_layer_i, 13'd0, error_q, done_q, busy};
      word(OffErr):        rd_src = {32'd0, err_layer_q, 8'd0, err_code_q};
      word(OffDescAddr):   rd_src = {32'd0, desc_addr_q};
      word(OffLayerCount): rd_src = {48'd0, layer_count_q};
      word(OffId):         rd_src = {32'd0, IdValue};
      word(OffConfig):     rd_src = {32'd0, ConfigValue};
      word(OffPerfSel):    rd_src = {48'd0, perf_sel_q};
      word(OffCyclesLo):   rd_src = perf_cycles;
      word(OffCyclesHi):   begin rd_src = perf_cycles; rd_hi = 1'b1; end
      word(OffMacLo):      rd_src = perf_mac;
      word(OffMacHi):      begin rd_src = perf_mac;    rd_hi = 1'b1; end
      word(OffStallLo):    rd_src = perf_stall;
      word(OffStallHi):    begin rd_src = perf_stall;  rd_hi = 1'b1; end
      word(OffGenLo):      rd_src = perf_gen;
      word(OffGenHi):      begin rd_src = perf_gen;    rd_hi = 1'b1; end
      word(OffTotalLo):    rd_src = total_q;
      word(OffTotalHi):    begin rd_src = total_q;     rd_hi = 1'b1; end
      default:             rd_src = '0;  // unmapped: 0, OKAY
    endcase
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      rvalid_q <= 1'b0;
      rdata_q  <= '0;
    end else begin
      if (ar_fire) begin
        rvalid_q <= 1'b1;
        rdata_q  <= rd_value;
      end else if (s_axil_rready) begin
        rvalid_q <= 1'b0;
      end
    end
  end

  // Protection bits and the byte offset within a word carry no meaning here.
  logic unused_axil;
  assign unused_axil = ^{s_axil_awprot, s_axil_arprot, s_axil_awaddr[1:0], s_axil_araddr[1:0]};

  `ASSERT_KNOWN(BvalidKnown, s_axil_bvalid, clk_i, rst_ni)
  `ASSERT_KNOWN(RvalidKnown, s_axil_rvalid, clk_i, rst_ni)
  `ASSERT_KNOWN(RdataKnown, s_axil_rvalid ? s_axil_rdata : 32'd0, clk_i, rst_ni)
  `ASSERT_NEVER(StartAndAbort, start_o && abort_o, clk_i, rst_ni)

endmodule
