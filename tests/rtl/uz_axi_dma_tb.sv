// Test top: uz_axi_rd and uz_axi_wr side by side on one AXI4 master port
// (reads from the one, writes from the other), so a single cocotbext-axi
// AxiRam serves both and one build covers both blocks.
module uz_axi_dma_tb #(
  parameter int AddrWidth      = 32,
  parameter int DataWidth      = 128,
  parameter int IdWidth        = 4,
  parameter int MaxBurstBeats  = 256,
  parameter int MaxOutstanding = 4,
  parameter int BeatsWidth     = 24
) (
  input  logic                   clk_i,
  input  logic                   rst_ni,

  input  logic                   rd_cmd_valid_i,
  output logic                   rd_cmd_ready_o,
  input  logic [AddrWidth-1:0]   rd_cmd_addr_i,
  input  logic [BeatsWidth-1:0]  rd_cmd_beats_i,
  output logic                   rd_data_valid_o,
  input  logic                   rd_data_ready_i,
  output logic [DataWidth-1:0]   rd_data_o,
  output logic                   rd_data_last_o,
  input  logic                   rd_abort_i,
  output logic                   rd_idle_o,
  output logic                   rd_err_o,
  input  logic                   rd_err_clear_i,

  input  logic                   wr_cmd_valid_i,
  output logic                   wr_cmd_ready_o,
  input  logic [AddrWidth-1:0]   wr_cmd_addr_i,
  input  logic [BeatsWidth-1:0]  wr_cmd_beats_i,
  input  logic                   wr_data_valid_i,
  output logic                   wr_data_ready_o,
  input  logic [DataWidth-1:0]   wr_data_i,
  input  logic                   wr_abort_i,
  output logic                   wr_idle_o,
  output logic                   wr_err_o,
  input  logic                   wr_err_clear_i,

  output logic [IdWidth-1:0]     m_axi_arid,
  output logic [AddrWidth-1:0]   m_axi_araddr,
  output logic [7:0]             m_axi_arlen,
  output logic [2:0]             m_axi_arsize,
  output logic [1:0]             m_axi_arburst,
  output logic                   m_axi_arlock,
  output logic [3:0]             m_axi_arcache,
  output logic [2:0]             m_axi_arprot,
  output logic [3:0]             m_axi_arqos,
  output logic                   m_axi_arvalid,
  input  logic                   m_axi_arready,
  input  logic [IdWidth-1:0]     m_axi_rid,
  input  logic [DataWidth-1:0]   m_axi_rdata,
  input  logic [1:0]             m_axi_rresp,
  input  logic                   m_axi_rlast,
  input  logic                   m_axi_rvalid,
  output logic                   m_axi_rready,

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
  uz_axi_rd #(
    .AddrWidth(AddrWidth), .DataWidth(DataWidth), .IdWidth(IdWidth),
    .MaxBurstBeats(MaxBurstBeats), .MaxOutstanding(MaxOutstanding), .BeatsWidth(BeatsWidth)
  ) u_rd (
    .clk_i, .rst_ni,
    .cmd_valid_i  (rd_cmd_valid_i),
    .cmd_ready_o  (rd_cmd_ready_o),
    .cmd_addr_i   (rd_cmd_addr_i),
    .cmd_beats_i  (rd_cmd_beats_i),
    .data_valid_o (rd_data_valid_o),
    .data_ready_i (rd_data_ready_i),
    .data_o       (rd_data_o),
    .data_last_o  (rd_data_last_o),
    .abort_i      (rd_abort_i),
    .idle_o       (rd_idle_o),
    .err_o        (rd_err_o),
    .err_clear_i  (rd_err_clear_i),
    .m_axi_arid, .m_axi_araddr, .m_axi_arlen, .m_axi_arsize, .m_axi_arburst, .m_axi_arlock,
    .m_axi_arcache, .m_axi_arprot, .m_axi_arqos, .m_axi_arvalid, .m_axi_arready,
    .m_axi_rid, .m_axi_rdata, .m_axi_rresp, .m_axi_rlast, .m_axi_rvalid, .m_axi_rready
  );

  uz_axi_wr #(
    .AddrWidth(AddrWidth), .DataWidth(DataWidth), .IdWidth(IdWidth),
    .MaxBurstBeats(MaxBurstBeats), .MaxOutstanding(MaxOutstanding), .BeatsWidth(BeatsWidth)
  ) u_wr (
    .clk_i, .rst_ni,
    .cmd_valid_i  (wr_cmd_valid_i),
    .cmd_ready_o  (wr_cmd_ready_o),
    .cmd_addr_i   (wr_cmd_addr_i),
    .cmd_beats_i  (wr_cmd_beats_i),
    .data_valid_i (wr_data_valid_i),
    .data_ready_o (wr_data_ready_o),
    .data_i       (wr_data_i),
    .abort_i      (wr_abort_i),
    .idle_o       (wr_idle_o),
    .err_o        (wr_err_o),
    .err_clear_i  (wr_err_clear_i),
    .m_axi_awid, .m_axi_awaddr, .m_axi_awlen, .m_axi_awsize, .m_axi_awburst, .m_axi_awlock,
    .m_axi_awcache, .m_axi_awprot, .m_axi_awqos, .m_axi_awvalid, .m_axi_awready,
    .m_axi_wdata, .m_axi_wstrb, .m_axi_wlast, .m_axi_wvalid, .m_axi_wready,
    .m_axi_bid, .m_axi_bresp, .m_axi_bvalid, .m_axi_bready
  );
endmodule
