// Walks a layer's tiles in the one order the loader, the compute and the
// write-back all follow (docs/architecture.md):
//   for o0 (to-tiles) / for r0 (row tiles) / for c0 (col tiles) / for i0 (ti-tiles)
// A layer whose output channels each read their own input channel (POOL,
// depthwise CONV) has a single ti-tile per to-tile: its own channels (i0 = o0),
// as many as the input has (a to-tile counts in PM, the input in PN).
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
  // The tile's sizes, min(tile size, what is left of the layer), are
  // registers set as the walk moves (not min16(tc, cols - c0) after each
  // move): at a start or a wrap the whole layer is left, min(t, total); a
  // step leaves rem - t of rem = total - x0 (held in rem_*_q), and
  // min(t, rem - t) = (rem < 2t) ? rem - t : t (a step means x0 + t < total,
  // so rem > t). The layer's fields are stable from start_i on.
  logic [15:0] no_q, nr_q, nc_q, ni_q;
  logic [15:0] nf_q;                 // chan_follow: min(no, cin - o0), the tile's own inputs
  logic [15:0] o_rem_q, r_rem_q, c_rem_q, i_rem_q;

  function automatic logic [15:0] min16(logic [15:0] a, logic [15:0] b);
    return (a < b) ? a : b;
  endfunction
  // the size after a step of t from rem left
  function automatic logic [15:0] step_n(logic [15:0] rem, logic [15:0] t);
    return ({1'b0, rem} < {t, 1'b0}) ? rem - t : t;
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
      no_q <= '0; nr_q <= '0; nc_q <= '0; ni_q <= '0; nf_q <= '0;
      o_rem_q <= '0; r_rem_q <= '0; c_rem_q <= '0; i_rem_q <= '0;
    end else if (start_i) begin
      valid_q <= 1'b1;
      o0_q <= '0; r0_q <= '0; c0_q <= '0; i0_q <= '0;
      no_q <= min16(to_i, cout_i); nr_q <= min16(tr_i, rows_i);
      nf_q <= min16(min16(to_i, cout_i), cin_i);
      nc_q <= min16(tc_i, cols_i); ni_q <= min16(ti_i, cin_i);
      o_rem_q <= cout_i; r_rem_q <= rows_i; c_rem_q <= cols_i; i_rem_q <= cin_i;
    end else if (next_i && valid_q) begin
      if (!i_end) begin
        i0_q <= i_next[15:0];
        ni_q <= step_n(i_rem_q, ti_i); i_rem_q <= i_rem_q - ti_i;
      end else begin
        i0_q <= '0;
        ni_q <= min16(ti_i, cin_i); i_rem_q <= cin_i;
        if (!c_end) begin
          c0_q <= c_next[15:0];
          nc_q <= step_n(c_rem_q, tc_i); c_rem_q <= c_rem_q - tc_i;
        end else begin
          c0_q <= '0;
          nc_q <= min16(tc_i, cols_i); c_rem_q <= cols_i;
          if (!r_end) begin
            r0_q <= r_next[15:0];
            nr_q <= step_n(r_rem_q, tr_i); r_rem_q <= r_rem_q - tr_i;
          end else begin
            r0_q <= '0;
            nr_q <= min16(tr_i, rows_i); r_rem_q <= rows_i;
            if (!o_end) begin
              o0_q <= o_next[15:0];
              no_q <= step_n(o_rem_q, to_i); o_rem_q <= o_rem_q - to_i;
              nf_q <= min16(step_n(o_rem_q, to_i), cin_i - o_next[15:0]);
            end else begin
              valid_q <= 1'b0;
            end
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
  assign no_o       = no_q;
  assign nr_o       = nr_q;
  assign nc_o       = nc_q;
  assign ni_o       = chan_follow_i ? nf_q : ni_q;
  assign first_ti_o = chan_follow_i || OuterOnly || (i0_q == '0);
  assign last_ti_o  = i_end;
  assign last_o     = i_end && c_end && r_end && o_end;

  // The registered sizes are those of the tile (the layer's fields held
  // from start_i on), checked as the user moves on from a tile: after an
  // abort the walk stays valid while the next layer's fields arrive, unused.
  `include "uz_assert.svh"
  `ASSERT(TileSizesCurrent_A, !(valid_q && next_i && !start_i) || (no_q == min16(to_i, cout_i - o0_q) &&
          nr_q == min16(tr_i, rows_i - r0_q) && nc_q == min16(tc_i, cols_i - c0_q) &&
          ni_q == min16(ti_i, cin_i - i0_q) && nf_q == min16(no_q, cin_i - o0_q)), clk_i, rst_ni)
endmodule
