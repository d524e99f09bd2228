"""IAM in the native stack: the template's role policies compiled, one principal per process,
and the emulator's enforcement of them."""
