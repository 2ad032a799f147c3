"""Side-by-side benchmarks behind `ksearch bench`."""
