// Simple dual-port RAM: one write port with per-lane enables, one read port
// with a registered output (read-first: a read of the address being written
// in the same cycle returns the old word). Maps onto FPGA block RAM.
module uz_ram #(
  parameter int Lanes     = 1,
  parameter int LaneWidth = 16,
  parameter int Depth     = 1024,
  localparam int AddrWidth = (Depth > 1) ? $clog2(Depth) : 1,
  localparam int Width     = Lanes * LaneWidth
) (
  input  logic                 clk_i,
  input  logic                 wr_en_i,
  input  logic [Lanes-1:0]     wr_lane_en_i,
  input  logic [AddrWidth-1:0] wr_addr_i,
  input  logic [Width-1:0]     wr_data_i,
  input  logic                 rd_en_i,
  input  logic [AddrWidth-1:0] rd_addr_i,
  output logic [Width-1:0]     rd_data_o
);
  logic [Width-1:0] mem [Depth];

  always_ff @(posedge clk_i) begin
    if (rd_en_i) rd_data_o <= mem[rd_addr_i];
  end

  always_ff @(posedge clk_i) begin
    if (wr_en_i) begin
      for (int l = 0; l < Lanes; l++) begin
        if (wr_lane_en_i[l]) mem[wr_addr_i][l*LaneWidth +: LaneWidth] <= wr_data_i[l*LaneWidth +: LaneWidth];
      end
    end
  end
endmodule
