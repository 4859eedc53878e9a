// uz engine top level: AXI4-Lite registers, AXI4 memory master, interrupt.
// Parameters mirror golden.config.EngineConfig; docs/architecture.md.
module uz_top
  import uz_isa_pkg::*;
#(
  parameter int DataWidth     = 16,
  parameter int AccWidth      = 48,
  parameter int PM            = 16,
  parameter int PN            = 16,
  parameter int OvsfLen       = 16,
  parameter int AlphaWidth    = 16,
  parameter int AxiDataWidth  = 128,
  // OVSF blocks generated per cycle, each into its own weight bank (<= PM)
  parameter int GenLanes      = 8,
  parameter int AxiAddrWidth  = 32,
  parameter int AxiIdWidth    = 4,
  parameter int InBufElems    = 65536,
  parameter int WgtBufElems   = 65536,
  parameter int OutBufElems   = 32768,
  parameter int MaxK          = 3,      // largest kernel (1, 3, 5, 7 or 11): sizes the compute's window
  parameter int InReads       = 4,      // input words the column fetcher reads a cycle (2, 4 or 8)
  parameter int MaxPerfLayers = 64,
  parameter int CsrAddrWidth  = 8
) (
  input  logic                      clk_i,
  input  logic                      rst_ni,
  // control and status
  input  logic [CsrAddrWidth-1:0]   s_axil_awaddr,
  input  logic [2:0]                s_axil_awprot,
  input  logic                      s_axil_awvalid,
  output logic                      s_axil_awready,
  input  logic [31:0]               s_axil_wdata,
  input  logic [3:0]                s_axil_wstrb,
  input  logic                      s_axil_wvalid,
  output logic                      s_axil_wready,
  output logic [1:0]                s_axil_bresp,
  output logic                      s_axil_bvalid,
  input  logic                      s_axil_bready,
  input  logic [CsrAddrWidth-1:0]   s_axil_araddr,
  input  logic [2:0]                s_axil_arprot,
  input  logic                      s_axil_arvalid,
  output logic                      s_axil_arready,
  output logic [31:0]               s_axil_rdata,
  output logic [1:0]                s_axil_rresp,
  output logic                      s_axil_rvalid,
  input  logic                      s_axil_rready,
  // external memory
  output logic [AxiIdWidth-1:0]     m_axi_arid,
  output logic [AxiAddrWidth-1:0]   m_axi_araddr,
  output logic [7:0]                m_axi_arlen,
  output logic [2:0]                m_axi_arsize,
  output logic [1:0]                m_axi_arburst,
  output logic                      m_axi_arlock,
  output logic [3:0]                m_axi_arcache,
  output logic [2:0]                m_axi_arprot,
  output logic [3:0]                m_axi_arqos,
  output logic                      m_axi_arvalid,
  input  logic                      m_axi_arready,
  input  logic [AxiIdWidth-1:0]     m_axi_rid,
  input  logic [AxiDataWidth-1:0]   m_axi_rdata,
  input  logic [1:0]                m_axi_rresp,
  input  logic                      m_axi_rlast,
  input  logic                      m_axi_rvalid,
  output logic                      m_axi_rready,
  output logic [AxiIdWidth-1:0]     m_axi_awid,
  output logic [AxiAddrWidth-1:0]   m_axi_awaddr,
  output logic [7:0]                m_axi_awlen,
  output logic [2:0]                m_axi_awsize,
  output logic [1:0]                m_axi_awburst,
  output logic                      m_axi_awlock,
  output logic [3:0]                m_axi_awcache,
  output logic [2:0]                m_axi_awprot,
  output logic [3:0]                m_axi_awqos,
  output logic                      m_axi_awvalid,
  input  logic                      m_axi_awready,
  output logic [AxiDataWidth-1:0]   m_axi_wdata,
  output logic [AxiDataWidth/8-1:0] m_axi_wstrb,
  output logic                      m_axi_wlast,
  output logic                      m_axi_wvalid,
  input  logic                      m_axi_wready,
  input  logic [AxiIdWidth-1:0]     m_axi_bid,
  input  logic [1:0]                m_axi_bresp,
  input  logic                      m_axi_bvalid,
  output logic                      m_axi_bready,
  output logic                      irq_o
);
  localparam int BeatsWidth = 24;

  `include "uz_assert.svh"
  // Parameter rules (golden/config.py states the same).
  `ASSERT_INIT(DataWidthLegal_A, DataWidth == 8 || DataWidth == 16)
  `ASSERT_INIT(AlphaWidthLegal_A, AlphaWidth == 8 || AlphaWidth == 16)
  `ASSERT_INIT(AccWidthLegal_A, AccWidth >= 2 * DataWidth && AccWidth <= 53)
  `ASSERT_INIT(PnPowerOfTwo_A, PN >= 2 && (PN & (PN - 1)) == 0)
  `ASSERT_INIT(PmMultipleOfPn_A, PM >= PN && (PM % PN) == 0)
  `ASSERT_INIT(MaxKLegal_A, MaxK == 1 || MaxK == 3 || MaxK == 5 || MaxK == 7 || MaxK == 11)
  `ASSERT_INIT(InReadsLegal_A, InReads == 2 || InReads == 4 || InReads == 8)
  `ASSERT_INIT(OvsfLenDividesPn_A, OvsfLen >= 2 && OvsfLen <= PN && (PN % OvsfLen) == 0)
  `ASSERT_INIT(PixelWholeBeats_A, (PN * DataWidth) % AxiDataWidth == 0)
  `ASSERT_INIT(AlphaTileWholeBeats_A, (PM * AlphaWidth) % AxiDataWidth == 0)
  `ASSERT_INIT(DescWholeBeats_A, DescBits % AxiDataWidth == 0)
  `ASSERT_INIT(AxiAddr32_A, AxiAddrWidth == 32)

  // ---------------------------------------------------------- registers
  logic        start, abort, busy, done, err, perf_valid;
  logic [31:0] desc_addr;
  logic [15:0] layer_count, cur_layer, err_layer, perf_layer;
  logic [7:0]  err_code;
  logic [63:0] perf_cycles, perf_mac, perf_stall, perf_gen;

  uz_csr #(
    .AddrWidth(CsrAddrWidth), .PM(PM), .PN(PN), .DataWidth(DataWidth), .OvsfLen(OvsfLen),
    .MaxPerfLayers(MaxPerfLayers)
  ) u_csr (
    .clk_i, .rst_ni,
    .s_axil_awaddr, .s_axil_awprot, .s_axil_awvalid, .s_axil_awready,
    .s_axil_wdata, .s_axil_wstrb, .s_axil_wvalid, .s_axil_wready,
    .s_axil_bresp, .s_axil_bvalid, .s_axil_bready,
    .s_axil_araddr, .s_axil_arprot, .s_axil_arvalid, .s_axil_arready,
    .s_axil_rdata, .s_axil_rresp, .s_axil_rvalid, .s_axil_rready,
    .start_o(start), .abort_o(abort), .desc_addr_o(desc_addr), .layer_count_o(layer_count),
    .busy_i(busy), .done_i(done), .err_i(err), .err_code_i(err_code), .err_layer_i(err_layer),
    .cur_layer_i(cur_layer), .perf_valid_i(perf_valid), .perf_layer_i(perf_layer),
    .perf_cycles_i(perf_cycles), .perf_mac_busy_i(perf_mac), .perf_mem_stall_i(perf_stall),
    .perf_gen_busy_i(perf_gen), .irq_o
  );

  // ------------------------------------------------------------ DMAs
  logic                    rd_cmd_valid, rd_cmd_ready, rd_data_valid, rd_data_ready, rd_data_last;
  logic [31:0]             rd_cmd_addr;
  logic [BeatsWidth-1:0]   rd_cmd_beats;
  logic [AxiDataWidth-1:0] rd_data;
  logic                    rd_idle, rd_err, rd_err_clear;
  logic                    wr_cmd_valid, wr_cmd_ready, wr_data_valid, wr_data_ready;
  logic [31:0]             wr_cmd_addr;
  logic [BeatsWidth-1:0]   wr_cmd_beats;
  logic [AxiDataWidth-1:0] wr_data;
  logic                    wr_idle, wr_err, wr_err_clear, dma_abort;

  uz_axi_rd #(
    .AddrWidth(AxiAddrWidth), .DataWidth(AxiDataWidth), .IdWidth(AxiIdWidth), .BeatsWidth(BeatsWidth)
  ) u_axi_rd (
    .clk_i, .rst_ni,
    .cmd_valid_i(rd_cmd_valid), .cmd_ready_o(rd_cmd_ready), .cmd_addr_i(rd_cmd_addr), .cmd_beats_i(rd_cmd_beats),
    .data_valid_o(rd_data_valid), .data_ready_i(rd_data_ready), .data_o(rd_data), .data_last_o(rd_data_last),
    .abort_i(dma_abort), .idle_o(rd_idle), .err_o(rd_err), .err_clear_i(rd_err_clear),
    .m_axi_arid, .m_axi_araddr, .m_axi_arlen, .m_axi_arsize, .m_axi_arburst, .m_axi_arlock,
    .m_axi_arcache, .m_axi_arprot, .m_axi_arqos, .m_axi_arvalid, .m_axi_arready,
    .m_axi_rid, .m_axi_rdata, .m_axi_rresp, .m_axi_rlast, .m_axi_rvalid, .m_axi_rready
  );

  uz_axi_wr #(
    .AddrWidth(AxiAddrWidth), .DataWidth(AxiDataWidth), .IdWidth(AxiIdWidth), .BeatsWidth(BeatsWidth)
  ) u_axi_wr (
    .clk_i, .rst_ni,
    .cmd_valid_i(wr_cmd_valid), .cmd_ready_o(wr_cmd_ready), .cmd_addr_i(wr_cmd_addr), .cmd_beats_i(wr_cmd_beats),
    .data_valid_i(wr_data_valid), .data_ready_o(wr_data_ready), .data_i(wr_data),
    .abort_i(dma_abort), .idle_o(wr_idle), .err_o(wr_err), .err_clear_i(wr_err_clear),
    .m_axi_awid, .m_axi_awaddr, .m_axi_awlen, .m_axi_awsize, .m_axi_awburst, .m_axi_awlock,
    .m_axi_awcache, .m_axi_awprot, .m_axi_awqos, .m_axi_awvalid, .m_axi_awready,
    .m_axi_wdata, .m_axi_wstrb, .m_axi_wlast, .m_axi_wvalid, .m_axi_wready,
    .m_axi_bid, .m_axi_bresp, .m_axi_bvalid, .m_axi_bready
  );

  // ------------------------------------------------------- controller
  logic [DescBits-1:0]   desc;
  uz_err_e               desc_err;
  logic                  desc_check, desc_done;
  logic [uz_util_pkg::CheckGeomBits-1:0] desc_geom;   // the layer's sizes, from the check
  logic                  layer_start, layer_abort, layer_done, mac_step, mem_stall, gen_busy;
  logic                  fetch;
  logic                  c_rd_cmd_valid, c_rd_data_ready;
  logic [31:0]           c_rd_cmd_addr;
  logic [BeatsWidth-1:0] c_rd_cmd_beats;
  logic                  l_rd_cmd_valid, l_rd_data_ready;
  logic [31:0]           l_rd_cmd_addr;
  logic [BeatsWidth-1:0] l_rd_cmd_beats;

  uz_desc_check #(
    .PM(PM), .PN(PN), .DataWidth(DataWidth), .OvsfLen(OvsfLen), .AlphaWidth(AlphaWidth),
    .AxiDataWidth(AxiDataWidth), .InBufElems(InBufElems), .WgtBufElems(WgtBufElems), .OutBufElems(OutBufElems),
    .MaxK(MaxK)
  ) u_desc_check (
    .clk_i, .rst_ni, .check_i(desc_check), .desc_i(desc), .done_o(desc_done), .err_o(desc_err),
    .geom_o(desc_geom)
  );

  uz_ctrl #(.AxiDataWidth(AxiDataWidth), .BeatsWidth(BeatsWidth)) u_ctrl (
    .clk_i, .rst_ni,
    .start_i(start), .abort_i(abort), .desc_addr_i(desc_addr), .layer_count_i(layer_count),
    .busy_o(busy), .done_o(done), .err_o(err), .err_code_o(err_code), .err_layer_o(err_layer),
    .cur_layer_o(cur_layer), .perf_valid_o(perf_valid), .perf_layer_o(perf_layer),
    .perf_cycles_o(perf_cycles), .perf_mac_busy_o(perf_mac), .perf_mem_stall_o(perf_stall),
    .perf_gen_busy_o(perf_gen),
    .fetch_o(fetch), .rd_cmd_valid_o(c_rd_cmd_valid), .rd_cmd_ready_i(rd_cmd_ready),
    .rd_cmd_addr_o(c_rd_cmd_addr), .rd_cmd_beats_o(c_rd_cmd_beats),
    .rd_data_valid_i(rd_data_valid), .rd_data_ready_o(c_rd_data_ready), .rd_data_i(rd_data),
    .rd_data_last_i(rd_data_last), .rd_err_i(rd_err), .rd_idle_i(rd_idle), .rd_err_clear_o(rd_err_clear),
    .wr_err_i(wr_err), .wr_idle_i(wr_idle), .wr_err_clear_o(wr_err_clear), .dma_abort_o(dma_abort),
    .desc_o(desc), .desc_check_o(desc_check), .desc_done_i(desc_done), .desc_err_i(8'(desc_err)),
    .layer_start_o(layer_start), .layer_abort_o(layer_abort),
    .layer_done_i(layer_done), .mac_step_i(mac_step), .mem_stall_i(mem_stall), .gen_busy_i(gen_busy)
  );

  // The controller owns the read DMA while it fetches a descriptor; the
  // layer's loader the rest of the time.
  assign rd_cmd_valid  = fetch ? c_rd_cmd_valid : l_rd_cmd_valid;
  assign rd_cmd_addr   = fetch ? c_rd_cmd_addr : l_rd_cmd_addr;
  assign rd_cmd_beats  = fetch ? c_rd_cmd_beats : l_rd_cmd_beats;
  assign rd_data_ready = fetch ? c_rd_data_ready : l_rd_data_ready;

  uz_layer #(
    .PM(PM), .PN(PN), .DataWidth(DataWidth), .AccWidth(AccWidth), .OvsfLen(OvsfLen),
    .AlphaWidth(AlphaWidth), .AxiDataWidth(AxiDataWidth), .GenLanes(GenLanes), .InBufElems(InBufElems),
    .WgtBufElems(WgtBufElems), .OutBufElems(OutBufElems), .BeatsWidth(BeatsWidth), .MaxK(MaxK),
    .InReads(InReads)
  ) u_layer (
    .clk_i, .rst_ni, .start_i(layer_start), .abort_i(layer_abort), .desc_i(desc), .geom_i(desc_geom), .done_o(layer_done),
    .rd_cmd_valid_o(l_rd_cmd_valid), .rd_cmd_ready_i(rd_cmd_ready && !fetch), .rd_cmd_addr_o(l_rd_cmd_addr),
    .rd_cmd_beats_o(l_rd_cmd_beats), .rd_data_valid_i(rd_data_valid && !fetch),
    .rd_data_ready_o(l_rd_data_ready), .rd_data_i(rd_data), .rd_data_last_i(rd_data_last),
    .wr_cmd_valid_o(wr_cmd_valid), .wr_cmd_ready_i(wr_cmd_ready), .wr_cmd_addr_o(wr_cmd_addr),
    .wr_cmd_beats_o(wr_cmd_beats), .wr_data_valid_o(wr_data_valid), .wr_data_ready_i(wr_data_ready),
    .wr_data_o(wr_data),
    .mac_step_o(mac_step), .mem_stall_o(mem_stall), .gen_busy_o(gen_busy)
  );

  // Every output known once out of reset (tests/testplan.md, "RTL
  // assertions"); payloads where their valid is high.
`ifndef UZ_NO_ASSERT
  `ASSERT_KNOWN(IrqKnown_A, irq_o, clk_i, rst_ni)
  `ASSERT_KNOWN(AxilReadyKnown_A, {s_axil_awready, s_axil_wready, s_axil_arready}, clk_i, rst_ni)
  `ASSERT_KNOWN(AxilValidKnown_A, {s_axil_bvalid, s_axil_rvalid}, clk_i, rst_ni)
  `ASSERT_KNOWN(AxilBrespKnown_A, s_axil_bvalid ? s_axil_bresp : 2'b00, clk_i, rst_ni)
  `ASSERT_KNOWN(AxilRKnown_A, s_axil_rvalid ? {s_axil_rresp, s_axil_rdata} : 34'd0, clk_i, rst_ni)
  `ASSERT_KNOWN(AxiValidReadyKnown_A, {m_axi_arvalid, m_axi_awvalid, m_axi_wvalid, m_axi_rready, m_axi_bready},
                clk_i, rst_ni)
  `ASSERT_KNOWN(AxiArKnown_A, m_axi_arvalid ? {m_axi_arid, m_axi_araddr, m_axi_arlen, m_axi_arsize, m_axi_arburst,
                m_axi_arlock, m_axi_arcache, m_axi_arprot, m_axi_arqos} : '0, clk_i, rst_ni)
  `ASSERT_KNOWN(AxiAwKnown_A, m_axi_awvalid ? {m_axi_awid, m_axi_awaddr, m_axi_awlen, m_axi_awsize, m_axi_awburst,
                m_axi_awlock, m_axi_awcache, m_axi_awprot, m_axi_awqos} : '0, clk_i, rst_ni)
  `ASSERT_KNOWN(AxiWKnown_A, m_axi_wvalid ? {m_axi_wdata, m_axi_wstrb, m_axi_wlast} : '0, clk_i, rst_ni)
`endif
endmodule
