import LeaklessEmbedding

/// What every executable does before it parses its arguments: the fastest matrix kernels the
/// processor can run (see BLASKernels; this may run the program again, once).
public func prepareProcess() {
    BLASKernels.useTheProcessorsKernels()
}
