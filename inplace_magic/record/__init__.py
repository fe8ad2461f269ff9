"""The recorder: what a replay saw (ops, saved tensors, writes) as plain data, and the torch facts it
relies on.
"""
