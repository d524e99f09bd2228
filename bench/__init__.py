"""``make bench``: how well this stack handles a long, heavy prediction on a large upload,
measured on the machine at hand as ratios taken within one run (absolute times drift on
shared machines; ratios of two things measured side by side drift much less).

    python -m bench [--quick] [--out DIR] [--only SECTION ...]

The benchmark is not a test: it never fails on a time. It exits non-zero only when it could
not measure something (see :mod:`bench.runner`).
"""
