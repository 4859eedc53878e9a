"""The compiler's passes, in order (golden/compiler.py drives them):

    fold      (fold.py)      Network -> Network: BatchNorm and constant affines
                             folded, the rest as depthwise 1x1 convolutions, SVD
    fuse      (fuse.py)      Network -> Graph of engine layers over tensors
                             (ReLU/clip/pool/residual add fused, concat slices)
    kernels   (kernels.py)   dense kernels above max_k lowered to decomposed
                             3x3 sub-window kernels (6, 9, 12)
    quantise  (quantise.py)  fractional lengths per tensor, integer layers
    allocate  (allocate.py)  activation memory: one region per buffer, or
                             liveness-based reuse
    tile      (tile.py)      tile sizes that fit the on-chip buffers
    emit      (emit.py)      descriptors, weights and biases in the memory image

Each is a module of its own with its own tests; none modifies its input."""
