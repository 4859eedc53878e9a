// Benchmark toplevel (simulation only): the engine (uz_top) with the
// simulation memory model (uz_tb_axi_mem) on its AXI4 master port. The
// testbench drives only the clock, the reset and the register port, and
// reads the memory's traffic counters and dumps (tb/bench_run.py).
// uz_top's parameters and the memory's pass through under their own names.
module uz_bench_top #(
  // engine (uz_top)
  parameter int DataWidth        = 16,
  parameter int AccWidth         = 48,
  parameter int PM               = 16,
  parameter int PN               = 16,
  parameter int OvsfLen          = 16,
  parameter int AlphaWidth       = 16,
  parameter int AxiDataWidth     = 128,
  parameter int GenLanes         = 8,
  parameter int AxiAddrWidth     = 32,
  parameter int AxiIdWidth       = 4,
  parameter int InBufElems       = 65536,
  parameter int WgtBufElems      = 65536,
  parameter int OutBufElems      = 32768,
  parameter int MaxK             = 3,
  parameter int InReads          = 4,
  parameter int MaxPerfLayers    = 64,
  parameter int CsrAddrWidth     = 8,
  // memory (uz_tb_axi_mem)
  parameter int MemBytes         = 256 * 1024 * 1024,
  parameter int BytesPerCycleNum = 16,
  parameter int BytesPerCycleDen = 1,
  parameter int LatencyCycles    = 16,
  parameter int MaxOutstanding   = 8,
  parameter int BurstBeats       = 4
) (
  input  logic                    clk_i,
  input  logic                    rst_ni,
  // control and status
  input  logic [CsrAddrWidth-1:0] s_axil_awaddr,
  input  logic [2:0]              s_axil_awprot,
  input  logic                    s_axil_awvalid,
  output logic                    s_axil_awready,
  input  logic [31:0]             s_axil_wdata,
  input  logic [3:0]              s_axil_wstrb,
  input  logic                    s_axil_wvalid,
  output logic                    s_axil_wready,
  output logic [1:0]              s_axil_bresp,
  output logic                    s_axil_bvalid,
  input  logic                    s_axil_bready,
  input  logic [CsrAddrWidth-1:0] s_axil_araddr,
  input  logic [2:0]              s_axil_arprot,
  input  logic                    s_axil_arvalid,
  output logic                    s_axil_arready,
  output logic [31:0]             s_axil_rdata,
  output logic [1:0]              s_axil_rresp,
  output logic                    s_axil_rvalid,
  input  logic                    s_axil_rready,
  output logic                    irq_o,
  // memory dump (word addresses) and traffic counters
  input  logic                    dump_i,
  input  logic [31:0]             dump_lo_i,
  input  logic [31:0]             dump_hi_i,
  output logic [31:0]             dump_count_o,
  output logic [63:0]             rd_bytes_o,
  output logic [63:0]             wr_bytes_o
);
  logic [AxiIdWidth-1:0]     arid, rid, awid, bid;
  logic [AxiAddrWidth-1:0]   araddr, awaddr;
  logic [7:0]                arlen, awlen;
  logic [2:0]                arsize, arprot, awsize, awprot;
  logic [1:0]                arburst, rresp, awburst, bresp;
  logic [3:0]                arcache, arqos, awcache, awqos;
  logic                      arlock, arvalid, arready, rlast, rvalid, rready;
  logic                      awlock, awvalid, awready, wlast, wvalid, wready, bvalid, bready;
  logic [AxiDataWidth-1:0]   rdata, wdata;
  logic [AxiDataWidth/8-1:0] wstrb;

  uz_top #(
    .DataWidth(DataWidth), .AccWidth(AccWidth), .PM(PM), .PN(PN), .OvsfLen(OvsfLen),
    .AlphaWidth(AlphaWidth), .AxiDataWidth(AxiDataWidth), .GenLanes(GenLanes), .AxiAddrWidth(AxiAddrWidth),
    .AxiIdWidth(AxiIdWidth), .InBufElems(InBufElems), .WgtBufElems(WgtBufElems),
    .OutBufElems(OutBufElems), .MaxK(MaxK), .InReads(InReads), .MaxPerfLayers(MaxPerfLayers), .CsrAddrWidth(CsrAddrWidth)
  ) u_top (
    .clk_i, .rst_ni,
    .s_axil_awaddr, .s_axil_awprot, .s_axil_awvalid, .s_axil_awready,
    .s_axil_wdata, .s_axil_wstrb, .s_axil_wvalid, .s_axil_wready,
    .s_axil_bresp, .s_axil_bvalid, .s_axil_bready,
    .s_axil_araddr, .s_axil_arprot, .s_axil_arvalid, .s_axil_arready,
    .s_axil_rdata, .s_axil_rresp, .s_axil_rvalid, .s_axil_rready,
    .m_axi_arid(arid), .m_axi_araddr(araddr), .m_axi_arlen(arlen), .m_axi_arsize(arsize),
    .m_axi_arburst(arburst), .m_axi_arlock(arlock), .m_axi_arcache(arcache), .m_axi_arprot(arprot),
    .m_axi_arqos(arqos), .m_axi_arvalid(arvalid), .m_axi_arready(arready),
    .m_axi_rid(rid), .m_axi_rdata(rdata), .m_axi_rresp(rresp), .m_axi_rlast(rlast),
    .m_axi_rvalid(rvalid), .m_axi_rready(rready),
    .m_axi_awid(awid), .m_axi_awaddr(awaddr), .m_axi_awlen(awlen), .m_axi_awsize(awsize),
    .m_axi_awburst(awburst), .m_axi_awlock(awlock), .m_axi_awcache(awcache), .m_axi_awprot(awprot),
    .m_axi_awqos(awqos), .m_axi_awvalid(awvalid), .m_axi_awready(awready),
    .m_axi_wdata(wdata), .m_axi_wstrb(wstrb), .m_axi_wlast(wlast), .m_axi_wvalid(wvalid),
    .m_axi_wready(wready),
    .m_axi_bid(bid), .m_axi_bresp(bresp), .m_axi_bvalid(bvalid), .m_axi_bready(bready),
    .irq_o
  );

  uz_tb_axi_mem #(
    .DataWidth(AxiDataWidth), .AddrWidth(AxiAddrWidth), .IdWidth(AxiIdWidth), .MemBytes(MemBytes),
    .BytesPerCycleNum(BytesPerCycleNum), .BytesPerCycleDen(BytesPerCycleDen),
    .LatencyCycles(LatencyCycles), .MaxOutstanding(MaxOutstanding), .BurstBeats(BurstBeats)
  ) u_mem (
    .clk_i, .rst_ni,
    .s_axi_awid(awid), .s_axi_awaddr(awaddr), .s_axi_awlen(awlen), .s_axi_awsize(awsize),
    .s_axi_awburst(awburst), .s_axi_awlock(awlock), .s_axi_awcache(awcache), .s_axi_awprot(awprot),
    .s_axi_awqos(awqos), .s_axi_awvalid(awvalid), .s_axi_awready(awready),
    .s_axi_wdata(wdata), .s_axi_wstrb(wstrb), .s_axi_wlast(wlast), .s_axi_wvalid(wvalid),
    .s_axi_wready(wready),
    .s_axi_bid(bid), .s_axi_bresp(bresp), .s_axi_bvalid(bvalid), .s_axi_bready(bready),
    .s_axi_arid(arid), .s_axi_araddr(araddr), .s_axi_arlen(arlen), .s_axi_arsize(arsize),
    .s_axi_arburst(arburst), .s_axi_arlock(arlock), .s_axi_arcache(arcache), .s_axi_arprot(arprot),
    .s_axi_arqos(arqos), .s_axi_arvalid(arvalid), .s_axi_arready(arready),
    .s_axi_rid(rid), .s_axi_rdata(rdata), .s_axi_rresp(rresp), .s_axi_rlast(rlast),
    .s_axi_rvalid(rvalid), .s_axi_rready(rready),
    .dump_i, .dump_lo_i, .dump_hi_i, .dump_count_o, .rd_bytes_o, .wr_bytes_o
  );
endmodule
