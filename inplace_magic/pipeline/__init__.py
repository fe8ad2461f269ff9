"""The entry points: run code, and when it fails with an in-place error, replay, record, diagnose and
fix it (a script, a live kernel, a distributed launch, an audit).
"""
