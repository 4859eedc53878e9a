// Helpers shared by several blocks of the engine.
package uz_util_pkg;

  // v / s for a stride s of 1..4 without a divider: halving and quartering
  // are shifts, a third is a multiply by the reciprocal 0xAAAB / 2**17, exact
  // for every v below 2**17. Other strides only occur where a descriptor
  // check has already failed; they return v. One assignment per arm (no
  // return inside the case): Verilator's line coverage does not count arms
  // that return.
  function automatic logic [16:0] div_stride(logic [16:0] v, logic [2:0] s);
    logic [16:0] q;
    case (s)
      3'd2:    q = v >> 1;
      3'd3:    q = 17'((33'(v) * 33'h0AAAB) >> 17);
      3'd4:    q = v >> 2;
      default: q = v;
    endcase
    div_stride = q;
  endfunction

endpackage : uz_util_pkg
