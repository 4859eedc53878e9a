// Input buffer: words of PN channels, one write port and a read port that
// returns Reads consecutive words per cycle (docs/architecture.md, "Window:
// columns along a row"). The words of a row of the input tile sit at
// consecutive addresses, so the compute's column fetcher reads Reads
// neighbouring columns of one input row each cycle.
//
// Reads single-read banks by address modulo Reads make that possible
// without more read ports: consecutive addresses always fall in different
// banks. Same timing as uz_ram: registered read data one cycle after the
// request.
`include "uz_assert.svh"

module uz_in_buf #(
  parameter int Width = 256,
  parameter int Depth = 8192,   // words; a multiple of Reads
  parameter int Reads = 4,      // consecutive words per read; a power of two
  localparam int AddrWidth = $clog2(Depth)
) (
  input  logic                     clk_i,
  input  logic                     rst_ni,
  input  logic                     wr_en_i,
  input  logic [AddrWidth-1:0]     wr_addr_i,
  input  logic [Width-1:0]         wr_data_i,
  // rd_en_i[i] reads the word at rd_addr_i + i
  input  logic [Reads-1:0]         rd_en_i,
  input  logic [AddrWidth-1:0]     rd_addr_i,
  output logic [Reads*Width-1:0]   rd_data_o       // word i: the one at rd_addr_i + i
);
  localparam int LogR   = $clog2(Reads);
  localparam int BankAw = AddrWidth - LogR;

  `ASSERT_INIT(ReadsPow2_A, Reads >= 2 && (Reads & (Reads - 1)) == 0)
  `ASSERT_INIT(DepthMultiple_A, Depth >= 2 * Reads && Depth % Reads == 0)
  // Words past the last one do not exist.
  for (genvar i = 1; i < Reads; i++) begin : gen_rd_check
    `ASSERT(ReadInRange_A, !rd_en_i[i] || 32'(rd_addr_i) + i < Depth, clk_i, rst_ni)
  end

  // Bank b holds the words whose address is b modulo Reads, at address
  // divided by Reads; it serves word i = (b - rd_addr_i) mod Reads.
  logic [Reads-1:0]  bank_rd_en;
  logic [BankAw-1:0] bank_rd_addr [Reads];
  logic [Width-1:0]  bank_rd_data [Reads];
  logic [LogR-1:0]   first_bank_q;   // bank of the word at rd_addr_i

  logic [LogR-1:0]      word_of [Reads];    // the word bank b serves
  logic [AddrWidth-1:0] addr_of [Reads];
  always_comb begin
    for (int b = 0; b < Reads; b++) begin
      word_of[b]      = LogR'(b) - rd_addr_i[LogR-1:0];
      addr_of[b]      = rd_addr_i + AddrWidth'(word_of[b]);
      bank_rd_en[b]   = rd_en_i[word_of[b]];
      bank_rd_addr[b] = addr_of[b][AddrWidth-1:LogR];
    end
  end

  for (genvar b = 0; b < Reads; b++) begin : gen_bank
    uz_ram #(.Lanes(1), .LaneWidth(Width), .Depth(Depth / Reads)) u_bank (
      .clk_i, .wr_en_i(wr_en_i && wr_addr_i[LogR-1:0] == LogR'(b)), .wr_lane_en_i(1'b1),
      .wr_addr_i(wr_addr_i[AddrWidth-1:LogR]), .wr_data_i,
      .rd_en_i(bank_rd_en[b]), .rd_addr_i(bank_rd_addr[b]), .rd_data_o(bank_rd_data[b])
    );
  end

  always_ff @(posedge clk_i) begin
    if (rd_en_i != '0) first_bank_q <= rd_addr_i[LogR-1:0];
  end
  always_comb begin
    for (int i = 0; i < Reads; i++) begin
      rd_data_o[i*Width +: Width] = bank_rd_data[LogR'(first_bank_q + LogR'(i))];
    end
  end
endmodule
