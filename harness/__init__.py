"""What tests and benchmarks share, so that neither imports the other: boot services the way users do,
sample speech and error rates. No test code here."""
