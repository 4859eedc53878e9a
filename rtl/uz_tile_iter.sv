// Walks a layer's tiles in the one order the loader, the compute and the
// write-back all follow (docs/architecture.md):
//   for o0 (to-tiles) / for r0 (row tiles) / for c0 (col tiles) / for i0 (ti-tiles)
// A layer whose output channels each read their own input channel (POOL,
// depthwise CONV) has a single ti-tile per to-tile: its own channels (i0 = o0).
// With OuterOnly the ti loop is skipped (the write-back walks output tiles).
module uz_tile_iter #(
  parameter bit OuterOnly = 1'b0
) (
  input  logic        clk_i,
  input  logic        rst_ni,
  input  logic        start_i,     // load the first tile
  input  logic        next_i,      // advance to the next tile
  input  logic        chan_follow_i, // POOL or depthwise layer: i0 follows o0
  input  logic [15:0] cout_i,      // output channels, padded to PM
  input  logic [15:0] cin_i,       // input channels, padded to PN
  input  logic [15:0] rows_i,      // convolution output rows
  input  logic [15:0] cols_i,      // convolution output cols
  input  logic [15:0] to_i,
  input  logic [15:0] ti_i,
  input  logic [15:0] tr_i,
  input  logic [15:0] tc_i,
  output logic        valid_o,     // a tile is current
  output logic [15:0] o0_o, r0_o, c0_o, i0_o,
  output logic [15:0] no_o, nr_o, nc_o, ni_o,
  output logic        first_ti_o,  // first ti-tile of its output tile
  output logic        last_ti_o,   // last ti-tile of its output tile
  output logic        last_o       // last tile of the layer
);
  logic        valid_q;
  logic [15:0] o0_q, r0_q, c0_q, i0_q;

  function automatic logic [15:0] min16(logic [15:0] a, logic [15:0] b);
    return (a < b) ? a : b;
  endfunction

  // 17-bit sums: a tile start plus a tile size may pass 16 bits.
  logic [16:0] o_next, r_next, c_next, i_next;
  logic        o_end, r_end, c_end, i_end;
  assign o_next = {1'b0, o0_q} + {1'b0, to_i};
  assign r_next = {1'b0, r0_q} + {1'b0, tr_i};
  assign c_next = {1'b0, c0_q} + {1'b0, tc_i};
  assign i_next = {1'b0, i0_q} + {1'b0, ti_i};
  assign o_end  = o_next >= {1'b0, cout_i};
  assign r_end  = r_next >= {1'b0, rows_i};
  assign c_end  = c_next >= {1'b0, cols_i};
  assign i_end  = OuterOnly || chan_follow_i || (i_next >= {1'b0, cin_i});

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      valid_q <= 1'b0;
      o0_q <= '0; r0_q <= '0; c0_q <= '0; i0_q <= '0;
    end else if (start_i) begin
      valid_q <= 1'b1;
      o0_q <= '0; r0_q <= '0; c0_q <= '0; i0_q <= '0;
    end else if (next_i && valid_q) begin
      if (!i_end) begin
        i0_q <= i_next[15:0];
      end else begin
        i0_q <= '0;
        if (!c_end) begin
          c0_q <= c_next[15:0];
        end else begin
          c0_q <= '0;
          if (!r_end) begin
            r0_q <= r_next[15:0];
          end else begin
            r0_q <= '0;
            if (!o_end) o0_q <= o_next[15:0];
            else        valid_q <= 1'b0;
          end
        end
      end
    end
  end

  assign valid_o    = valid_q;
  assign o0_o       = o0_q;
  assign r0_o       = r0_q;
  assign c0_o       = c0_q;
  assign i0_o       = chan_follow_i ? o0_q : i0_q;
  assign no_o       = min16(to_i, cout_i - o0_q);
  assign nr_o       = min16(tr_i, rows_i - r0_q);
  assign nc_o       = min16(tc_i, cols_i - c0_q);
  assign ni_o       = chan_follow_i ? min16(to_i, cout_i - o0_q) : min16(ti_i, cin_i - i0_q);
  assign first_ti_o = chan_follow_i || OuterOnly || (i0_q == '0);
  assign last_ti_o  = i_end;
  assign last_o     = i_end && c_end && r_end && o_end;
endmodule
