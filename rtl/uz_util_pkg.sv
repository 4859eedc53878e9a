// Helpers shared by several blocks of the engine.
package uz_util_pkg;

  // v / s for a stride s of 1..4 without a divider or a multiplier: halving
  // and quartering are shifts; a third is a long division by 3, one bit at a
  // time from the top, with a remainder of two bits (a chain of 3-input
  // steps that maps onto a few LUTs per bit; a multiply by the reciprocal
  // would take a DSP at every use). Other strides only occur where a
  // descriptor check has already failed; they return v. One assignment per
  // arm (no return inside the case): Verilator's line coverage does not count
  // arms that return.
  function automatic logic [16:0] div_stride(logic [16:0] v, logic [2:0] s);
    logic [16:0] q, q3;
    logic [1:0]  r;
    logic [2:0]  x;
    r  = '0;
    q3 = '0;
    for (int i = 16; i >= 0; i--) begin
      x     = {r, v[i]};             // 0..5: remainder so far, next bit
      q3[i] = (x >= 3'd3);
      r     = q3[i] ? 2'(x - 3'd3) : x[1:0];
    end
    case (s)
      3'd2:    q = v >> 1;
      3'd3:    q = q3;
      3'd4:    q = v >> 2;
      default: q = v;
    endcase
    div_stride = q;
  endfunction

endpackage : uz_util_pkg
