"""The verification sandbox: a separate Python process runs the original, a gradient reference and each
candidate, and reports what it observed.
"""
