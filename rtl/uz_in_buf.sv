// Input buffer: words of PN channels, one write port and a read port that
// returns two consecutive words per cycle (docs/architecture.md, "Window
// loading"). A window row's taps kx and kx+1 sit at consecutive addresses,
// so the window loader reads two taps a cycle: K*ceil(K/2) cycles a window
// instead of K*K.
//
// Two single-read banks by address parity make that possible without a
// second read port: consecutive addresses always fall in different banks.
// Same timing as uz_ram: registered read data one cycle after the request.
`include "uz_assert.svh"

module uz_in_buf #(
  parameter int Width = 256,
  parameter int Depth = 8192,   // words; even
  localparam int AddrWidth = $clog2(Depth)
) (
  input  logic                 clk_i,
  input  logic                 rst_ni,
  input  logic                 wr_en_i,
  input  logic [AddrWidth-1:0] wr_addr_i,
  input  logic [Width-1:0]     wr_data_i,
  // rd_en_i[0] reads the word at rd_addr_i, rd_en_i[1] the word after it
  input  logic [1:0]           rd_en_i,
  input  logic [AddrWidth-1:0] rd_addr_i,
  output logic [Width-1:0]     rd_data_o,       // word at rd_addr_i
  output logic [Width-1:0]     rd_data_next_o   // word at rd_addr_i + 1
);
  `ASSERT_INIT(DepthEven_A, Depth >= 4 && Depth % 2 == 0)
  // The word after the last one does not exist.
  `ASSERT(NextInRange_A, !rd_en_i[1] || 32'(rd_addr_i) + 1 < Depth, clk_i, rst_ni)

  localparam int BankAw = AddrWidth - 1;

  // Only the bank address (bits above 0) of the next word is used.
  /* verilator lint_off UNUSEDSIGNAL */
  logic [AddrWidth-1:0] addr_next;
  /* verilator lint_on UNUSEDSIGNAL */
  assign addr_next = rd_addr_i + 1'b1;

  // Bank b holds the words whose address has bit 0 = b, at address >> 1.
  logic [1:0]        bank_rd_en;
  logic [BankAw-1:0] bank_rd_addr [2];
  logic [Width-1:0]  bank_rd_data [2];
  logic              odd_q;         // the word at rd_addr_i came from bank 1

  always_comb begin
    for (int b = 0; b < 2; b++) begin
      if (rd_addr_i[0] == 1'(b)) begin
        bank_rd_en[b]   = rd_en_i[0];
        bank_rd_addr[b] = rd_addr_i[AddrWidth-1:1];
      end else begin
        bank_rd_en[b]   = rd_en_i[1];
        bank_rd_addr[b] = addr_next[AddrWidth-1:1];
      end
    end
  end

  for (genvar b = 0; b < 2; b++) begin : gen_bank
    uz_ram #(.Lanes(1), .LaneWidth(Width), .Depth(Depth / 2)) u_bank (
      .clk_i, .wr_en_i(wr_en_i && wr_addr_i[0] == 1'(b)), .wr_lane_en_i(1'b1),
      .wr_addr_i(wr_addr_i[AddrWidth-1:1]), .wr_data_i,
      .rd_en_i(bank_rd_en[b]), .rd_addr_i(bank_rd_addr[b]), .rd_data_o(bank_rd_data[b])
    );
  end

  always_ff @(posedge clk_i) begin
    if (rd_en_i != '0) odd_q <= rd_addr_i[0];
  end
  assign rd_data_o      = odd_q ? bank_rd_data[1] : bank_rd_data[0];
  assign rd_data_next_o = odd_q ? bank_rd_data[0] : bank_rd_data[1];
endmodule
