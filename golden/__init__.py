"""uz golden model: the bit-exact reference of the engine, its arithmetic, the
instruction format and the compiler."""
